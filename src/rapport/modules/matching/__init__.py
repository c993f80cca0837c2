"""Matching (seeds 001 and 002): dating profiles, the attachment assessment, feature
vectors and similarity, daily matches with likes and passes, and subscriptions.
Schema `matching`."""
