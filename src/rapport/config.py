"""Settings from the environment and `.env`, every name prefixed `RAPPORT_`."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    # Where the embedded PostgreSQL keeps its data, and the generated secret key.
    data_dir: Path = Path(".rapport")

    # A server to use instead of the embedded one. Its user bootstraps Rapport's roles
    # and database; the server itself then connects as `rapport_app`.
    database_url: str | None = None
    database_name: str = "rapport"
    owner_password: SecretStr | None = None
    app_password: SecretStr | None = None
    database_pool_size: int = 10

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

    # Brute force: after `login_lock_threshold` consecutive failures for one e-mail the
    # account is locked for base * 2^(failures - threshold) seconds, up to the maximum.
    login_lock_threshold: int = 5
    login_lock_base_seconds: int = 30
    login_lock_max_seconds: int = 3600
    # Per client IP: at most this many failed logins in the window.
    login_ip_max_failures: int = 50
    login_ip_window_seconds: int = 300

    max_body_bytes: int = 1_048_576

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    mail_from: str = "Rapport <no-reply@localhost>"

    oidc_providers: dict[str, OidcProvider] = Field(default_factory=dict)

    log_json: bool | None = None
    log_level: str = "INFO"

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
