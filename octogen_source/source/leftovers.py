"""Removing what a killed run left in the pipeline's working directory, and the load packages of earlier runs.

dlt extracts into ``normalize/<16 hex digits>/`` (one folder per extract) and moves a package to
``normalize/extracted/`` only once its extract completes; the folder is deleted when the extract ends. A run
killed while extracting leaves its folder behind, and dlt never looks at it again: without this, killed runs
accumulate them (13-17 after 30 kills). Nothing in them was loaded or will be: the next walk finds every
change again by comparing the API with the destination, so they are deleted before a run starts.

dlt also writes some files through a temporary file named like those folders (``<16 hex digits>`` in the
same folder, then renamed): a run killed between the two leaves the temporary file, e.g. in ``load/new/``.
Those are deleted too, and so is a package under ``load/new/`` (normalize's work area, committed to
``load/normalized/`` by a rename) whose extracted package is gone: dlt normalizes only from
``normalize/extracted/`` (and clears ``load/new/<load id>`` itself before normalizing that load id again), so
such an orphan is never committed nor loaded.

One pipeline is run by one process at a time (README): a folder of another live extract of the same pipeline
cannot exist here.

dlt keeps every loaded package under ``load/loaded/`` with its files (≈ 2 KB per product written: a full
sync of 4,500 products 9.7 MB, 26 MB after 18 runs), so a scheduled sync's working directory grew without
end. After a successful run the packages of earlier runs are deleted; the run's own stay for inspection
(``dlt pipeline <name> info``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Collection
from pathlib import Path

import dlt

_EXTRACT_FOLDER = re.compile(r"[0-9a-f]{16}")


_TEMPORARY_FILES_IN = ("normalize", "normalize/extracted", "load/new", "load/normalized")
"""Where dlt's atomic saves leave their temporary files (package ids there are load ids, never 16 hex)."""


def remove_abandoned_extracts(pipeline: dlt.Pipeline) -> int:
    """Deletes the extract folders of killed runs under the pipeline's ``normalize/``, the temporary files of
    their interrupted atomic saves and their orphaned ``load/new/`` packages; returns how many."""
    working_dir = Path(pipeline.working_dir)
    removed = 0
    for relative in _TEMPORARY_FILES_IN:
        folder = working_dir / relative
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if not _EXTRACT_FOLDER.fullmatch(entry.name):
                continue
            if entry.is_dir() and relative == "normalize":
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
            elif entry.is_file():
                entry.unlink(missing_ok=True)
                removed += 1
    return removed + _remove_orphaned_new_packages(working_dir)


def _remove_orphaned_new_packages(working_dir: Path) -> int:
    new_packages = working_dir / "load" / "new"
    if not new_packages.is_dir():
        return 0
    extracted = working_dir / "normalize" / "extracted"
    removed = 0
    for package in new_packages.iterdir():
        if package.is_dir() and not (extracted / package.name).exists():
            shutil.rmtree(package, ignore_errors=True)
            removed += 1
    return removed


def remove_earlier_loaded_packages(pipeline: dlt.Pipeline, keep: Collection[str]) -> int:
    """Deletes the loaded packages under the pipeline's ``load/loaded/`` but those of ``keep`` (load ids: the
    run that just succeeded); returns how many. Call it only after a successful run."""
    loaded = Path(pipeline.working_dir) / "load" / "loaded"
    if not loaded.is_dir():
        return 0
    removed = 0
    for package in loaded.iterdir():
        if package.is_dir() and package.name not in keep:
            shutil.rmtree(package, ignore_errors=True)
            removed += 1
    return removed
