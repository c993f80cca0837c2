"""The location domain's public service: what routers, the command line and other parts
of Rapport call. Importing it adds the sign-in check (rapport.location._signins) to
every sign-in."""

from rapport.location._geodata import NetworkRecord as NetworkRecord
from rapport.location._geodata import read_all as read_geo_files
from rapport.location._geofences import do_create_geofence as do_create_geofence
from rapport.location._geofences import do_delete_geofence as do_delete_geofence
from rapport.location._geofences import do_update_geofence as do_update_geofence
from rapport.location._geofences import list_events as list_events
from rapport.location._geofences import list_geofences as list_geofences
from rapport.location._import import ImportReport as ImportReport
from rapport.location._import import do_import_networks as do_import_networks
from rapport.location._locations import do_add_location as do_add_location
from rapport.location._locations import list_locations as list_locations
from rapport.location._locations import list_suspicious as list_suspicious
from rapport.location._lookup import lookup_ip as lookup_ip
from rapport.location._signins import check_sign_in as check_sign_in
from rapport.location._signins import travel_speed_kmh as travel_speed_kmh
from rapport.location.errors import GeoDatabaseUnreadable as GeoDatabaseUnreadable

__all__ = [
    "GeoDatabaseUnreadable",
    "ImportReport",
    "NetworkRecord",
    "check_sign_in",
    "do_add_location",
    "do_create_geofence",
    "do_delete_geofence",
    "do_import_networks",
    "do_update_geofence",
    "list_events",
    "list_geofences",
    "list_locations",
    "list_suspicious",
    "lookup_ip",
    "read_geo_files",
    "travel_speed_kmh",
]
