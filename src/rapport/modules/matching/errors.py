"""The matching module's problems, each with its stable type (kernel.errors)."""

from rapport.kernel.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed


class StripeWebhookNotConfigured(NotFound):
    """Without a signing secret nothing can be verified: the endpoint is as good as absent."""

    slug = "stripe-webhook-not-configured"
    title = "This server takes no Stripe webhooks (RAPPORT_STRIPE_WEBHOOK_SECRET is not set)"


class StripeSignatureMissing(BadRequest):
    slug = "stripe-signature-missing"
    title = "The Stripe-Signature header is missing"


class StripeSignatureInvalid(BadRequest):
    slug = "stripe-signature-invalid"
    title = "No signature of the Stripe-Signature header matches the payload"


class StripeSignatureExpired(BadRequest):
    slug = "stripe-signature-expired"
    title = "The Stripe-Signature timestamp is older than the tolerance (a replayed delivery?)"


class StripeEventMalformed(BadRequest):
    slug = "stripe-event-malformed"
    title = "The payload is not a Stripe event Rapport can read"


class StripeEventUnusable(ValidationFailed):
    slug = "stripe-event-unusable"
    title = "The event names no person of this server (client_reference_id must be a user's id)"


class StripeSubscriptionUnlinked(Conflict):
    slug = "stripe-subscription-unlinked"
    title = "No person is linked to this subscription yet: Stripe will deliver the event again"


class MatchNotFound(NotFound):
    """No such match, or not the caller's, or with someone either of the two blocks: never
    told apart."""

    slug = "match-not-found"
    title = "No such match"


class MatchDecided(Conflict):
    slug = "match-already-decided"
    title = "You have already decided otherwise on this match"


class ProfileNotFound(NotFound):
    """No such profile, or one the caller may not see: the two are never told apart."""

    slug = "matching-profile-not-found"
    title = "No such dating profile"


class TooYoung(ValidationFailed):
    slug = "matching-too-young"
    title = "Dating profiles are for adults: you must be 18 or older"


class DailyLikesSpent(TooManyRequests):
    slug = "daily-likes-spent"
    title = "You have used today's likes; premium and elite have no limit"


class PremiumRequired(Forbidden):
    slug = "premium-required"
    title = "Seeing who liked you needs a premium or elite subscription"
