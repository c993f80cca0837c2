"""The bots domain's problems, each with its stable type (kernel.errors)."""

from rapport.kernel.errors import NotFound as _NotFound
from rapport.kernel.errors import ValidationFailed as _ValidationFailed


class BotNotFound(_NotFound):
    """No such bot, or one the caller does not manage: the two are never told apart."""

    slug = "bot-not-found"
    title = "No such bot, or you do not manage it"


class WebhookUrlRefused(_ValidationFailed):
    """A webhook this server will not POST to: in production only https to a public
    host (of RAPPORT_BOT_WEBHOOK_HOSTS when set), so that no one can aim the server at
    its own network."""

    slug = "webhook-url-refused"
    title = "This server does not deliver to that webhook URL"
