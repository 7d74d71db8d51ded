"""``octogen-bq-subscribe``: subscribe a GCP project to an Octogen Analytics Hub listing.

Dry-run by default (says what it would do, changes nothing); ``--apply`` subscribes. Exit codes: 0 ok,
2 bad arguments, 3 access pending (retry in a few minutes), 1 any other error. Errors are one line on
stderr (and a JSON object on stdout with ``--json``), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from octogen_source.bigquery.listing import SubscriptionTarget, resolve_target
from octogen_source.bigquery.subscribe import (
    BigQuerySubscriptionResult,
    GoogleCredentialsMissingError,
    find_subscription,
    subscribe_to_listing,
)
from octogen_source.cli import OneLineArgumentParser
from octogen_source.errors import OctogenBigQueryAccessPendingError, OctogenBigQueryError

PROG = "octogen-bq-subscribe"
EXIT_OK, EXIT_ERROR, EXIT_BAD_ARGUMENTS, EXIT_ACCESS_PENDING = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog=PROG,
        description="Subscribe a GCP project to an Octogen BigQuery Analytics Hub listing (zero-copy "
        "linked dataset). Dry-run unless --apply. Uses Google Application Default Credentials, "
        "not the Octogen API key.",
    )
    parser.add_argument(
        "--listing", required=True, help="projects/<p>/locations/<loc>/dataExchanges/<ex>/listings/<id>"
    )
    parser.add_argument("--project", required=True, help="your GCP project that gets the linked dataset")
    parser.add_argument("--dataset", help="linked dataset id (default: octogen_<listing-id>)")
    parser.add_argument("--location", help="dataset location (default: the listing's location)")
    parser.add_argument("--friendly-name", help="display name of the linked dataset")
    parser.add_argument("--apply", action="store_true", help="subscribe (default: dry-run, changes nothing)")
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    mode = "apply" if args.apply else "dry_run"
    try:
        target = resolve_target(
            listing_resource=args.listing,
            destination_project=args.project,
            destination_dataset_id=args.dataset,
            location=args.location,
            friendly_name=args.friendly_name,
        )
    except OctogenBigQueryError as exc:
        return _fail(args.json, mode, "bad_arguments", str(exc), EXIT_BAD_ARGUMENTS)
    try:
        report = _apply(target) if args.apply else _dry_run(target)
    except OctogenBigQueryAccessPendingError as exc:
        return _fail(args.json, mode, "access_pending", str(exc), EXIT_ACCESS_PENDING)
    except OctogenBigQueryError as exc:
        return _fail(args.json, mode, "error", str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    report = {"mode": mode, **report, **_describe_target(target)}
    print(json.dumps(report, indent=2) if args.json else _human(report))
    return EXIT_OK


def _dry_run(target: SubscriptionTarget) -> dict[str, Any]:
    note = None
    try:
        existing = find_subscription(
            listing_resource=target.listing.name, destination_project=target.destination_project
        )
    except GoogleCredentialsMissingError as exc:
        existing, note = None, f"could not check for an existing subscription: {exc}"
    return {
        "action": "already_subscribed" if existing else "would_subscribe",
        "existing_checked": note is None,
        "note": note,
        "subscription": existing.to_dict() if existing else None,
    }


def _apply(target: SubscriptionTarget) -> dict[str, Any]:
    result: BigQuerySubscriptionResult = subscribe_to_listing(
        listing_resource=target.listing.name,
        destination_project=target.destination_project,
        destination_dataset_id=target.destination_dataset_id,
        location=target.location,
        friendly_name=target.friendly_name,
    )
    return {
        "action": "already_subscribed" if result.already_subscribed else "subscribed",
        "existing_checked": True,
        "note": None,
        "subscription": result.to_dict(),
    }


def _describe_target(target: SubscriptionTarget) -> dict[str, Any]:
    return {
        "listing_resource": target.listing.name,
        "destination": {
            "project": target.destination_project,
            "dataset": target.destination_dataset_id,
            "location": target.location,
            "friendly_name": target.friendly_name,
        },
    }


def _human(report: dict[str, Any]) -> str:
    destination = report["destination"]
    subscription = report["subscription"]
    wanted = f"{destination['project']}.{destination['dataset']} (location {destination['location']}"
    wanted += f", friendly name {destination['friendly_name']!r})" if destination["friendly_name"] else ")"
    lines: list[str] = []
    if report["mode"] == "dry_run":
        lines.append("Dry run: nothing was changed.")
    lines.append(f"Listing: {report['listing_resource']}")
    if subscription is None:
        lines.append(f"Would subscribe, creating linked dataset {wanted}.")
        if report["note"]:
            lines.append(f"Note: {report['note']}")
        else:
            lines.append(f"No subscription to this listing exists yet in project {destination['project']}.")
    else:
        linked = f"{subscription['linked_project']}.{subscription['linked_dataset']}"
        verb = "Subscribed" if report["action"] == "subscribed" else "Already subscribed"
        lines.append(f"{verb}: linked dataset {linked} (state {subscription['state']}).")
        lines.append(f"Subscription: {subscription['subscription_name']}")
        lines.append(f"Query it: {subscription['sample_query']}")
    if report["mode"] == "dry_run":
        lines.append(
            "Run again with --apply to subscribe."
            if subscription is None
            else "--apply would return this subscription as it is."
        )
    return "\n".join(lines)


def _fail(as_json: bool, mode: str, kind: str, message: str, exit_code: int) -> int:
    label = "access pending" if kind == "access_pending" else "error"
    print(f"{PROG}: {label}: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"mode": mode, "action": kind, "error": message, "exit_code": exit_code}, indent=2))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
