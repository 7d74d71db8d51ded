"""What the tests of ``octogen-bq-autosubscribe`` and ``octogen-mcp-login`` share: the subscriber's project
and principal, the arguments every autosubscribe run needs, and its error prefix (the fake control plane's
fixture, ``control_plane_server``, is in conftest.py)."""

from __future__ import annotations

PROJECT = "acme-analytics"
PRINCIPAL = "serviceAccount:octogen-reader@acme-analytics.iam.gserviceaccount.com"
BASE_ARGS = ["--project", PROJECT, "--principal", PRINCIPAL]
PREFIX = "octogen-bq-autosubscribe: error: "
