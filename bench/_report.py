"""What both benchmarks report: percentiles and the machine they ran on (shared with
`rapport bench run`)."""

from __future__ import annotations

from rapport.benchmark.report import machine, percentile

__all__ = ["machine", "percentile"]
