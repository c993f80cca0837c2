"""The community module's public service: what routers and other parts of Rapport call."""

from rapport.modules.community._garden import do_delete_garden as do_delete_garden
from rapport.modules.community._garden import do_put_garden as do_put_garden
from rapport.modules.community._garden import do_put_profile_extras as do_put_profile_extras
from rapport.modules.community._garden import garden_state as garden_state
from rapport.modules.community._garden import get_garden as get_garden
from rapport.modules.community._garden import get_profile_extras as get_profile_extras
from rapport.modules.community._habits import access_habit as access_habit
from rapport.modules.community._habits import do_check_in as do_check_in
from rapport.modules.community._habits import do_create_habit as do_create_habit
from rapport.modules.community._habits import do_delete_checkin as do_delete_checkin
from rapport.modules.community._habits import do_delete_habit as do_delete_habit
from rapport.modules.community._habits import do_update_habit as do_update_habit
from rapport.modules.community._habits import list_checkins as list_checkins
from rapport.modules.community._habits import list_habits as list_habits
from rapport.modules.community._stories import access_story as access_story
from rapport.modules.community._stories import do_create_story as do_create_story
from rapport.modules.community._stories import do_delete_story as do_delete_story
from rapport.modules.community._stories import do_update_story as do_update_story
from rapport.modules.community._stories import list_feed as list_feed
from rapport.modules.community._tags import do_set_my_tags as do_set_my_tags
from rapport.modules.community._tags import get_my_tags as get_my_tags
from rapport.modules.community._tags import list_tags as list_tags
