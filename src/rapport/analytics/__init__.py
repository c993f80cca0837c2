"""Product analytics (seed 004): events clients send in batches and Rapport records from its
outbox, sessions folded from them, crash reports deduplicated by stack, and the reports
made from them. Schema `analytics`."""
