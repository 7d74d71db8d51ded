"""The DuckDB file held open for a whole sync: one open and one checkpoint per run.

dlt's DuckDB connection pool closes the database whenever its last borrowed connection comes back: between
the jobs of a load, after each read of the destination, after each segment, and DuckDB checkpoints at every
close and reads its catalog at every open. DuckDB's Python module shares one database instance among a
process's connections to the same file, so a connection the sync holds keeps that instance open, and dlt's
borrows (``duplicate()`` of its own connection) find it as it is. Measured on an incremental sync of
3 x 50,000 products with details (1,500 changed, docs/performance.md): its load 1.2-1.5 s before, 0.7-0.8 s
after, the history's 0.27 s 0.17 s; the one checkpoint left, when the sync closes the file, took 0.4-0.7 s.

The file stays locked by this process meanwhile (DuckDB lets one process write a file), as it was during
each load anyway.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from octogen_source.sync.failures import SyncError, first_line
from octogen_source.warehouse import is_local_duckdb_file


@contextmanager
def duckdb_held_open(duckdb_path: str | None, dataset: str) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """Holds ``duckdb_path`` open until the block ends, and gives the connection holding it (None, and nothing
    held, for None, in-memory or remote databases). Raises :class:`SyncError` (retryable, worded as dlt's
    connection failures are) when the file cannot be opened, e.g. another process writes it."""
    if duckdb_path is None or not is_local_duckdb_file(duckdb_path):
        yield None
        return
    # the path dlt opens (destination_for): DuckDB shares an instance only between connections to one path
    path = str(Path(duckdb_path).resolve())
    try:
        connection = duckdb.connect(path)
    except duckdb.Error as error:
        reason = first_line(error)
        raise SyncError(
            f"cannot connect to the destination (dataset {dataset!r}): {reason}", retryable=True
        ) from error
    try:
        yield connection
    finally:
        connection.close()


def checkpoint(connection: duckdb.DuckDBPyConnection) -> None:
    """Writes what the loads so far changed into the file (DuckDB's ``CHECKPOINT``), between the segments of
    a run: the checkpoint when the sync closes the file is then left with the last segment's changes only.
    Skipped when DuckDB refuses (another connection's transaction open): it checkpoints later by itself."""
    with contextlib.suppress(duckdb.Error):
        connection.execute("CHECKPOINT")
