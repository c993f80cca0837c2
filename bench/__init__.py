"""Benchmarks: real servers driven over HTTP, kept out of the test suite.

Each module runs with `python -m bench.<name>` and writes its results under
`bench/results/` (git-ignored); `docs/PERFORMANCE.md` records the reference figures.
"""
