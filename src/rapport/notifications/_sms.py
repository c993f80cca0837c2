"""SMS through Twilio's Messages API (and the gateways that speak its format): a form POST
to `/2010-04-01/Accounts/{account}/Messages.json` with HTTP basic auth."""

from __future__ import annotations

import httpx

from rapport.config import Settings
from rapport.notifications._providers import Outcome, network_failure, retryable

DEFAULT_BASE_URL = "https://api.twilio.com"
# Twilio error codes that mean this number will not receive SMS from us: it is invalid, a
# landline, or its owner replied STOP. Trying again cannot help.
UNREACHABLE_NUMBER_CODES = frozenset({21211, 21614, 21610})


class TwilioSms:
    def __init__(self, *, base_url: str, account: str, token: str, sender: str, http: httpx.AsyncClient) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json"
        self._auth = httpx.BasicAuth(account, token)
        self._sender = sender
        self._http = http

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient) -> TwilioSms | str:
        """The sender, or why there is none."""
        missing = [
            f"RAPPORT_{name.upper()}"
            for name in ("sms_account", "sms_token", "sms_sender")
            if not getattr(settings, name)
        ]
        if missing:
            return f"{', '.join(missing)} not set"
        assert settings.sms_account and settings.sms_token and settings.sms_sender
        return cls(
            base_url=settings.sms_base_url,
            account=settings.sms_account,
            token=settings.sms_token.get_secret_value(),
            sender=settings.sms_sender,
            http=http,
        )

    async def send(self, phone: str, body: str, *, idempotency_key: str) -> Outcome:
        """Send one SMS. `idempotency_key` (the notification's id) goes as the
        `Idempotency-Key` header: a gateway that honours it sends a repeated request once;
        the caller's own record of what was sent is what keeps a retry from sending twice
        where it does not."""
        form = {"To": phone, "Body": body}
        # A Messaging Service (MG…) picks the sending number itself; otherwise a number or
        # alphanumeric sender id goes in From.
        form["MessagingServiceSid" if self._sender.startswith("MG") else "From"] = self._sender
        try:
            response = await self._http.post(
                self._url, data=form, auth=self._auth, headers={"Idempotency-Key": idempotency_key}
            )
        except httpx.HTTPError as exc:
            return network_failure(exc)
        return _outcome(response)


def _outcome(response: httpx.Response) -> Outcome:
    status = response.status_code
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    if status in (200, 201):
        return Outcome(
            delivered=True,
            http_status=status,
            gone=False,
            retry=False,
            detail=str(answer.get("status") or "accepted"),
            provider_id=answer.get("sid"),
        )
    code = answer.get("code")
    return Outcome(
        delivered=False,
        http_status=status,
        gone=code in UNREACHABLE_NUMBER_CODES,
        retry=retryable(status),
        detail=f"{code or status}: {answer.get('message') or response.text[:300]}",
    )
