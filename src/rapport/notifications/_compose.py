"""Rendering notifications with the templates of `notifications.templates` (seeded by
migration 2026_11_29_0019): one per type, channel and language, Jinja2 in a sandbox.

Templates are content an operator may edit, so they run in Jinja2's `SandboxedEnvironment`
(no attribute access to Python internals, no imports); what they are given is a flat
dict of strings and numbers made here, never a row or a model. HTML parts are rendered
with autoescape on, so a display name or message text cannot inject markup; plain text
parts with it off, so an apostrophe stays an apostrophe.

The context the templates are given (the seeded ones are in migration 2026_11_29_0019):

- in-app (which makes the notification's title, from `subject`, and body): `actor_name`,
  `conversation_name` (empty for a direct conversation), `preview` (the start of the
  message), `emoji`, `headline` and `detail` (security and system notices), `count` (how
  many events the notification bundles) and `action_url`;
- push, e-mail and SMS: the notification's `title` and `body`, `action_url`, `count`,
  and `app_name` (the sender's name of `RAPPORT_MAIL_FROM`);
- the digest e-mail: `notifications` (each with `title`, `body`, `action_url`, `count`,
  `created_at`), `count` and `app_name`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

Channel = Literal["in_app", "push", "email", "sms"]

DEFAULT_LANGUAGE = "en"
# The longest text a preview keeps of a message: a push shows two lines at most.
PREVIEW_CHARS = 140
# SMS bodies are cut here: two segments of GSM-7.
SMS_CHARS = 306


@dataclass(frozen=True)
class Template:
    type: str
    channel: Channel
    language: str
    subject: str | None
    body_text: str
    body_html: str | None


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


class TemplateMissing(LookupError):
    """No template for this type and channel, in the language asked nor in English: the
    migration seeds every one, so an operator deleted it."""


# Undefined names fail loudly: a template naming a variable the pipeline does not give
# is a mistake an operator should see in the job's error, not an empty gap in a mail.
_TEXT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=False)
_HTML = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=False)


@lru_cache(maxsize=512)
def _compiled(source: str, *, html: bool) -> Any:
    return (_HTML if html else _TEXT).from_string(source)


def render_string(source: str, context: Mapping[str, Any], *, html: bool = False) -> str:
    """One template source with this context, escaped for HTML when `html`.

    Raises:
        jinja2.TemplateError: the template does not parse, names a variable the context
            lacks, or tries what the sandbox forbids.
    """
    return str(_compiled(source, html=html).render(**context)).strip()


def render(template: Template, context: Mapping[str, Any]) -> Rendered:
    """The subject, text and HTML parts of a template (those it has).

    Raises:
        jinja2.TemplateError: as render_string.
    """
    return Rendered(
        subject=render_string(template.subject, context) if template.subject else None,
        text=render_string(template.body_text, context),
        html=render_string(template.body_html, context, html=True) if template.body_html else None,
    )


_TEMPLATE = text(
    """
    SELECT type, channel, language, subject, body_text, body_html FROM notifications.templates
     WHERE type = :type AND channel = :channel AND language IN (:language, :fallback)
     ORDER BY language = :language DESC
     LIMIT 1
    """
)


def language_of(code: str | None) -> str:
    """The language a template is looked up in: a profile's `language_code` ("pt-BR" ->
    "pt"), English when it has none."""
    if not code:
        return DEFAULT_LANGUAGE
    return code.split("-", 1)[0].split("_", 1)[0].lower() or DEFAULT_LANGUAGE


async def get_template(db: AsyncConnection, *, type: str, channel: Channel, language: str) -> Template:
    """The template of a type and channel in a language, else in English.

    Raises:
        TemplateMissing: neither exists.
    """
    row = (
        await db.execute(
            _TEMPLATE, {"type": type, "channel": channel, "language": language, "fallback": DEFAULT_LANGUAGE}
        )
    ).one_or_none()
    if row is None:
        raise TemplateMissing(f"No {channel} template for {type!r} notifications in {language!r} or English.")
    return Template(row.type, row.channel, row.language, row.subject, row.body_text, row.body_html)


async def compose(
    db: AsyncConnection, *, type: str, channel: Channel, language: str, context: Mapping[str, Any]
) -> Rendered:
    """Look the template up and render it.

    Raises:
        TemplateMissing: no template for the type and channel.
        jinja2.TemplateError: the template is broken.
    """
    template = await get_template(db, type=type, channel=channel, language=language)
    return render(template, context)


def preview(content: str | None) -> str:
    """The start of a message's text for a notification: whitespace folded, cut at a word."""
    folded = " ".join((content or "").split())
    if len(folded) <= PREVIEW_CHARS:
        return folded
    cut = folded[:PREVIEW_CHARS].rsplit(" ", 1)[0] or folded[:PREVIEW_CHARS]
    return cut + "…"


def sms_text(rendered: Rendered) -> str:
    return rendered.text if len(rendered.text) <= SMS_CHARS else rendered.text[: SMS_CHARS - 1] + "…"


__all__ = [
    "Channel",
    "Rendered",
    "Template",
    "TemplateError",
    "TemplateMissing",
    "compose",
    "get_template",
    "language_of",
    "preview",
    "render",
    "render_string",
    "sms_text",
]
