"""Realtime: the WebSocket stream (`/v1/stream`) and Server-Sent Events (`/v1/events`)
over the outbox, with one reader per process deciding once per event who receives it
(docs/REALTIME.md, docs/decisions/0016)."""
