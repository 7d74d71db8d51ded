"""Rows -> arrow tables, so dlt writes parquet at extract and its Python normalizer has nothing to do.

Every column keeps one arrow type for the whole run: declared (the tables' column hints), taken from the
schema (columns loaded before), or inferred from the first batch that holds it (text, bigint, double, bool,
timestamp). A batch with a value that does not fit its column's type (a drifted field) is given back as
``None``: the caller hands that batch to dlt as dict rows (``records.flat_columns``), and dlt's normalizer
does what it always does (a variant column such as ``rating__v_text``). A nested value (a list, an
object) is stored as its JSON text.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa
from dlt.common.schema.typing import TTableSchemaColumns

from octogen_source.source.json_values import json_text
from octogen_source.source.records import Row, column_name

TIMESTAMP = pa.timestamp("us", tz="UTC")
ARROW_TYPES: dict[str, pa.DataType] = {
    "text": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": TIMESTAMP,
}
"""The dlt data types a column may have on the arrow path; a column of any other type sends its batches
through dlt's normalizer."""

_DIRECT: dict[str, pa.DataType] = {"text": pa.string(), "bool": pa.bool_(), "timestamp": pa.string()}
"""Column types arrow converts without a check of ours, and the type read from the rows (a timestamp as its
ISO-8601 text, then cast)."""

_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError, TypeError)


_NONE_TYPE = type(None)
_FITS: dict[str, frozenset[type]] = {
    "bigint": frozenset({int}),
    "double": frozenset({float, int}),
}
"""The Python types a value of these columns may have (besides None): checks pyarrow does not make itself (it
truncates 1.5 into an int64 and turns True into 1.0)."""


def _inferred_type(kinds: set[type]) -> str | None:
    """The data type of a new column from the types of its values (None left out): None when they disagree."""
    if not kinds:
        return None
    if kinds == {str}:
        return "text"
    if kinds == {bool}:
        return "bool"
    if kinds == {int}:
        return "bigint"
    if kinds <= {int, float}:
        return "double"
    if kinds <= {datetime}:
        return "timestamp"
    return None


class ArrowRows:
    """Turns the flat rows of one table into arrow tables with stable column types."""

    def __init__(self, declared: TTableSchemaColumns, known: Mapping[str, Any] | None = None) -> None:
        """``declared``: the table's column hints; ``known``: its columns in the schema so far."""
        self._types: dict[str, str | None] = {}
        self._not_null: set[str] = set()
        self._nested: set[str] = set()
        """Columns that held a list or an object (stored as JSON text): converted value by value."""
        for name, column in {**(known or {}), **declared}.items():
            data_type = column.get("data_type")
            if data_type is not None:
                self._types[name] = data_type if data_type in ARROW_TYPES else None
            if column.get("nullable") is False:
                self._not_null.add(name)

    def table(self, rows: Sequence[Row]) -> pa.Table | None:
        """``rows`` as one arrow table, or None when a value does not fit its column's type.

        Row keys may be wire names (``updatedAt``) or column names (``updated_at``, rows read back from the
        destination): each key is named once per batch, and a list or object value becomes its JSON text.
        """
        columns = _columns_of(rows)
        fast = self._fast_table(rows, columns)
        return fast if fast is not None else self._checked_table(rows, columns)

    def _fast_table(self, rows: Sequence[Row], columns: dict[str, list[str]]) -> pa.Table | None:
        """The usual batch: every column already has its type. Its text, bool and timestamp columns are
        converted by arrow itself in one pass over the rows (a struct array); numbers (checked as in
        :meth:`_checked_table`) and the columns that held lists or objects (JSON text), column by column.
        None when a column is new or named by two keys, or when a value does not fit: then
        :meth:`_checked_table` converts the batch (and learns what it must)."""
        direct: list[tuple[str, str, str]] = []
        checked: dict[str, pa.Array] = {}
        for name, keys in columns.items():
            data_type = self._types.get(name)
            if len(keys) > 1 or data_type is None:
                return None
            if data_type in _DIRECT and name not in self._nested:
                direct.append((name, keys[0], data_type))
                continue
            # bigint and double are checked here: arrow would truncate 1.5 into an int64 and take True as 1.0
            values, kinds, _ = _column(rows, keys)
            array = _array(values, kinds, data_type)
            if array is None:
                return None
            checked[name] = array
        if not direct:
            return None
        try:
            struct = pa.array(
                rows, type=pa.struct([pa.field(key, _DIRECT[data_type]) for _, key, data_type in direct])
            )
            converted = {
                name: struct.field(index).cast(TIMESTAMP) if data_type == "timestamp" else struct.field(index)
                for index, (name, _, data_type) in enumerate(direct)
            }
        except _CONVERSION_ERRORS:
            return None
        converted.update(checked)
        arrays = [converted[name] for name in columns]
        fields = [
            pa.field(name, converted[name].type, nullable=name not in self._not_null) for name in columns
        ]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def _checked_table(self, rows: Sequence[Row], columns: dict[str, list[str]]) -> pa.Table | None:
        arrays: list[pa.Array] = []
        fields: list[pa.Field] = []
        decided: dict[str, str] = {}
        for name, keys in columns.items():
            values, kinds, nested = _column(rows, keys)
            if nested:
                self._nested.add(name)
            data_type = self._types[name] if name in self._types else _inferred_type(kinds)
            if data_type is None:
                if not kinds:
                    continue  # nothing to say about it in this batch (dlt creates no all-null column)
                return None
            array = _array(values, kinds, data_type)
            if array is None:
                return None
            decided[name] = data_type
            arrays.append(array)
            fields.append(pa.field(name, array.type, nullable=name not in self._not_null))
        self._types.update(decided)
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


