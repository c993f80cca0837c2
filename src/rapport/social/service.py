"""The social domain's public service: what routers and other domains call."""

from rapport.social._blocks import do_block, do_unblock, is_blocked, list_blocks
from rapport.social._contacts import (
    GroupPageRequest,
    access_contact,
    decode_group_cursor,
    do_add_contact,
    do_add_to_group,
    do_create_group,
    do_delete_group,
    do_remove_contact,
    do_remove_from_group,
    do_rename_group,
    do_update_contact,
    list_contacts,
    list_groups,
)
from rapport.social._devices import access_device, do_register_device, do_remove_device, list_devices
from rapport.social._parts import (
    PARTS,
    Part,
    access_user_part,
    do_delete_part,
    do_put_part,
    get_part,
    list_sensitive_access,
)
from rapport.social._phone_lookup import lookup_phones
from rapport.social._profiles import (
    access_profile,
    do_set_verified_badge,
    do_update_profile,
    get_own_profile,
    list_activity,
    list_languages,
)
from rapport.social._requests import are_contacts, do_answer_request, do_request_contact, list_requests
from rapport.social._search import DEFAULT_LIMIT as SEARCH_DEFAULT_LIMIT
from rapport.social._search import MAX_LIMIT as SEARCH_MAX_LIMIT
from rapport.social._search import MAX_QUERY_LENGTH as SEARCH_MAX_QUERY_LENGTH
from rapport.social._search import ProfileMatch, search_profiles
from rapport.social._settings import do_update_settings, get_settings
from rapport.social._status import do_delete_status, do_post_status, list_my_statuses, list_user_statuses
from rapport.social.errors import UserNotFound
from rapport.social.schemas import ProfileUpdate

__all__ = [
    "PARTS",
    "SEARCH_DEFAULT_LIMIT",
    "SEARCH_MAX_LIMIT",
    "SEARCH_MAX_QUERY_LENGTH",
    "GroupPageRequest",
    "Part",
    "ProfileMatch",
    "ProfileUpdate",
    "UserNotFound",
    "access_contact",
    "access_device",
    "access_profile",
    "access_user_part",
    "are_contacts",
    "decode_group_cursor",
    "do_add_contact",
    "do_add_to_group",
    "do_answer_request",
    "do_block",
    "do_create_group",
    "do_delete_group",
    "do_delete_part",
    "do_delete_status",
    "do_post_status",
    "do_put_part",
    "do_register_device",
    "do_remove_contact",
    "do_remove_device",
    "do_remove_from_group",
    "do_rename_group",
    "do_request_contact",
    "do_set_verified_badge",
    "do_unblock",
    "do_update_contact",
    "do_update_profile",
    "do_update_settings",
    "get_own_profile",
    "get_part",
    "get_settings",
    "is_blocked",
    "list_activity",
    "list_blocks",
    "list_contacts",
    "list_devices",
    "list_groups",
    "list_languages",
    "list_my_statuses",
    "list_requests",
    "list_sensitive_access",
    "list_user_statuses",
    "lookup_phones",
    "search_profiles",
]
