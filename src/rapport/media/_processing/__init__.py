"""Processing of uploaded files, as background jobs: the virus scan, metadata, and an
image's thumbnails and public variant (docs/decisions/0010 for the queue).

    register_tasks()                            # once per process that runs jobs (app, `rapport worker`)
    await start_processing(db, file_id=...)     # in the transaction that registers the file
    await thumbnail_of(db, file=row, size=...)  # for a reader the content's rule lets see the file
"""

from rapport.media._processing._thumbnails import ServedThumbnail, thumbnail_of
from rapport.media._processing.errors import ThumbnailNotFound
from rapport.media._processing.tasks import (
    METADATA,
    QUEUE,
    SCAN,
    THUMBNAILS,
    register_tasks,
    start_processing,
)

__all__ = [
    "METADATA",
    "QUEUE",
    "SCAN",
    "THUMBNAILS",
    "ServedThumbnail",
    "ThumbnailNotFound",
    "register_tasks",
    "start_processing",
    "thumbnail_of",
]
