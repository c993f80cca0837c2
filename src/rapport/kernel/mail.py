"""Outgoing e-mail: over SMTP to the configured server, or into the log when none is
configured, so a developer can read a verification code without a mail server."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

import structlog

from rapport.config import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, mail: Mail) -> None:
        """Deliver one message. Failures are logged, not raised: the request that caused
        the mail has already been answered and committed."""
        if not self._settings.smtp_host:
            log.info("mail.logged", to=mail.to, subject=mail.subject, body=mail.body)
            return
        try:
            await asyncio.to_thread(self._send_smtp, mail)
            log.info("mail.sent", to=mail.to, subject=mail.subject)
        except (OSError, smtplib.SMTPException) as exc:
            log.error("mail.failed", to=mail.to, subject=mail.subject, error=str(exc))

    def _send_smtp(self, mail: Mail) -> None:
        settings = self._settings
        message = EmailMessage()
        message["From"] = settings.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
