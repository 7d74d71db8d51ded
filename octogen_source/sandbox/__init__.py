"""A local sandbox of the Octogen Platform Catalog API v1, for tests, the demo and benchmarks.

``Sandbox`` runs in-process (a background thread); ``python -m octogen_source.sandbox`` runs it as a
process, controlled through ``RemoteSandbox``. It speaks today's API by default (``generation="current"``)
and the May 2026 one on request (``"seed"``); see :mod:`octogen_source.sandbox.generations`.
"""

from octogen_source.sandbox.faults import ENDPOINTS, FAULT_KINDS
from octogen_source.sandbox.generations import API_GENERATIONS, ApiGeneration
from octogen_source.sandbox.local import Sandbox
from octogen_source.sandbox.remote import RemoteSandbox, RemoteSandboxError
from octogen_source.sandbox.state import SandboxState
from octogen_source.sandbox.wire import WIRE_SHAPES

__all__ = [
    "API_GENERATIONS",
    "ENDPOINTS",
    "FAULT_KINDS",
    "WIRE_SHAPES",
    "ApiGeneration",
    "RemoteSandbox",
    "RemoteSandboxError",
    "Sandbox",
    "SandboxState",
]
