"""The social domain's public service: what routers and other domains call."""

from rapport.social._blocks import do_block, do_unblock, is_blocked, list_blocks
from rapport.social._contacts import (
    access_contact,
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
from rapport.social._profiles import (
    access_profile,
    do_set_verified_badge,
    do_update_profile,
    get_own_profile,
    list_activity,
)
from rapport.social._requests import are_contacts, do_answer_request, do_request_contact, list_requests
from rapport.social._search import search_profiles
from rapport.social._settings import do_update_settings, get_settings

__all__ = [
    "access_contact",
    "access_profile",
    "are_contacts",
    "do_add_contact",
    "do_add_to_group",
    "do_answer_request",
    "do_block",
    "do_create_group",
    "do_delete_group",
    "do_remove_contact",
    "do_remove_from_group",
    "do_rename_group",
    "do_request_contact",
    "do_set_verified_badge",
    "do_unblock",
    "do_update_contact",
    "do_update_profile",
    "do_update_settings",
    "get_own_profile",
    "get_settings",
    "is_blocked",
    "list_activity",
    "list_blocks",
    "list_contacts",
    "list_groups",
    "list_requests",
    "search_profiles",
]
