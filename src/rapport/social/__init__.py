"""Social: profiles, settings, contacts and requests, contact groups, blocks, search."""
