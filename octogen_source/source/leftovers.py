"""Removing what a killed run left in the pipeline's working directory.

dlt extracts into ``normalize/<16 hex digits>/`` (one folder per extract) and moves a package to
``normalize/extracted/`` only once its extract completes; the folder is deleted when the extract ends. A run
killed while extracting leaves its folder behind, and dlt never looks at it again: without this, killed runs
accumulate them (13-17 after 30 kills). Nothing in them was loaded or will be: the next walk finds every
change again by comparing the API with the destination, so they are deleted before a run starts.

One pipeline is run by one process at a time (README): a folder of another live extract of the same pipeline
cannot exist here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dlt

_EXTRACT_FOLDER = re.compile(r"[0-9a-f]{16}")


def remove_abandoned_extracts(pipeline: dlt.Pipeline) -> int:
    """Deletes the extract folders of killed runs under the pipeline's ``normalize/``; returns how many."""
    normalize = Path(pipeline.working_dir) / "normalize"
    if not normalize.is_dir():
        return 0
    removed = 0
    for folder in normalize.iterdir():
        if folder.is_dir() and _EXTRACT_FOLDER.fullmatch(folder.name):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
