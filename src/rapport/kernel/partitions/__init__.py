"""Monthly partitions made ahead (migration 2026_11_29_0012).

The tables registered in `kernel.monthly_partitions` (messages first) are range-partitioned
by month; a row whose month has no partition cannot be written. `kernel.ensure_partitions()`
makes the missing ones, from the current month through a few months ahead. It is called
by the migration that registers a table, at every start of the server, once a day by a
`PartitionUpkeep` in every server process, and by `rapport db maintain`.
"""

from rapport.kernel.partitions._upkeep import DAILY, PartitionUpkeep, ensure_partitions, make_partitions_ahead

__all__ = ["DAILY", "PartitionUpkeep", "ensure_partitions", "make_partitions_ahead"]
