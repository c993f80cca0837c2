"""What the thumbnails route refuses beyond the file errors of rapport.media.errors."""

from __future__ import annotations

from rapport.kernel.errors import NotFound


class ThumbnailNotFound(NotFound):
    """The file is readable but has no thumbnail: not an image, or one that could not be
    decoded. (A file the caller may not read is `file-not-found`, as everywhere.)"""

    slug = "thumbnail-not-found"
    title = "This file has no thumbnails"
