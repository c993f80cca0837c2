"""The delivery providers behind one interface: Web Push, FCM and APNs for push, one SMS
provider. The pipeline hands a `PushTarget` and a `PushMessage` to `Providers.push` and
records the `Outcome`; it never needs to know which service is at the other end.

Each provider is used only when its settings are complete; `providers_from` says once, in
the log, why one is not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx
import structlog

from rapport.config import Settings

log = structlog.get_logger(__name__)

PushProvider = Literal["webpush", "fcm", "apns"]
Urgency = Literal["very-low", "low", "normal", "high"]


@dataclass(frozen=True)
class PushMessage:
    """What a push carries; Web Push sends these fields as the JSON the service worker reads."""

    title: str
    body: str
    url: str | None
    # The group_key: also the Web Push Topic, the APNs collapse id and the FCM collapse key,
    # so that a newer push of the group replaces an undelivered older one.
    tag: str | None
    data: dict[str, str]
    ttl_s: int = 86_400
    urgency: Urgency = "normal"


@dataclass(frozen=True)
class PushTarget:
    provider: PushProvider
    endpoint: str | None = None
    p256dh: str | None = None
    auth: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Outcome:
    delivered: bool  # accepted by the push service or provider
    http_status: int | None
    # The subscription or token no longer exists (Web Push 404/410, FCM UNREGISTERED, APNs
    # 410 or BadDeviceToken): deactivate it, and never try it again.
    gone: bool
    retry: bool  # worth trying again later: 5xx, 429, the network
    detail: str
    provider_id: str | None = None  # the provider's id of the message (SMS sid, apns-id, FCM name)


class PushSender(Protocol):
    async def send(self, target: PushTarget, message: PushMessage) -> Outcome: ...


class SmsSender(Protocol):
    async def send(self, phone: str, body: str, *, idempotency_key: str) -> Outcome: ...


class _Closable(Protocol):
    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Providers:
    """Built once per process from the settings."""

    push: PushSender  # dispatches on target.provider to webpush / fcm / apns
    sms: SmsSender | None  # None when no SMS provider is configured
    vapid_public_key: str | None  # the applicationServerKey browsers subscribe with
    # What the providers opened of their own (APNs keeps its own HTTP/2 connection).
    _owned: tuple[_Closable, ...] = field(default=(), repr=False)

    def push_configured(self, provider: PushProvider) -> bool:
        """Whether pushes to this provider can be sent at all (a subscription of an
        unconfigured provider is kept, and skipped)."""
        return isinstance(self.push, PushDispatch) and provider in self.push.senders

    async def aclose(self) -> None:
        for closable in self._owned:
            await closable.aclose()


class PushDispatch:
    """The `PushSender` that hands each target to its provider's sender."""

    def __init__(self, senders: Mapping[PushProvider, PushSender]) -> None:
        self.senders = dict(senders)

    async def send(self, target: PushTarget, message: PushMessage) -> Outcome:
        sender = self.senders.get(target.provider)
        if sender is None:
            return Outcome(
                delivered=False,
                http_status=None,
                gone=False,
                retry=False,
                detail=f"{target.provider} is not configured",
            )
        return await sender.send(target, message)


def network_failure(exc: httpx.HTTPError) -> Outcome:
    """A request that got no answer: the provider may be down, so it is worth another try."""
    return Outcome(delivered=False, http_status=None, gone=False, retry=True, detail=f"{type(exc).__name__}: {exc}")


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def providers_from(settings: Settings, http: httpx.AsyncClient) -> Providers:
    """The providers the settings configure; the others are left out, each with one log
    line saying what is missing.

    Raises:
        ValueError: a provider's settings are present but unusable (a key that does not
            parse, a VAPID public key that is not the private key's).
    """
    # Imported here: each of them imports this module's types.
    from rapport.notifications import _apns, _fcm, _sms, _webpush

    senders: dict[PushProvider, PushSender] = {}
    owned: list[_Closable] = []
    vapid_public_key: str | None = None

    webpush = _webpush.WebPushSender.from_settings(settings, http)
    if isinstance(webpush, str):
        _disabled("webpush", webpush)
    else:
        senders["webpush"] = webpush
        vapid_public_key = webpush.public_key

    fcm = _fcm.FcmSender.from_settings(settings, http)
    if isinstance(fcm, str):
        _disabled("fcm", fcm)
    else:
        senders["fcm"] = fcm

    apns = _apns.ApnsSender.from_settings(settings)
    if isinstance(apns, str):
        _disabled("apns", apns)
    else:
        senders["apns"] = apns
        owned.append(apns)

    sms: SmsSender | None = None
    twilio = _sms.TwilioSms.from_settings(settings, http)
    if isinstance(twilio, str):
        _disabled("sms", twilio)
    else:
        sms = twilio

    return Providers(push=PushDispatch(senders), sms=sms, vapid_public_key=vapid_public_key, _owned=tuple(owned))


def _disabled(provider: str, reason: str) -> None:
    log.info("notifications.provider_disabled", provider=provider, reason=reason)
