#!/usr/bin/env bash
# Installs the BigQuery emulator (bqemulator, from PyPI) into its own virtualenv for the warehouse tests.
#
# Own venv because it pins sqlglot 30.x, which breaks dlt's pipeline.dataset() in the project's venv. It runs
# DuckDB 1.5.5 because the spatial extension it refuses to start without is on PyPI for that version
# (duckdb-extension-spatial); the extension is installed into a DuckDB home inside the venv, which the tests
# hand to the emulator as HOME, so nothing is written to the user's ~/.duckdb.
#
# Usage: bash tests/bigquery_emulator/setup.sh [VENV_DIR]   (default: .bqemulator-venv at the repo root;
# the tests look there, or in $BQEMULATOR_VENV). Idempotent: a complete venv is left as it is.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-${BQEMULATOR_VENV:-$repo/.bqemulator-venv}}"
marker="$venv/.octogen-ready"
requirements="$here/requirements.txt"

if [[ -f "$marker" ]] && cmp -s "$marker" "$requirements"; then
    echo "bqemulator ready in $venv"
    exit 0
fi

uv venv --quiet --allow-existing --python 3.11 "$venv"
uv pip install --quiet --python "$venv/bin/python" -r "$requirements"
mkdir -p "$venv/duckdb-home"
HOME="$venv/duckdb-home" "$venv/bin/python" - <<'PY'
import duckdb
from duckdb_extensions import import_extension

import_extension("spatial")
installed = duckdb.sql("SELECT installed FROM duckdb_extensions() WHERE extension_name = 'spatial'").fetchone()
assert installed and installed[0], "DuckDB spatial extension did not install"
PY
cp "$requirements" "$marker"
echo "bqemulator ready in $venv"
