"""Identity's public service: what routers and other domains call."""

from rapport.identity._accounts import (
    MailResult,
    check_password_strength,
    do_change_password,
    do_create_user,
    do_register,
    do_request_password_reset,
    do_resend_verification,
    do_reset_password,
    do_verify_email,
    get_user,
    get_user_by_email,
)
from rapport.identity._api_keys import (
    authenticate_api_key,
    do_create_api_key,
    do_revoke_api_key,
    list_api_keys,
)
from rapport.identity._authenticate import authenticate
from rapport.identity._history import list_login_history, list_security_events
from rapport.identity._oidc import OidcIdentity, do_oidc_login, verify_oidc_token
from rapport.identity._sessions import do_logout, do_refresh, do_revoke_session, list_sessions
from rapport.identity._signin import do_password_login, do_totp_login
from rapport.identity._totp import (
    do_confirm_totp,
    do_disable_totp,
    do_enrol_totp,
    do_regenerate_recovery_codes,
)

__all__ = [
    "MailResult",
    "OidcIdentity",
    "authenticate",
    "authenticate_api_key",
    "check_password_strength",
    "do_change_password",
    "do_confirm_totp",
    "do_create_api_key",
    "do_create_user",
    "do_disable_totp",
    "do_enrol_totp",
    "do_logout",
    "do_oidc_login",
    "do_password_login",
    "do_refresh",
    "do_regenerate_recovery_codes",
    "do_register",
    "do_request_password_reset",
    "do_resend_verification",
    "do_reset_password",
    "do_revoke_api_key",
    "do_revoke_session",
    "do_totp_login",
    "do_verify_email",
    "get_user",
    "get_user_by_email",
    "list_api_keys",
    "list_login_history",
    "list_security_events",
    "list_sessions",
    "verify_oidc_token",
]
