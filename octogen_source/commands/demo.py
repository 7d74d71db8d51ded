"""``octogen-sync --demo``: a local sandbox synced into ./octogen_demo.duckdb, then a sample query."""

from __future__ import annotations

from dataclasses import replace

from octogen_source.cli import format_table
from octogen_source.commands.output import report_json
from octogen_source.sync import SyncOptions, format_summary, run_sync

DEMO_DATABASE = "octogen_demo.duckdb"
DEMO_PIPELINE = "octogen_demo"
DEMO_QUERY = """\
SELECT catalog, title, brand, current_price, original_price,
       CAST(ROUND(100 * (1 - current_price / original_price)) AS INTEGER) AS discount_pct, in_stock, sizes
FROM octogen.products_current
WHERE original_price > current_price
ORDER BY discount_pct DESC, current_price DESC, title
LIMIT 5"""


def run_demo(options: SyncOptions, generation: str, *, as_json: bool = False) -> None:
    """Starts the sandbox on a free port, syncs it into ./octogen_demo.duckdb, shows a query (``as_json``:
    prints the run result as JSON instead)."""
    import duckdb

    from octogen_source.sandbox import Sandbox

    with Sandbox(catalogs=3, products=150, ungranted=0, generation=generation) as sandbox:
        if not as_json:
            print(f"sandbox ({generation} API) running at {sandbox.base_url}; syncing into ./{DEMO_DATABASE}")
        report = run_sync(
            replace(
                options,
                api_key=sandbox.api_key,
                base_url=sandbox.base_url,
                duckdb_path=DEMO_DATABASE,
                pipeline_name=DEMO_PIPELINE,
                destination="duckdb",
                catalogs=options.catalogs or tuple(sandbox.granted_catalogs()),
            )
        )
    if as_json:
        print(report_json(report))
        return
    print(format_summary(report))
    query = DEMO_QUERY.replace("octogen.", f"{report.dataset}.")
    print(f"\nThe biggest discounts:\n{query}\n")
    with duckdb.connect(DEMO_DATABASE, read_only=True) as connection:
        cursor = connection.execute(query)
        header = [column[0] for column in cursor.description or ()]
        print("\n".join(format_table(header, cursor.fetchall())))
