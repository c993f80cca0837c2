"""Identity: accounts, credentials, sessions, tokens, one-time codes, two-factor,
API keys and external sign-in."""