class SharedArrowRows:
    """One table's :class:`ArrowRows` for a whole run, shared by the extract and the thread that converts the
    walk's batches while they wait (:mod:`walk_pump`), so that a batch converted early gets the table a
    segment's extract would have made of it.

    The extract makes the converter at the first batch it converts itself (the schema's columns are known
    only inside the extract step), and makes it anew there after a batch did not fit: dlt then types the
    batch's columns from its dict rows, and the new converter takes those types from the schema. Meanwhile
    :meth:`convert_early` converts nothing: the batches after the one that did not fit wait as rows, in
    order, for the extract.
    """

    def __init__(self, declared: TTableSchemaColumns) -> None:
        self._declared = declared
        self._lock = threading.Lock()
        self._converter: ArrowRows | None = None
        self._refused = False
        """A batch did not fit since the converter was made."""

    def begin_segment(self, known: Mapping[str, Any]) -> None:
        """The extract's first conversion in a segment: ``known`` is the table's columns in the schema."""
        with self._lock:
            if self._converter is None or self._refused:
                self._converter = ArrowRows(self._declared, known)
                self._refused = False

    def table(self, rows: Sequence[Row]) -> pa.Table | None:
        """The extract's conversion (after :meth:`begin_segment`): :meth:`ArrowRows.table`."""
        with self._lock:
            if self._converter is None:
                raise RuntimeError("begin_segment() makes the converter")
            return self._convert(self._converter, rows)

    def convert_early(self, rows: Sequence[Row]) -> pa.Table | None:
        """A waiting batch's conversion: None (the rows stay rows) before the extract made the converter,
        and from a batch that does not fit until it made it anew."""
        with self._lock:
            if self._converter is None or self._refused:
                return None
            return self._convert(self._converter, rows)

    def _convert(self, converter: ArrowRows, rows: Sequence[Row]) -> pa.Table | None:
        table = converter.table(rows)
        if table is None:
            self._refused = True
        return table


def fits_schema(table: pa.Table, known: Mapping[str, Any]) -> bool:
    """Whether each column of ``table`` has the arrow type of its column in the schema (``known``), where the
    schema has one: a table converted without the schema at hand (the walk's own process) is checked so."""
    for arrow_field in table.schema:
        data_type = known.get(arrow_field.name, {}).get("data_type")
        if data_type is None:
            continue  # new to the schema: dlt takes the arrow type
        expected = ARROW_TYPES.get(data_type)
        if expected is None or not arrow_field.type.equals(expected):
            return False
    return True


def _columns_of(rows: Sequence[Row]) -> dict[str, list[str]]:
    """column name -> the row keys that name it (the first row's keys first, in its order)."""
    first = list(rows[0]) if rows else []
    keys = first + sorted(set().union(*rows).difference(first))
    columns: dict[str, list[str]] = {}
    for key in keys:
        columns.setdefault(column_name(key), []).append(key)
    return columns


def _column(rows: Sequence[Row], keys: list[str]) -> tuple[list[Any], set[type], bool]:
    """A column's values (a list or object as its JSON text), the types of those other than None, and whether
    it held a list or an object."""
    values = _column_values(rows, keys)
    # the types of a column's values, once (a set made in C: the per-value checks were a third of the
    # conversion)
    kinds = set(map(type, values))
    nested = list in kinds or dict in kinds
    if nested:
        values = [json_text(value) if isinstance(value, (list, dict)) else value for value in values]
        kinds = set(map(type, values))
    kinds.discard(_NONE_TYPE)
    return values, kinds, nested


def _column_values(rows: Sequence[Row], keys: list[str]) -> list[Any]:
    if len(keys) == 1:
        key = keys[0]
        return [row.get(key) for row in rows]
    return [next((row[key] for key in keys if row.get(key) is not None), None) for row in rows]


def _array(values: list[Any], kinds: set[type], data_type: str) -> pa.Array | None:
    """``kinds``: the types of the values other than None."""
    fits = _FITS.get(data_type)
    if fits is not None and not kinds <= fits:
        return None
    try:
        if data_type == "timestamp":
            return _timestamps(values)
        return pa.array(values, type=ARROW_TYPES[data_type])
    except _CONVERSION_ERRORS:
        return None


def _timestamps(values: list[Any]) -> pa.Array:
    """ISO-8601 strings (as the API sends them) and datetimes (as the destination gives them back)."""
    if any(isinstance(value, datetime) for value in values):
        return pa.array(
            [datetime.fromisoformat(value) if isinstance(value, str) else value for value in values],
            type=TIMESTAMP,
        )
    return pa.array(values, type=pa.string()).cast(TIMESTAMP)
