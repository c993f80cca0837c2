"""What the notifications domain refuses, each with a stable problem type."""

from rapport.kernel.errors import Conflict, NotFound, ValidationFailed


class PushSubscriptionNotFound(NotFound):
    slug = "push-subscription-not-found"
    title = "No such push subscription"


class WebPushNotConfigured(NotFound):
    slug = "web-push-not-configured"
    title = "This server has no VAPID key: Web Push is not available"


class PushEndpointRefused(ValidationFailed):
    slug = "push-endpoint-refused"
    title = "A push endpoint must be an https URL of a browser's push service"


class TooManyPushSubscriptions(Conflict):
    slug = "too-many-push-subscriptions"
    title = "This account has too many push subscriptions: delete some first"
