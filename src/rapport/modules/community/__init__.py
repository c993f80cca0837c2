"""Community (seed 001): tags, stories and their feed, habits with check-ins and streaks,
and the garden that grows with them. Schema `community`."""
