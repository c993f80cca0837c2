"""Outgoing e-mail, through the job queue: `enqueue_mail` adds a job in the caller's
transaction, and the worker hands it to the `Mailer`, which speaks SMTP to the configured
server, or writes the message into the log when none is configured, so that a developer
can read a verification code without a mail server."""

from __future__ import annotations

import asyncio
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from rapport.config import Settings
from rapport.kernel import jobs

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    # An HTML alternative to the plain text `body` (multipart/alternative), when given.
    html: str | None = None


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def send(self, mail: Mail) -> None:
        """Deliver one message.

        Raises:
            OSError: the mail server could not be reached.
            smtplib.SMTPException: the mail server refused the message; the job that sends
                it tries again later.
        """
        host = self._settings.smtp_host
        if not host:
            log.info("mail.logged", to=mail.to, subject=mail.subject, body=mail.body)
            return
        await asyncio.to_thread(self._send_smtp, host, mail)
        log.info("mail.sent", to=mail.to, subject=mail.subject)

    def _send_smtp(self, host: str, mail: Mail) -> None:
        settings = self._settings
        message = EmailMessage()
        message["From"] = settings.mail_from
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        if mail.html is not None:
            message.add_alternative(mail.html, subtype="html")
        with smtplib.SMTP(host, settings.smtp_port, timeout=10) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            smtp.send_message(message)


# Six attempts span about five minutes of backoff (10, 20, 40, 80, 160 s): the codes the
# mail carries expire after fifteen, so later attempts would deliver a dead code.
@jobs.tasks.task("kernel.send_mail", queue="mail", max_attempts=6, timeout_seconds=60)
async def send_mail(ctx: jobs.JobContext, payload: jobs.JsonObject) -> None:
    """Deliver a queued message. A crash between the server's answer and the row's
    deletion sends it again: at least once, as the queue promises."""
    await ctx.runtime.mailer.send(
        Mail(to=payload["to"], subject=payload["subject"], body=payload["body"], html=payload.get("html"))
    )


async def enqueue_mail(db: AsyncConnection, mail: Mail) -> None:
    """Send `mail` once the caller's transaction commits; nothing is sent if it rolls back,
    and a process that dies after the commit loses nothing (the job stays queued)."""
    payload = {"to": mail.to, "subject": mail.subject, "body": mail.body}
    if mail.html is not None:
        payload["html"] = mail.html
    await jobs.enqueue(db, send_mail, payload)
