"""Sync Octogen catalogs into DuckDB or BigQuery: ``octogen-sync``, runnable from a checkout.

    uv run python pipelines/sync.py --demo   # the same as `octogen-sync --demo`, `python -m octogen_source`

The command lives in :mod:`octogen_source.commands.sync`; see ``--help``.
"""

import sys

from octogen_source.commands.sync import main

if __name__ == "__main__":
    sys.exit(main())
