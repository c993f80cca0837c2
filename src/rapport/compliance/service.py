"""Compliance's public service: what routers, the command line and other domains call.

Consents, compliance logs, breaches, administrators' actions and the hash-chained audit
live here; exports and erasure (service_exports, service_deletion), retention
(service_retention), integrity checks (service_db) and backups (service_backup) have
services of their own. Lower domains that must honour compliance state ask the database
(`compliance.has_consent`), never this module."""

from rapport.compliance._admin import (
    AUDIT_TABLES,
    AccountChange,
    do_change_account_status,
    list_audit,
    list_compliance_logs,
    list_deletion_requests,
    list_export_requests,
    read_consents,
    record_action,
    require_platform_admin,
)
from rapport.compliance._audit_chain import (
    ChainBreak,
    ChainReport,
    erase_from_audit,
    prune_audit,
    verify_all,
    verify_chain,
)
from rapport.compliance._breaches import do_record_breach, do_record_notification, list_breaches
from rapport.compliance._consents import (
    CONSENT_TYPES,
    consent_history,
    current_consents,
    do_record_consent,
    has_consent,
)
from rapport.compliance._logs import list_logs, log_event, record_data_export
from rapport.compliance.models import ConsentType, EventType

__all__ = [
    "AUDIT_TABLES",
    "CONSENT_TYPES",
    "AccountChange",
    "ChainBreak",
    "ChainReport",
    "ConsentType",
    "EventType",
    "consent_history",
    "current_consents",
    "do_change_account_status",
    "do_record_breach",
    "do_record_consent",
    "do_record_notification",
    "erase_from_audit",
    "has_consent",
    "list_audit",
    "list_breaches",
    "list_compliance_logs",
    "list_deletion_requests",
    "list_export_requests",
    "list_logs",
    "log_event",
    "prune_audit",
    "read_consents",
    "record_action",
    "record_data_export",
    "require_platform_admin",
    "verify_all",
    "verify_chain",
]
