"""The messaging domain's public service: what routers and other domains call."""

from rapport.messaging._audience import MessageAudience, get_message_audience
from rapport.messaging._calls import (
    access_call,
    do_decline_call,
    do_end_call,
    do_join_call,
    do_leave_call,
    do_rate_call,
    do_start_call,
    list_calls,
)
from rapport.messaging._conversations import (
    access_conversation,
    do_create_conversation,
    do_delete_conversation,
    do_join,
    do_leave,
    do_open_direct,
    do_update_conversation,
    get_conversation,
    list_public_channels,
)
from rapport.messaging._drafts import do_delete_draft, do_put_draft, get_draft
from rapport.messaging._encrypted import (
    EncryptedMessage,
    do_edit_encrypted_message,
    do_post_encrypted_message,
    list_encrypted_conversation_ids,
)
from rapport.messaging._history import list_room_history
from rapport.messaging._hot import (
    do_post_message,
    do_post_system_message,
    forward_message,
    list_conversations,
    mark_read,
    read_history,
    send_message,
)
from rapport.messaging._invites import do_create_invite, do_join_by_invite, do_revoke_invite, list_invites
from rapport.messaging._messages import (
    access_forward_source,
    do_delete_message,
    do_edit_message,
    do_forward,
    do_hide_message,
    get_message,
    list_edits,
)
from rapport.messaging._moderation import (
    do_add_blocked_term,
    do_flag_message,
    do_remove_blocked_term,
    do_report_message,
    do_resolve_report,
    get_moderation_queue,
    list_blocked_terms,
    list_conversation_reports,
    list_flagged_messages,
    list_open_reports,
)
from rapport.messaging._participants import (
    do_add_participant,
    do_change_participant,
    do_remove_participant,
    do_update_membership,
    list_participants,
)
from rapport.messaging._pins import do_pin, list_pins
from rapport.messaging._reactions import do_react
from rapport.messaging._receipts import do_mark_delivered, list_receipts
from rapport.messaging._rooms import (
    RoomType,
    do_admit,
    do_dismiss,
    do_open_room,
    do_set_room_limit,
    do_set_room_status,
)
from rapport.messaging._search import DEFAULT_LIMIT as SEARCH_DEFAULT_LIMIT
from rapport.messaging._search import MAX_LIMIT as SEARCH_MAX_LIMIT
from rapport.messaging._search import MAX_QUERY_LENGTH as SEARCH_MAX_QUERY_LENGTH
from rapport.messaging._search import MessageSearchPage, SearchFilters, search_messages
from rapport.messaging._streams import do_stream
from rapport.messaging._sync import DEFAULT_SYNC_LIMIT, MAX_POSITION, MAX_SYNC_LIMIT, get_memberships, list_sync_events
from rapport.messaging._threads import (
    access_thread,
    do_create_thread,
    do_move_to_thread,
    do_update_thread,
    list_thread_messages,
    list_threads,
)
from rapport.messaging.schemas import MessageOut, SendMessage
from rapport.messaging.schemas_conversations import ConversationCreate
from rapport.messaging.schemas_messages import CreateThread

__all__ = [
    "DEFAULT_SYNC_LIMIT",
    "MAX_POSITION",
    "MAX_SYNC_LIMIT",
    "SEARCH_DEFAULT_LIMIT",
    "SEARCH_MAX_LIMIT",
    "SEARCH_MAX_QUERY_LENGTH",
    "ConversationCreate",
    "CreateThread",
    "EncryptedMessage",
    "MessageAudience",
    "MessageOut",
    "MessageSearchPage",
    "RoomType",
    "SearchFilters",
    "SendMessage",
    "access_call",
    "access_conversation",
    "access_forward_source",
    "access_thread",
    "do_add_blocked_term",
    "do_add_participant",
    "do_admit",
    "do_change_participant",
    "do_create_conversation",
    "do_create_invite",
    "do_create_thread",
    "do_decline_call",
    "do_delete_conversation",
    "do_delete_draft",
    "do_delete_message",
    "do_dismiss",
    "do_edit_encrypted_message",
    "do_edit_message",
    "do_end_call",
    "do_flag_message",
    "do_forward",
    "do_hide_message",
    "do_join",
    "do_join_by_invite",
    "do_join_call",
    "do_leave",
    "do_leave_call",
    "do_mark_delivered",
    "do_move_to_thread",
    "do_open_direct",
    "do_open_room",
    "do_pin",
    "do_post_encrypted_message",
    "do_post_message",
    "do_post_system_message",
    "do_put_draft",
    "do_rate_call",
    "do_react",
    "do_remove_blocked_term",
    "do_remove_participant",
    "do_report_message",
    "do_resolve_report",
    "do_revoke_invite",
    "do_set_room_limit",
    "do_set_room_status",
    "do_start_call",
    "do_stream",
    "do_update_conversation",
    "do_update_membership",
    "do_update_thread",
    "forward_message",
    "get_conversation",
    "get_draft",
    "get_memberships",
    "get_message",
    "get_message_audience",
    "get_moderation_queue",
    "list_blocked_terms",
    "list_calls",
    "list_conversation_reports",
    "list_conversations",
    "list_edits",
    "list_encrypted_conversation_ids",
    "list_flagged_messages",
    "list_invites",
    "list_open_reports",
    "list_participants",
    "list_pins",
    "list_public_channels",
    "list_receipts",
    "list_room_history",
    "list_sync_events",
    "list_thread_messages",
    "list_threads",
    "mark_read",
    "read_history",
    "search_messages",
    "send_message",
]
