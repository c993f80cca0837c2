"""Request and response shapes of stories and tags.

Every field has a bound the database also enforces, so that bad input is refused here
with a 422 and never reaches a CHECK constraint (which would be a 500)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from rapport.kernel.schemas import NotNull, PatchBody, Strict, Text

Visibility = Literal["private", "public", "friends"]

TAG_MAX_LENGTH = 64
MAX_STORY_TAGS = 10
MAX_PERSON_TAGS = 50


def tag_name(value: str) -> str:
    """A tag as the vocabulary keeps it: spaces collapsed, in lower case (so that "Growth"
    and "growth" are one tag), one line of 1 to 64 characters without commas or "#"."""
    name = " ".join(value.split()).lower()
    if not 1 <= len(name) <= TAG_MAX_LENGTH:
        raise ValueError(f"must be 1 to {TAG_MAX_LENGTH} characters")
    if any(char in ",#" for char in name):
        raise ValueError('must not contain "," or "#"')
    return name


TagName = Annotated[str, Text(TAG_MAX_LENGTH, name=True), AfterValidator(tag_name)]
Title = Annotated[str, Text(140, name=True)]
Content = Annotated[str, Text(20000, multiline=True)]


def _distinct(names: list[str]) -> list[str]:
    return sorted(set(names))


StoryTags = Annotated[list[TagName], Field(max_length=MAX_STORY_TAGS), AfterValidator(_distinct)]


class StoryCreate(Strict):
    title: Title
    content: Content = Field(description="Markdown.")
    visibility: Visibility = Field(
        default="private",
        description="private: you alone; friends: your contacts; public: everyone signed in.",
    )
    tags: StoryTags = Field(default_factory=list, description="Up to 10 tags; case does not matter.")


class StoryUpdate(PatchBody):
    title: NotNull[Title] = None
    content: NotNull[Content] = None
    visibility: NotNull[Visibility] = None
    tags: NotNull[StoryTags] = Field(default=None, description="The story's tags, all of them (replaces them).")


class StoryOut(BaseModel):
    id: UUID
    user_id: UUID = Field(description="The author.")
    title: str
    content: str
    visibility: Visibility
    tags: list[str] = Field(description="In lower case, sorted.")
    created_at: datetime
    updated_at: datetime


class TagsIn(Strict):
    tags: Annotated[list[TagName], Field(max_length=MAX_PERSON_TAGS), AfterValidator(_distinct)]


class TagsOut(BaseModel):
    tags: list[str]


class TagPage(BaseModel):
    items: list[str]
    next: str | None = Field(None, description="Pass as `after` for the following page; null at the end.")
