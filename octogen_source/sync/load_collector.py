"""dlt's progress collector for a sync: the one the caller chose (or none), and before each load step the
process hands back the memory it freed (:func:`octogen_source.allocator.give_back_freed_memory`).

A load adds DuckDB's memory (up to ``--duckdb-memory-limit``) to what the process holds at its start; after
a walk of 1,000,000 products that was ≈ 35 MiB of freed but resident memory (docs/performance.md). dlt tells a
collector when each step of a run starts (``on_start_trace_step``), the one place it offers between the
normalize and the load of one ``pipeline.run``; :mod:`octogen_source.sync.load_memory` sets DuckDB's memory
limit for the load there too (``before_load``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dlt.common.runtime.collector_base import Collector

from octogen_source.allocator import give_back_freed_memory


class GivingBackMemoryBeforeLoads(Collector):
    """Passes everything on to ``inner`` (dlt's ``NullCollector`` when the caller chose none)."""

    def __init__(self, inner: Collector) -> None:
        self.inner = inner
        self.before_load: Callable[[Any], None] | None = None
        """Called with the run's trace at the start of each load step, after the memory is given back."""

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        self.inner.update(name, inc, total, inc_total, message, label)  # type: ignore[arg-type]

    def __call__(self, step: str) -> GivingBackMemoryBeforeLoads:
        self.step = step
        self.inner(step)
        return self

    def _start(self, step: str) -> None:
        self.inner._start(step)

    def _stop(self) -> None:
        self.inner._stop()

    def on_start_trace(self, trace: Any, step: Any, pipeline: Any) -> None:
        self.inner.on_start_trace(trace, step, pipeline)

    def on_start_trace_step(self, trace: Any, step: Any, pipeline: Any) -> None:
        if step == "load":
            give_back_freed_memory()
            if self.before_load is not None:
                self.before_load(trace)
        self.inner.on_start_trace_step(trace, step, pipeline)

    def on_end_trace_step(
        self, trace: Any, step: Any, pipeline: Any, step_info: Any, send_state: bool
    ) -> None:
        self.inner.on_end_trace_step(trace, step, pipeline, step_info, send_state)

    def on_end_trace(self, trace: Any, pipeline: Any, send_state: bool) -> None:
        self.inner.on_end_trace(trace, pipeline, send_state)
