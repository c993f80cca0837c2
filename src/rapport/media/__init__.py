"""Media: files stored once by content, scanned and processed, downloaded with ranges,
attached to messages, set as profile photos, gathered in albums, shared, versioned and
commented on; seen only by those allowed (media.may_read_file in the migration)."""
