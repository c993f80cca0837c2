"""The notifications domain's public service: what routers and other domains call."""

from rapport.notifications._inbox import count_unread, do_mark_read, list_notifications
from rapport.notifications._preferences import (
    DEFAULT_SETTINGS,
    TYPE_CATEGORY,
    NotificationSettings,
    Preference,
    channels_for,
    default_enabled,
    do_put_preferences,
    effective_channels,
    get_notification_settings,
    get_preferences,
    in_quiet_hours,
    list_preferences,
)
from rapport.notifications._subscriptions import (
    EndpointRule,
    access_subscription,
    application_server_key,
    deactivate,
    do_delete_subscription,
    do_register_subscription,
    list_subscriptions,
)
from rapport.notifications.errors import (
    PushEndpointRefused,
    PushSubscriptionNotFound,
    TooManyPushSubscriptions,
    WebPushNotConfigured,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "TYPE_CATEGORY",
    "EndpointRule",
    "NotificationSettings",
    "Preference",
    "PushEndpointRefused",
    "PushSubscriptionNotFound",
    "TooManyPushSubscriptions",
    "WebPushNotConfigured",
    "access_subscription",
    "application_server_key",
    "channels_for",
    "count_unread",
    "deactivate",
    "default_enabled",
    "do_delete_subscription",
    "do_mark_read",
    "do_put_preferences",
    "do_register_subscription",
    "effective_channels",
    "get_notification_settings",
    "get_preferences",
    "in_quiet_hours",
    "list_notifications",
    "list_preferences",
    "list_subscriptions",
]
