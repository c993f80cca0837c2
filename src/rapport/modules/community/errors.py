"""The community module's problems, each with its stable type (kernel.errors)."""

from rapport.kernel.errors import Conflict as _Conflict
from rapport.kernel.errors import Forbidden as _Forbidden
from rapport.kernel.errors import NotFound as _NotFound
from rapport.kernel.errors import ValidationFailed as _ValidationFailed


class StoryNotFound(_NotFound):
    """No such story, or one the caller may not read: the two are never told apart."""

    slug = "story-not-found"
    title = "No such story"


class HabitNotFound(_NotFound):
    """No such habit, or someone else's."""

    slug = "habit-not-found"
    title = "No such habit"


class HabitExists(_Conflict):
    slug = "habit-exists"
    title = "You already have a habit of this name"


class CheckinNotFound(_NotFound):
    slug = "checkin-not-found"
    title = "This habit has no check-in on that day"


class CheckinExists(_Conflict):
    slug = "checkin-exists"
    title = "This habit is already checked in on that day"


class CheckinDayOutOfRange(_ValidationFailed):
    slug = "checkin-day-out-of-range"
    title = "A check-in is for a day from 2000-01-01 up to tomorrow"


class GardenNotFound(_NotFound):
    slug = "garden-not-found"
    title = "You have no garden yet; plant one with PUT /v1/garden"


class NotYourStory(_Forbidden):
    """A story the caller may read but not change: only its author does."""

    slug = "story-not-yours"
    title = "Only the author of a story changes or removes it"


class InvalidTag(_ValidationFailed):
    slug = "invalid-tag"
    title = "A tag is 1 to 64 characters on one line, without commas or #"
