"""Settings from the environment and `.env`, every name prefixed `RAPPORT_`."""

from __future__ import annotations

import os
import re
import secrets
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class OidcProvider(BaseModel):
    """An external OpenID Connect provider whose ID tokens Rapport accepts.

    Google: issuer `https://accounts.google.com`, JWKS `https://www.googleapis.com/oauth2/v3/certs`.
    Auth0: issuer `https://<tenant>.auth0.com/`, JWKS `https://<tenant>.auth0.com/.well-known/jwks.json`.
    """

    issuer: str
    audience: str
    jwks_url: str
    algorithms: list[str] = ["RS256"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAPPORT_", env_file=".env", env_file_encoding="utf-8", extra="ignore")

    environment: Literal["development", "production", "test"] = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    # Server processes `rapport serve` runs, each with its own listening socket on the same
    # port (SO_REUSEPORT) and its own pools: one event loop per core (docs/OPERATIONS.md).
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)

    # Where the embedded PostgreSQL keeps its data, and the generated secret key.
    data_dir: Path = Path(".rapport")

    # A server to use instead of the embedded one. Its user bootstraps Rapport's roles
    # and database; the server itself then connects as `rapport_app`.
    database_url: str | None = None
    database_name: str = "rapport"
    owner_password: SecretStr | None = None
    app_password: SecretStr | None = None
    # rapport_worker's password (system work: sign-in, token lookups, jobs); when unset,
    # the app's password is used.
    worker_password: SecretStr | None = None
    database_pool_size: int = 10
    # How many hot-path reads (history, the conversation list) the server runs at once, in
    # all, shared out among its processes like the pools: reads are CPU in PostgreSQL, and
    # more at once than about twice the cores only queue on them (rapport.kernel.direct).
    database_hot_readers: int = Field(default_factory=lambda: 2 * (os.cpu_count() or 1), ge=1)
    # The system work's own pool, connected as rapport_worker (docs/decisions/0001). Token
    # refresh, the hottest path there is, runs on it: sized like the request pool, with no
    # overflow (docs/PERFORMANCE.md).
    database_system_pool_size: int = 10
    # PgBouncer in transaction pooling between Rapport and PostgreSQL: no prepared
    # statement outlives its transaction (PgBouncer 1.18 cannot follow them), and what
    # needs a session of its own goes to RAPPORT_DATABASE_LISTEN_URL (docs/decisions/0029).
    database_pgbouncer: bool = False
    # PostgreSQL itself (the primary, not a pooler): where the realtime bus and the job
    # worker LISTEN, and where provisioning and migrations run (they hold session locks).
    # Its host, port, database and options are used; the roles stay Rapport's own.
    database_listen_url: str | None = None
    # A streaming replica: the reads that tolerate lag (history, message search, people
    # search, analytics reports) go to it once it has replayed what the primary had
    # written when the read began, so a person always reads their own writes
    # (docs/decisions/0029). Its host, port, database and options; the role is rapport_app.
    database_replica_url: str | None = None
    # How long such a read waits for the replica to catch up before it goes to the primary.
    database_replica_wait_ms: int = Field(default=200, ge=0, le=10_000)
    # After the replica fails to answer, reads go to the primary for this long before
    # trying it again.
    database_replica_retry_seconds: float = Field(default=5.0, ge=0)

    # Signs access tokens and keys the HMAC of one-time codes. Generated into the data
    # folder when not given, so a development server keeps its sessions across restarts.
    secret_key: SecretStr | None = None
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_days: int = 30
    otp_ttl_minutes: int = 15
    otp_max_attempts: int = 5

    # argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile).
    password_time_cost: int = 3
    password_memory_cost_kib: int = 65536
    password_parallelism: int = 4
    password_min_length: int = 10

    # Brute force: after `login_lock_threshold` consecutive failures for one e-mail from one
    # client IP, that client is locked out of that address for base * 2^(failures -
    # threshold) seconds, up to the maximum (docs/decisions/0003).
    login_lock_threshold: int = 5
    login_lock_base_seconds: int = 30
    login_lock_max_seconds: int = 3600
    # Per client IP: at most this many failed logins in the window.
    login_ip_max_failures: int = 50
    login_ip_window_seconds: int = 300
    # Failed sign-ins for one address typed, from every client, per hour; past it only
    # clients that signed in to the account within `login_known_client_days` get through.
    login_address_failures_per_hour: int = 20
    login_known_client_days: int = 90

    # Rate limits of codes and mail (docs/decisions/0008), as token buckets: the whole
    # limit may be spent at once, then it refills evenly over its period.
    # Wrong e-mailed codes of any purpose per address typed: bounds guessing to years.
    code_guesses_per_address_per_day: int = 10
    # Wrong codes (e-mailed, TOTP or recovery) from one client IP.
    code_guesses_per_ip_per_hour: int = 60
    # Wrong TOTP codes per account, at sign-in and when signed in alike.
    second_factor_guesses_per_account_per_day: int = 10
    # Requests to the endpoints that send mail (register, resend, forgot), refused past these.
    mail_requests_per_address_per_hour: int = 20
    mail_requests_per_ip_per_hour: int = 60
    # Mails to one address; past this a request is answered as if sent, and nothing is sent.
    mails_per_address_per_hour: int = 5
    # SMS codes and notes (identity's phones) spend the code limits above, with the number
    # typed as the address, and these. Requests that send an SMS, refused past these:
    sms_requests_per_number_per_hour: int = 10
    sms_requests_per_ip_per_hour: int = 30
    # SMS to one number; past this a request is answered as if sent, and nothing is sent.
    sms_per_number_per_hour: int = 3
    # SMS the whole deployment sends per UTC day (SMS cost money and attract SMS pumping);
    # past it requests that would send one are refused (503) until the day ends.
    sms_per_day: int = Field(default=1000, ge=0)
    # The countries (ISO 3166-1 alpha-2, comma separated) whose numbers may receive SMS;
    # empty: every country.
    sms_allowed_countries: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Phone numbers one account may look up per day to find contacts.
    phone_lookups_per_user_per_day: int = 200
    # Analytics events one person's clients may send per hour (a batch spends one unit per event).
    analytics_events_per_user_per_hour: int = 20_000

    max_body_bytes: int = 1_048_576

    # Reverse proxies whose forwarded header names the client (IPs or CIDRs, comma
    # separated). Empty: the direct peer is the client and forwarded headers are ignored.
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(default_factory=list)
    # The one header those proxies write; the other is ignored, since a client could
    # send it through a proxy that does not overwrite it.
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"

    # Browser origins on other sites allowed to call the API (comma separated, or `*`).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cors_allow_credentials: bool = False

    # When set, `/metrics` answers only `Authorization: Bearer <token>`; when unset, only
    # a direct connection from this machine. Anyone else gets 404.
    metrics_token: SecretStr | None = None

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "Rapport <no-reply@localhost>"

    # Delivery of notifications. Each provider is used only when its settings are complete;
    # the server says once, in its log, why one is not.
    # Web Push (RFC 8292): the key pair `rapport admin vapid-keys` prints (base64url; the
    # public key is derived from the private one when not given), and a contact for the
    # push services' operators, `mailto:` or `https:`.
    vapid_public_key: str | None = None
    vapid_private_key: SecretStr | None = None
    vapid_subject: str | None = None
    # Where a production server accepts Web Push endpoints: the push services of the
    # browsers (Chrome, Firefox, Safari, Edge), each name or any name under it. Anything
    # else would let a person make the server POST to a host of their choosing.
    webpush_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "fcm.googleapis.com",
            "updates.push.services.mozilla.com",
            "push.services.mozilla.com",
            "web.push.apple.com",
            "notify.windows.com",
        ]
    )
    # Firebase Cloud Messaging (HTTP v1): the service account's JSON key, as a file or the
    # JSON itself; the project defaults to the key's own. The token URI and endpoint are
    # the key's and FCM's unless overridden (a local stand-in).
    fcm_service_account_file: Path | None = None
    fcm_service_account_json: SecretStr | None = None
    fcm_project_id: str | None = None
    fcm_token_uri: str | None = None
    fcm_endpoint: str = "https://fcm.googleapis.com"
    # Apple Push Notification service, token-based: the key's id, the team id, the .p8 key
    # (its PEM text or the file's path) and the app's bundle id. The endpoint is production;
    # development builds of an app need https://api.sandbox.push.apple.com.
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_private_key: SecretStr | None = None
    apns_topic: str | None = None
    apns_endpoint: str = "https://api.push.apple.com"
    # SMS through Twilio's Messages API (or a gateway speaking its format): the account SID
    # and auth token, and the sender, a phone number (E.164), an alphanumeric sender id or a
    # Messaging Service SID (MG…).
    sms_base_url: str = "https://api.twilio.com"
    sms_account: str | None = None
    sms_token: SecretStr | None = None
    sms_sender: str | None = None

    # Where uploaded files' bytes are kept (rapport.media._storage): a folder, `media_dir`
    # (default `<data_dir>/media`), or an S3-compatible bucket, addressed path-style
    # (`<endpoint>/<bucket>/<key>`) and signed with AWS Signature Version 4. Uploads in
    # progress are staged in `<media_dir>/staging` whichever is chosen.
    media_storage: Literal["local", "s3"] = "local"
    media_dir: Path | None = None
    s3_endpoint: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # The largest upload of each kind of file, in bytes (rapport.media._limits): the kind is
    # sniffed from the first bytes, and an upload is refused (413) as soon as it passes its
    # kind's limit, or before a byte is read when its Content-Length says it will.
    media_max_image_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    media_max_video_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    media_max_audio_bytes: int = Field(default=200 * 1024 * 1024, ge=1)
    media_max_document_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    media_max_other_bytes: int = Field(default=50 * 1024 * 1024, ge=1)

    # Background jobs (docs/decisions/0010): `rapport serve` runs a worker in its own
    # process unless this is off, for deployments that run `rapport worker` beside it.
    worker_in_process: bool = True
    # Jobs one worker runs at a time.
    worker_concurrency: int = 4

    # Deleting an account (DELETE /v1/me): the days in which signing in again restores it,
    # before it is erased; and how recent a sign-in must be to delete without the password.
    account_deletion_grace_days: int = Field(default=30, ge=0)
    account_deletion_fresh_sign_in_minutes: int = Field(default=10, ge=1)
    # How long a finished export of one's data can be downloaded before it is removed.
    export_ttl_days: int = Field(default=7, ge=1)

    # Co-parenting mediation: an OpenAI-compatible chat-completions endpoint (its base URL,
    # such as https://api.openai.com/v1 or a local server's) that analyses a draft for
    # people who gave the ai_features consent. Unset, or when it fails or takes longer than
    # the timeout, the local analysis (lexicon and rules) answers.
    llm_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=3.0, gt=0, le=60)

    # Matching's subscriptions: the signing secret (whsec_...) of the Stripe webhook endpoint
    # POST /v1/matching/webhooks/stripe. Unset, that endpoint answers 404 to every delivery.
    stripe_webhook_secret: SecretStr | None = None

    # Bots' webhooks (rapport.bots): how long one delivery may take before it counts as
    # failed (and is retried), and where a production server delivers: https only, to a
    # public address, on one of these hosts or under one when the list is not empty. Any
    # other would let a bot's owner make the server POST to a host of their choosing.
    bot_webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    bot_webhook_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A bot's streamed message still open this long after it began ends as failed (the job
    # bots.expire_streams): a bot that crashed mid-answer leaves no message growing for ever.
    bot_stream_timeout_s: float = Field(default=300.0, gt=0, le=86400)

    # Sign-ins located by address (rapport.location): a move from the previous location
    # faster than this, once both locations' accuracy is allowed for, is impossible
    # travel (900 km/h: an airliner's cruising speed); an address whose risk score is at
    # least `location_risky_score` (or a Tor exit) is risky. Either flags the sign-in, and
    # with `location_suspicious_second_factor` holds it for the account's second factor.
    location_travel_max_kmh: float = Field(default=900.0, gt=0, le=100000)
    location_risky_score: int = Field(default=75, ge=0, le=100)
    location_suspicious_second_factor: bool = True

    # Where uploads are scanned for viruses: clamd's socket, `unix:/run/clamav/clamd.ctl` or
    # `tcp:host:3310`. Unset, a built-in check runs instead (the EICAR test signature and
    # files whose bytes contradict their name; rapport.media._processing._scan).
    clamd: str | None = None

    # The bus between server processes and nodes (rapport.realtime._bus): announcements that
    # events committed, typing and presence. NATS when its URL is set (nats://host:4222),
    # else Redis pub/sub (redis://host:6379/0), else PostgreSQL NOTIFY on one connection of
    # each process's own.
    nats_url: str | None = None
    redis_url: str | None = None

    oidc_providers: dict[str, OidcProvider] = Field(default_factory=dict)

    log_json: bool | None = None
    log_level: str = "INFO"

    @field_validator(
        "trusted_proxies", "cors_origins", "webpush_hosts", "sms_allowed_countries", "bot_webhook_hosts", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):
                return orjson.loads(stripped)
            return [part.strip() for part in stripped.split(",") if part.strip()]
        return value

    @field_validator("sms_allowed_countries")
    @classmethod
    def _country_codes(cls, value: list[str]) -> list[str]:
        codes = [code.strip().upper() for code in value]
        wrong = [code for code in codes if not re.fullmatch(r"[A-Z]{2}", code)]
        if wrong:
            raise ValueError(f"ISO 3166-1 alpha-2 country codes, such as FR or US (not {', '.join(wrong)})")
        return codes

    @field_validator("vapid_subject")
    @classmethod
    def _contact_uri(cls, value: str | None) -> str | None:
        # RFC 8292 §2.1: the contact push services use to reach whoever runs this server.
        if value is not None and not re.fullmatch(r"(mailto:[^@\s]+@|https://)[^\s]+", value):
            raise ValueError("a mailto: or https:// URI")
        return value

    @model_validator(mode="after")
    def _s3_complete(self) -> Settings:
        # Refused at start rather than at the first upload: a server that cannot store
        # what it accepts must not come up.
        if self.media_storage == "s3":
            needed = ("s3_endpoint", "s3_bucket", "s3_access_key_id", "s3_secret_access_key")
            missing = [f"RAPPORT_{name.upper()}" for name in needed if not getattr(self, name)]
            if missing:
                raise ValueError(f"RAPPORT_MEDIA_STORAGE=s3 needs {', '.join(missing)}")
        return self

    def resolved_secret_key(self) -> str:
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        return _secret_key_in(self.data_dir)


def _secret_key_in(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
