"""A language model's opinion of a draft, through an OpenAI-compatible chat-completions
endpoint (RAPPORT_LLM_URL). Optional and never relied on: any failure, a malformed answer
or an answer slower than RAPPORT_LLM_TIMEOUT_S gives None, and the local analysis answers.

Only the draft is sent: not the person's triggers, nor who they are, nor to whom they
write. Nothing of the draft is logged."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import httpx
import orjson
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from rapport.config import Settings
from rapport.kernel.schemas import Text
from rapport.modules.coparenting.schemas_mediation import ToneLabel

log = structlog.get_logger(__name__)

SYSTEM_PROMPT = (
    "You help a separated parent keep their messages to the other parent civil. You are given a draft "
    "message. Decide whether it is hostile (insults, threats, blame, contempt, shouting) and, if it is, "
    "write a calmer version that keeps every request, time, place and fact about the children, in the "
    "draft's language, without adding anything. Answer with one JSON object only: "
    '{"hostile": true or false, "tone": "friendly" | "neutral" | "tense" | "hostile", '
    '"rewrite": "<the calmer version>" or null}.'
)


class Verdict(BaseModel):
    """What the model must answer; anything else in its object is ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    hostile: bool
    tone: ToneLabel
    rewrite: Annotated[str, Text(10000, multiline=True)] | None = None


def configured(settings: Settings) -> bool:
    return bool(settings.llm_url)


def request_body(settings: Settings, draft: str) -> dict[str, Any]:
    return {
        "model": settings.llm_model,
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": draft}],
    }


async def ask(http: httpx.AsyncClient, settings: Settings, draft: str) -> Verdict | None:
    """The model's verdict on the draft, or None when it cannot be had in time."""
    if not settings.llm_url:
        return None
    url = settings.llm_url.rstrip("/") + "/chat/completions"
    headers = {"Accept": "application/json"}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    try:
        # The whole exchange, not each read: a server dripping bytes must not hold the sender up.
        async with asyncio.timeout(settings.llm_timeout_s):
            response = await http.post(
                url, json=request_body(settings, draft), headers=headers, timeout=settings.llm_timeout_s
            )
        response.raise_for_status()
        content = response.json()["choices"][0]["message"]["content"]
        verdict = Verdict.model_validate(orjson.loads(content))
    except TimeoutError:
        log.warning("coparenting.llm_timeout", timeout_s=settings.llm_timeout_s)
        return None
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, ValidationError) as error:
        # ValueError covers undecodable JSON (orjson's and httpx's) and pydantic's errors.
        log.warning("coparenting.llm_failed", error=type(error).__name__)
        return None
    if verdict.hostile and verdict.rewrite is None:
        log.warning("coparenting.llm_failed", error="hostile without a rewrite")
        return None
    return verdict
