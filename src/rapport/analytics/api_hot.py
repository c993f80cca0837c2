"""Analytics' hot route in the app's hot lane (rapport.kernel.hot_routes): a batch of events,
the request a client makes most after sending messages.

It does what the FastAPI route of the same path does (rapport.analytics.api_events), with
the same model and service, for requests that are plainly well formed; for any other (a
body too large, not the model's shape, no plain token) it returns None and the FastAPI
route answers, so that every refusal of a malformed request is FastAPI's own."""

from __future__ import annotations

from pydantic import ValidationError

from rapport.analytics import schemas as s
from rapport.analytics import service
from rapport.kernel.hot_routes import HotAnswer, HotRequest, HotRoute
from rapport.kernel.runtime import Runtime


async def send_events(request: HotRequest) -> HotAnswer | None:
    if len(request.body) > s.MAX_BATCH_BYTES or request.query() is None:
        return None
    payload = request.json_object()
    if payload is None:
        return None
    try:
        batch = s.EventBatch.model_validate(payload)
    except ValidationError:
        return None
    token = request.bearer()
    if token is None:
        return None
    runtime: Runtime = request.app_state.runtime
    actor = await runtime.authenticate(runtime, token).actor()
    accepted = await service.ingest_events(runtime, actor, batch=batch)
    return HotAnswer(202, accepted.model_dump_json().encode())


HOT_ROUTES = (HotRoute("POST", "/v1/analytics/events", send_events),)
