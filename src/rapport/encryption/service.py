"""The encryption domain's public service: what routers and other parts of Rapport call."""

from rapport.encryption._devices import MAX_DEVICES as MAX_DEVICES
from rapport.encryption._devices import MAX_ONE_TIME_PREKEYS as MAX_ONE_TIME_PREKEYS
from rapport.encryption._devices import PREKEYS_LOW as PREKEYS_LOW
from rapport.encryption._devices import access_device as access_device
from rapport.encryption._devices import do_add_prekeys as do_add_prekeys
from rapport.encryption._devices import do_claim_key_bundles as do_claim_key_bundles
from rapport.encryption._devices import do_register_device as do_register_device
from rapport.encryption._devices import do_replace_identity as do_replace_identity
from rapport.encryption._devices import do_replace_signed_prekey as do_replace_signed_prekey
from rapport.encryption._devices import do_revoke_device as do_revoke_device
from rapport.encryption._devices import get_device as get_device
from rapport.encryption._devices import list_devices as list_devices
from rapport.encryption._envelopes import ENVELOPES_DEFAULT_LIMIT as ENVELOPES_DEFAULT_LIMIT
from rapport.encryption._envelopes import ENVELOPES_MAX_LIMIT as ENVELOPES_MAX_LIMIT
from rapport.encryption._envelopes import do_acknowledge as do_acknowledge
from rapport.encryption._envelopes import do_edit_encrypted as do_edit_encrypted
from rapport.encryption._envelopes import do_send_encrypted as do_send_encrypted
from rapport.encryption._envelopes import list_envelopes as list_envelopes
from rapport.encryption.errors import DeviceNotFound as DeviceNotFound
