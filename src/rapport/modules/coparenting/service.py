"""The co-parenting module's public service: what routers, the command line and other
parts of Rapport call."""

from rapport.modules.coparenting._children import do_delete_child_details as do_delete_child_details
from rapport.modules.coparenting._children import do_put_child_details as do_put_child_details
from rapport.modules.coparenting._children import get_child_details as get_child_details
from rapport.modules.coparenting._communication_profiles import get_profile as get_profile
from rapport.modules.coparenting._communication_profiles import learn as learn
from rapport.modules.coparenting._communication_profiles import learn_profile as learn_profile
from rapport.modules.coparenting._coparent_details import (
    do_delete_coparent_details as do_delete_coparent_details,
)
from rapport.modules.coparenting._coparent_details import (
    do_put_coparent_details as do_put_coparent_details,
)
from rapport.modules.coparenting._coparent_details import (
    get_coparent_details as get_coparent_details,
)
from rapport.modules.coparenting._legacy_invitations import ImportReport as ImportReport
from rapport.modules.coparenting._legacy_invitations import LegacyInvitation as LegacyInvitation
from rapport.modules.coparenting._legacy_invitations import do_import_invitations as do_import_invitations
from rapport.modules.coparenting._legacy_invitations import read_invitations_csv as read_invitations_csv
from rapport.modules.coparenting._legacy_invitations import read_invitations_table as read_invitations_table
from rapport.modules.coparenting._mediation import MAX_TRIGGERS as MAX_TRIGGERS
from rapport.modules.coparenting._mediation import analyse_draft as analyse_draft
from rapport.modules.coparenting._mediation import do_create_trigger as do_create_trigger
from rapport.modules.coparenting._mediation import do_delete_trigger as do_delete_trigger
from rapport.modules.coparenting._mediation import do_record_outcome as do_record_outcome
from rapport.modules.coparenting._mediation import do_update_trigger as do_update_trigger
from rapport.modules.coparenting._mediation import get_statistics as get_statistics
from rapport.modules.coparenting._mediation import list_rewrites as list_rewrites
from rapport.modules.coparenting._mediation import list_triggers as list_triggers
from rapport.modules.coparenting._pairing import access_pairing as access_pairing
from rapport.modules.coparenting._pairing import do_accept_pairing as do_accept_pairing
from rapport.modules.coparenting._pairing import do_cancel_pairing as do_cancel_pairing
from rapport.modules.coparenting._pairing import do_create_pairing as do_create_pairing
from rapport.modules.coparenting._pairing import do_expire_pairings as do_expire_pairings
from rapport.modules.coparenting._pairing import do_open_missing_room as do_open_missing_room
from rapport.modules.coparenting._pairing import get_pairing as get_pairing
from rapport.modules.coparenting._pairing import get_pairing_status as get_pairing_status
from rapport.modules.coparenting._pairing import has_any_pairing as has_any_pairing
from rapport.modules.coparenting._pairing import list_pairing_log as list_pairing_log
from rapport.modules.coparenting._pairing import pairing_rounds as pairing_rounds
from rapport.modules.coparenting._tasks import TASK_DUE_EVENT as TASK_DUE_EVENT
from rapport.modules.coparenting._tasks import access_task as access_task
from rapport.modules.coparenting._tasks import do_add_related_person as do_add_related_person
from rapport.modules.coparenting._tasks import do_create_task as do_create_task
from rapport.modules.coparenting._tasks import do_delete_task as do_delete_task
from rapport.modules.coparenting._tasks import do_remove_related_person as do_remove_related_person
from rapport.modules.coparenting._tasks import do_update_task as do_update_task
from rapport.modules.coparenting._tasks import list_tasks as list_tasks
from rapport.modules.coparenting._tasks import send_due_reminder as send_due_reminder
from rapport.modules.coparenting._topics import TopicOrganiser as TopicOrganiser
from rapport.modules.coparenting._topics import do_accept_suggestion as do_accept_suggestion
from rapport.modules.coparenting._topics import do_disable_topics as do_disable_topics
from rapport.modules.coparenting._topics import do_dismiss_suggestion as do_dismiss_suggestion
from rapport.modules.coparenting._topics import do_enable_topics as do_enable_topics
from rapport.modules.coparenting._topics import get_topic_room as get_topic_room
from rapport.modules.coparenting._topics import list_suggestions as list_suggestions
from rapport.modules.coparenting._topics import organise_all as organise_all
from rapport.modules.coparenting._topics import organise_topics as organise_topics
from rapport.modules.coparenting.tasks import QUEUE as QUEUE
from rapport.modules.coparenting.tasks import do_queue_relearning as do_queue_relearning
from rapport.modules.coparenting.tasks import do_request_learning as do_request_learning
from rapport.modules.coparenting.tasks import profile_rounds as profile_rounds

# The consent a person gives before a draft of theirs may go to the language model.
MEDIATION_LLM_CONSENT = "ai_features"
