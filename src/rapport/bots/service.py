"""The bots domain's public service: what routers, the command line and other parts of
Rapport call."""

from rapport.bots._bots import MANAGE_PERMISSION as MANAGE_PERMISSION
from rapport.bots._bots import access_bot as access_bot
from rapport.bots._bots import check_may_make_bot as check_may_make_bot
from rapport.bots._bots import do_create_bot as do_create_bot
from rapport.bots._bots import do_delete_bot as do_delete_bot
from rapport.bots._bots import do_rotate_key as do_rotate_key
from rapport.bots._bots import do_rotate_webhook_secret as do_rotate_webhook_secret
from rapport.bots._bots import do_update_bot as do_update_bot
from rapport.bots._bots import list_bots as list_bots
from rapport.bots._bots import list_interactions as list_interactions
from rapport.bots._dispatch import Dispatcher as Dispatcher
from rapport.bots._dispatch import dispatch_all as dispatch_all
from rapport.bots._dispatch import dispatch_batch as dispatch_batch
from rapport.bots._streams import do_fail_abandoned_streams as do_fail_abandoned_streams
from rapport.bots._streams import expire_streams as expire_streams
from rapport.bots._webhooks import DELIVERY_HEADER as DELIVERY_HEADER
from rapport.bots._webhooks import SECRET_GRACE as SECRET_GRACE
from rapport.bots._webhooks import SIGNATURE_HEADER as SIGNATURE_HEADER
from rapport.bots._webhooks import signature as signature
from rapport.bots.schemas import BotCreate as BotCreate
from rapport.bots.tasks import QUEUE as QUEUE
from rapport.bots.tasks import rounds as rounds
