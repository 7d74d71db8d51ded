"""Reading loaded rows back from the destination as whole records: the root row with its child tables.

dlt stores a record as one root row (objects flattened into ``parent__child`` columns) plus one child table
per list (``product_details__sizes``), linked by ``_dlt_parent_id`` -> ``_dlt_id`` and ordered by
``_dlt_list_idx``. :func:`read_records` puts a record back together in the shape dlt would store again the
same way: re-emitting it through dlt leaves the root row and its child rows as they were. The sync uses this
to mark a product removed without losing what it last was (a merge replaces the whole row; a row loaded by
0.1 comes back with its ``products__images`` list, stored again as JSON text); the tests use it to compare
whole tables with the API's truth.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dlt.common.schema import Schema
from dlt.common.schema.utils import is_nested_table
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase

Record = dict[str, Any]

DLT_PREFIX = "_dlt_"
ROW_ID = "_dlt_id"
PARENT_ID = "_dlt_parent_id"
ROOT_ID = "_dlt_root_id"
LIST_INDEX = "_dlt_list_idx"
SCALAR_COLUMN = "value"
"""The column of a child table that holds the elements of a list of scalars (variants: ``value__v_text``)."""


def nested_tables(schema: Schema, root_table: str) -> list[tuple[str, str, str]]:
    """(table, parent table, field name) of every child table under ``root_table``, parents first."""
    found: list[tuple[str, str, str]] = []
    parents = [root_table]
    while parents:
        parent = parents.pop(0)
        for name, table in schema.tables.items():
            if is_nested_table(table) and table.get("parent") == parent:
                found.append((name, parent, name[len(parent) + 2 :]))
                parents.append(name)
    return found


def read_records(
    sql_client: SqlClientBase[Any],
    schema: Schema,
    table: str,
    key_column: str,
    keys: Sequence[Any] | None = None,
) -> list[Record]:
    """The records of ``table`` whose ``key_column`` is in ``keys`` (all when None), children attached.

    ``_dlt_*`` columns and nulls are left out. A missing table reads as no records, a missing child table as
    no children.
    """
    roots: dict[Any, Record] = {}
    nodes: dict[Any, Record] = {}
    where = ""
    if keys is not None:
        if not keys:
            return []
        where = f" WHERE {sql_client.escape_column_name(key_column)} IN ({', '.join(['%s'] * len(keys))})"
    args = list(keys) if keys is not None else []
    for row in _select(
        sql_client, f"SELECT * FROM {sql_client.make_qualified_table_name(table)}{where}", args
    ):
        record = _data_fields(row)
        roots[row[ROW_ID]] = record
        nodes[row[ROW_ID]] = record
    if not roots:
        return []
    root_ids = list(roots)
    for child, _parent, field in nested_tables(schema, table):
        query = (
            f"SELECT * FROM {sql_client.make_qualified_table_name(child)}"
            f" WHERE {ROOT_ID} IN ({', '.join(['%s'] * len(root_ids))})"
        )
        children = sorted(_select(sql_client, query, root_ids), key=lambda r: (r[PARENT_ID], r[LIST_INDEX]))
        for row in children:
            parent_record = nodes.get(row[PARENT_ID])
            if parent_record is None:
                continue
            element = _list_element(row)
            parent_record.setdefault(field, []).append(element)
            if isinstance(element, dict):
                nodes[row[ROW_ID]] = element
    return list(roots.values())


def _select(sql_client: SqlClientBase[Any], query: str, args: Sequence[Any]) -> Iterator[Mapping[str, Any]]:
    try:
        with sql_client.execute_query(query, *args) as cursor:
            columns = [description[0] for description in cursor.description]
            while rows := cursor.fetchmany(10_000):
                for values in rows:
                    yield dict(zip(columns, values, strict=True))
    except DatabaseUndefinedRelation:
        return


def _data_fields(row: Mapping[str, Any]) -> Record:
    return {
        name: value for name, value in row.items() if not name.startswith(DLT_PREFIX) and value is not None
    }


def _is_scalar_column(name: str) -> bool:
    return name == SCALAR_COLUMN or name.startswith(SCALAR_COLUMN + "__v_")


def _list_element(row: Mapping[str, Any]) -> Any:
    """One list element: the scalar of a ``value`` row, else an object of the row's data columns."""
    fields = _data_fields(row)
    if fields and all(_is_scalar_column(name) for name in fields):
        return next(iter(fields.values()))
    return fields
