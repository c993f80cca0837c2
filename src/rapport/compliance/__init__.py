"""Compliance and the data lifecycle: consents, exports, erasure after a grace period,
retention, the hash-chained audit, integrity checks, backups and breach records."""
