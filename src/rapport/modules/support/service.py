"""The support desk's public service: what routers, the command line and other parts of
Rapport call.

Changes come in two steps: `authorise_*` in the caller's own transaction (what they see
and hold decides), giving a permit, then `do_*` with that permit in a system transaction
(the rooms' conversations and participants are messaging's, which lets only the desk's
system work make support rooms and bring people into them)."""

from rapport.modules.support._closing import do_close_room as do_close_room
from rapport.modules.support._escalations import EscalatePermit as EscalatePermit
from rapport.modules.support._escalations import Step as Step
from rapport.modules.support._escalations import StepPermit as StepPermit
from rapport.modules.support._escalations import access_escalation as access_escalation
from rapport.modules.support._escalations import authorise_escalate as authorise_escalate
from rapport.modules.support._escalations import authorise_step as authorise_step
from rapport.modules.support._escalations import do_escalate as do_escalate
from rapport.modules.support._escalations import do_step as do_step
from rapport.modules.support._escalations import get_escalation as get_escalation
from rapport.modules.support._escalations import list_escalations as list_escalations
from rapport.modules.support._guests import LinkPermit as LinkPermit
from rapport.modules.support._guests import authorise_guest_link as authorise_guest_link
from rapport.modules.support._guests import authorise_revoke_guest_link as authorise_revoke_guest_link
from rapport.modules.support._guests import do_create_guest_link as do_create_guest_link
from rapport.modules.support._guests import do_redeem_guest_link as do_redeem_guest_link
from rapport.modules.support._guests import do_revoke_guest_link as do_revoke_guest_link
from rapport.modules.support._guests import list_guest_links as list_guest_links
from rapport.modules.support._guests import token_hash as token_hash
from rapport.modules.support._levels import works_at as works_at
from rapport.modules.support._observe import list_observed_messages as list_observed_messages
from rapport.modules.support._queues import do_update_sla as do_update_sla
from rapport.modules.support._queues import list_queue as list_queue
from rapport.modules.support._queues import list_sla as list_sla
from rapport.modules.support._responses import ResponseWatcher as ResponseWatcher
from rapport.modules.support._responses import watch_all as watch_all
from rapport.modules.support._room_bots import BotPermit as BotPermit
from rapport.modules.support._room_bots import authorise_add_bot as authorise_add_bot
from rapport.modules.support._room_bots import do_add_bot as do_add_bot
from rapport.modules.support._rooms import CustomerPermit as CustomerPermit
from rapport.modules.support._rooms import RoomPermit as RoomPermit
from rapport.modules.support._rooms import access_room as access_room
from rapport.modules.support._rooms import authorise_close_room as authorise_close_room
from rapport.modules.support._rooms import authorise_join_room as authorise_join_room
from rapport.modules.support._rooms import authorise_open_room as authorise_open_room
from rapport.modules.support._rooms import authorise_update_room as authorise_update_room
from rapport.modules.support._rooms import do_join_room as do_join_room
from rapport.modules.support._rooms import do_open_room as do_open_room
from rapport.modules.support._rooms import do_update_room as do_update_room
from rapport.modules.support._rooms import get_room as get_room
from rapport.modules.support._rooms import list_rooms as list_rooms
