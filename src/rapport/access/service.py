"""The access domain's public service: what routers and other parts of Rapport call.

Other domains ask `has_permission` / `require_permission` / `is_platform_admin` in the
actor's transaction (their policies call the SQL functions of the same names), and, as
system work, `holders_of` / `holds_permission` (who works a queue),
`is_platform_admin_account` (whether the account system work acts for administers the
platform) and `grant_role_system` / `revoke_role_system` (the demo and tests); the command line changes grants at an
operator's command, audited (`do_grant_role_operator` / `do_revoke_role_operator`), and
reads them all (`list_all_roles`, `list_all_grants`)."""

from rapport.access._admin import ADMIN_PERMISSION as ADMIN_PERMISSION
from rapport.access._check import get_my_permissions as get_my_permissions
from rapport.access._check import has_permission as has_permission
from rapport.access._check import holders_of as holders_of
from rapport.access._check import holds_permission as holds_permission
from rapport.access._check import is_platform_admin as is_platform_admin
from rapport.access._check import is_platform_admin_account as is_platform_admin_account
from rapport.access._check import require_permission as require_permission
from rapport.access._grants import GRANT_CREATED as GRANT_CREATED
from rapport.access._grants import GRANT_REVOKED as GRANT_REVOKED
from rapport.access._grants import do_grant_role as do_grant_role
from rapport.access._grants import do_grant_role_operator as do_grant_role_operator
from rapport.access._grants import do_revoke_grant as do_revoke_grant
from rapport.access._grants import do_revoke_role_operator as do_revoke_role_operator
from rapport.access._grants import grant_role_system as grant_role_system
from rapport.access._grants import list_all_grants as list_all_grants
from rapport.access._grants import list_grants as list_grants
from rapport.access._grants import revoke_role_system as revoke_role_system
from rapport.access._roles import access_role as access_role
from rapport.access._roles import do_create_role as do_create_role
from rapport.access._roles import do_delete_role as do_delete_role
from rapport.access._roles import do_set_role_permissions as do_set_role_permissions
from rapport.access._roles import do_update_role as do_update_role
from rapport.access._roles import list_all_roles as list_all_roles
from rapport.access._roles import list_permissions as list_permissions
from rapport.access._roles import list_roles as list_roles
from rapport.access.errors import GrantConversationNotFound as GrantConversationNotFound
from rapport.access.errors import PermissionRequired as PermissionRequired
from rapport.access.errors import RoleNotFound as RoleNotFound
