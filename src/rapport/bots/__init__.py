"""Bots (seed 003 robots): accounts owned by a person or the platform that authenticate
with API keys, take part in conversations, hear their messages through a signed webhook
and answer through the API. Schema `bots`."""
