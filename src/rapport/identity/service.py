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
    set_account_status,
)
from rapport.identity._api_keys import (
    authenticate_api_key,
    do_create_api_key,
    do_revoke_api_key,
    list_api_keys,
)
from rapport.identity._authenticate import authenticate
from rapport.identity._bot_accounts import BotKey, do_close_bot_account, do_create_bot_account, do_rotate_bot_key
from rapport.identity._guests import do_create_guest
from rapport.identity._history import list_login_history, list_security_events
from rapport.identity._oidc import OidcIdentity, do_oidc_login, verify_oidc_token
from rapport.identity._phone_codes import SmsResult
from rapport.identity._phone_lookups import spend_phone_lookups
from rapport.identity._phone_signin import (
    do_phone_password_login,
    do_request_sign_in_code,
    do_request_sms_second_factor,
    do_sms_login,
    do_sms_second_factor_login,
)
from rapport.identity._phones import (
    PhoneChange,
    do_register_phone,
    do_remove_phone,
    do_request_phone_change,
    do_request_phone_password_reset,
    do_resend_phone_verification,
    do_reset_password_by_phone,
    do_set_sms_fallback,
    do_verify_phone,
    do_verify_phone_change,
    get_phone,
    get_verified_phone,
)
from rapport.identity._records import record_security_event
from rapport.identity._sessions import do_logout, do_refresh, do_revoke_session, list_sessions, revoke_sessions
from rapport.identity._signin import do_password_login, do_step_up_login, do_totp_login
from rapport.identity._sms import Sms, SmsGateway, SmsSender, enqueue_sms, use_sms_gateway
from rapport.identity._totp import (
    do_confirm_totp,
    do_disable_totp,
    do_enrol_totp,
    do_regenerate_recovery_codes,
)
from rapport.identity.schemas import TokenPair
from rapport.identity.schemas_phones import parse_phone

__all__ = [
    "BotKey",
    "MailResult",
    "OidcIdentity",
    "PhoneChange",
    "Sms",
    "SmsGateway",
    "SmsResult",
    "SmsSender",
    "TokenPair",
    "authenticate",
    "authenticate_api_key",
    "check_password_strength",
    "do_change_password",
    "do_close_bot_account",
    "do_confirm_totp",
    "do_create_api_key",
    "do_create_bot_account",
    "do_create_guest",
    "do_create_user",
    "do_disable_totp",
    "do_enrol_totp",
    "do_logout",
    "do_oidc_login",
    "do_password_login",
    "do_phone_password_login",
    "do_refresh",
    "do_regenerate_recovery_codes",
    "do_register",
    "do_register_phone",
    "do_remove_phone",
    "do_request_password_reset",
    "do_request_phone_change",
    "do_request_phone_password_reset",
    "do_request_sign_in_code",
    "do_request_sms_second_factor",
    "do_resend_phone_verification",
    "do_resend_verification",
    "do_reset_password",
    "do_reset_password_by_phone",
    "do_revoke_api_key",
    "do_revoke_session",
    "do_rotate_bot_key",
    "do_set_sms_fallback",
    "do_sms_login",
    "do_sms_second_factor_login",
    "do_step_up_login",
    "do_totp_login",
    "do_verify_email",
    "do_verify_phone",
    "do_verify_phone_change",
    "enqueue_sms",
    "get_phone",
    "get_user",
    "get_user_by_email",
    "get_verified_phone",
    "list_api_keys",
    "list_login_history",
    "list_security_events",
    "list_sessions",
    "parse_phone",
    "record_security_event",
    "revoke_sessions",
    "set_account_status",
    "spend_phone_lookups",
    "use_sms_gateway",
    "verify_oidc_token",
]
