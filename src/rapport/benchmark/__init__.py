"""`rapport bench`: a realistic data set at a chosen scale, loaded with COPY and resumable
(`generate`), and the measures of send, history, search, unread, fan-out and login through
the real servers beside the same work straight in PostgreSQL (`run`). The command is
`rapport.benchmark.cli.bench_app`; docs/PERFORMANCE.md says how figures are read."""
