"""Media: files stored once by content, their processing, attachments, photos, albums, shares.

Why: people share photos, videos and documents (issue 11). The bytes are content-addressed:
one `media.blobs` row (and one stored object) per SHA-256 whatever the number of uploads,
each upload a `media.files` row with its owner and name. Who may read a file is decided in
one place, `media.may_read_file`, which the read policies of files, thumbnails, versions
and comments call: the owner; the participants of a conversation where a live message
carries it; whoever may see the profile it is a photo of; whoever it (or an album holding
it) is shared with. Blobs are never readable by the server's role: a blob's existence
says someone uploaded those bytes, so only definer functions and system work reach them.
Processing (scan, metadata, thumbnails) runs as kernel jobs on the worker role.

Revision ID: 2026_11_30_0020
Revises: 2026_11_29_0019
Create Date: 2026-11-30
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0020"
down_revision = "2026_11_29_0019"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    # The raw asyncpg connection: None only once the connection is closed, never in a migration.
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


TABLES = r"""
CREATE SCHEMA media;
COMMENT ON SCHEMA media IS
    'Media: files stored once by content, thumbnails, processing, attachments, profile photos, albums, '
    'shares, versions and comments.';
GRANT USAGE ON SCHEMA media TO rapport_app, rapport_worker;

CREATE TABLE media.blobs (
    sha256 bytea NOT NULL,
    size_bytes bigint NOT NULL,
    content_type text NOT NULL,
    storage_provider text NOT NULL,
    storage_key text NOT NULL,
    reserved_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_blobs PRIMARY KEY (sha256),
    CONSTRAINT ck_blobs_sha256 CHECK (octet_length(sha256) = 32),
    CONSTRAINT ck_blobs_size_bytes CHECK (size_bytes >= 0),
    CONSTRAINT ck_blobs_content_type CHECK (length(content_type) BETWEEN 1 AND 255),
    CONSTRAINT ck_blobs_storage_provider CHECK (storage_provider IN ('local', 's3')),
    CONSTRAINT ck_blobs_storage_key CHECK (length(storage_key) BETWEEN 1 AND 1024)
);
COMMENT ON TABLE media.blobs IS
    'Stored bytes, once per content (SHA-256) whatever the number of files naming them (seed 004 '
    'media.files content_hash, storage_provider, storage_key). Holds no owner, but that a hash is here '
    'says someone uploaded those bytes: the server''s role has no grant; definer functions and system '
    'work reach it. Removed with its stored object by the media.collect job once nothing references it.';
COMMENT ON COLUMN media.blobs.content_type IS 'The type sniffed from the bytes, never the one a client declared.';
COMMENT ON COLUMN media.blobs.storage_key IS 'Where the backend keeps the bytes: ab/cd/<64 hex digits>.';
COMMENT ON COLUMN media.blobs.reserved_at IS
    'When an upload last claimed these bytes (media.register_blob), before storing them: the collector '
    'leaves a blob alone for an hour after, so bytes being stored for an upload in flight are not '
    'deleted under it, and a blob whose upload failed is still collected later.';

CREATE TABLE media.files (
    id uuid NOT NULL,
    owner_id uuid NOT NULL,
    file_name text NOT NULL,
    content_type text NOT NULL,
    declared_type text,
    kind text NOT NULL,
    size_bytes bigint NOT NULL,
    sha256 bytea NOT NULL,
    public_sha256 bytea,
    purpose text NOT NULL DEFAULT 'general',
    status text NOT NULL DEFAULT 'processing',
    scan_status text NOT NULL DEFAULT 'pending',
    scan_signature text,
    width integer,
    height integer,
    has_alpha boolean,
    dominant_color text,
    blurhash text,
    duration_seconds numeric,
    codec text,
    frame_rate numeric,
    audio_channels integer,
    sample_rate integer,
    bitrate integer,
    page_count integer,
    word_count integer,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    version integer NOT NULL DEFAULT 1,
    download_count bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT pk_files PRIMARY KEY (id),
    CONSTRAINT fk_files_owner_id_users FOREIGN KEY (owner_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_files_sha256_blobs FOREIGN KEY (sha256) REFERENCES media.blobs (sha256),
    CONSTRAINT fk_files_public_sha256_blobs FOREIGN KEY (public_sha256) REFERENCES media.blobs (sha256),
    CONSTRAINT ck_files_file_name CHECK (length(file_name) BETWEEN 1 AND 255),
    CONSTRAINT ck_files_types CHECK (length(content_type) BETWEEN 1 AND 255 AND length(declared_type) <= 255),
    CONSTRAINT ck_files_kind CHECK (kind IN ('image', 'video', 'audio', 'document', 'other')),
    CONSTRAINT ck_files_size_bytes CHECK (size_bytes >= 0),
    CONSTRAINT ck_files_purpose CHECK (purpose IN ('attachment', 'profile_photo', 'album', 'comment', 'general')),
    CONSTRAINT ck_files_status CHECK (status IN ('processing', 'ready', 'quarantined', 'failed')),
    CONSTRAINT ck_files_scan_status CHECK (scan_status IN ('pending', 'clean', 'infected', 'error')),
    CONSTRAINT ck_files_scan_signature CHECK (length(scan_signature) <= 500),
    CONSTRAINT ck_files_dimensions CHECK (width > 0 AND height > 0),
    CONSTRAINT ck_files_dominant_color CHECK (dominant_color ~ '^#[0-9a-f]{6}$'),
    CONSTRAINT ck_files_blurhash CHECK (length(blurhash) BETWEEN 6 AND 200),
    CONSTRAINT ck_files_media CHECK (
        duration_seconds >= 0 AND frame_rate >= 0 AND audio_channels >= 0 AND sample_rate >= 0 AND bitrate >= 0
        AND length(codec) <= 100),
    CONSTRAINT ck_files_document CHECK (page_count >= 0 AND word_count >= 0),
    CONSTRAINT ck_files_metadata CHECK (jsonb_typeof(metadata) = 'object' AND octet_length(metadata::text) <= 16000),
    CONSTRAINT ck_files_version CHECK (version >= 1),
    CONSTRAINT ck_files_download_count CHECK (download_count >= 0)
);
COMMENT ON TABLE media.files IS
    'One row per upload, with its owner and name (seed 004 media.files; 003 chat_file_attachments'' '
    'original name, size and type). The bytes are the blob named by sha256. Read as media.may_read_file '
    'says; deleted by its owner through media.delete_file, removed by the media.collect job once no live '
    'message carries it.';
COMMENT ON COLUMN media.files.file_name IS 'The original name, sanitised: no path, no control characters.';
COMMENT ON COLUMN media.files.content_type IS 'Sniffed from the bytes (rapport.media._sniff), never trusted from the client.';
COMMENT ON COLUMN media.files.declared_type IS 'The type the client declared, kept for the record only.';
COMMENT ON COLUMN media.files.sha256 IS 'The bytes its owner uploaded (the current version''s).';
COMMENT ON COLUMN media.files.public_sha256 IS
    'The bytes everyone else downloads when they differ from the owner''s (an image without its EXIF '
    'location); NULL: the same bytes.';
COMMENT ON COLUMN media.files.status IS
    'processing until every step is done; ready; quarantined (the scan found something: never served, '
    'not even to the owner); failed (a step could not read it).';
COMMENT ON COLUMN media.files.scan_signature IS 'What the scan found (a signature name), when infected.';
COMMENT ON COLUMN media.files.metadata IS 'Anything else processing read (EXIF fields kept, tags...).';
COMMENT ON COLUMN media.files.version IS 'The current version''s number; earlier ones are in file_versions.';
COMMENT ON COLUMN media.files.deleted_at IS
    'When its owner deleted it: gone from every listing, albums, profile photo slots and shares; still '
    'readable through a live message that carries it, until the message goes.';
-- Serves rapport.media._files.list_files (the owner's files, newest first) and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_files_owner_id ON media.files (owner_id, id DESC);
-- Serves rapport.media._collect.collect: whether a blob is still referenced.
CREATE INDEX ix_files_sha256 ON media.files (sha256);
CREATE INDEX ix_files_public_sha256 ON media.files (public_sha256) WHERE public_sha256 IS NOT NULL;
-- Serves rapport.media._collect.collect: the deleted files to remove.
CREATE INDEX ix_files_deleted_at ON media.files (deleted_at) WHERE deleted_at IS NOT NULL;
-- A download (download_count) is no change of the file.
CREATE TRIGGER set_updated_at BEFORE UPDATE OF file_name, content_type, declared_type, kind, size_bytes, sha256,
    public_sha256, purpose, status, scan_status, scan_signature, width, height, has_alpha, dominant_color, blurhash,
    duration_seconds, codec, frame_rate, audio_channels, sample_rate, bitrate, page_count, word_count, metadata,
    version, deleted_at ON media.files
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE media.thumbnails (
    file_id uuid NOT NULL,
    size text NOT NULL,
    sha256 bytea NOT NULL,
    width integer NOT NULL,
    height integer NOT NULL,
    content_type text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_thumbnails PRIMARY KEY (file_id, size),
    CONSTRAINT fk_thumbnails_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE CASCADE,
    CONSTRAINT fk_thumbnails_sha256_blobs FOREIGN KEY (sha256) REFERENCES media.blobs (sha256),
    CONSTRAINT ck_thumbnails_size CHECK (size IN ('small', 'medium', 'large')),
    CONSTRAINT ck_thumbnails_dimensions CHECK (width > 0 AND height > 0),
    CONSTRAINT ck_thumbnails_content_type CHECK (content_type IN ('image/webp', 'image/jpeg'))
);
COMMENT ON TABLE media.thumbnails IS
    'An image''s thumbnails (seed 004 media.thumbnails): small fits 96x96, medium 320x320, large '
    '1024x1024, never upscaled; their bytes are blobs. Written by processing; read as the file is.';
-- Serves rapport.media._collect.collect: whether a blob is still referenced.
CREATE INDEX ix_thumbnails_sha256 ON media.thumbnails (sha256);

CREATE TABLE media.processing (
    file_id uuid NOT NULL,
    step text NOT NULL,
    status text NOT NULL DEFAULT 'queued',
    attempts integer NOT NULL DEFAULT 0,
    error text,
    queued_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    completed_at timestamptz,
    CONSTRAINT pk_processing PRIMARY KEY (file_id, step),
    CONSTRAINT fk_processing_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE CASCADE,
    CONSTRAINT ck_processing_step CHECK (step IN ('scan', 'metadata', 'thumbnails')),
    CONSTRAINT ck_processing_status CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    CONSTRAINT ck_processing_attempts CHECK (attempts >= 0),
    CONSTRAINT ck_processing_error CHECK (length(error) <= 2000)
);
COMMENT ON TABLE media.processing IS
    'Each processing step of each file and how it went (seed 004 media.processing_queue; the jobs '
    'themselves are kernel.jobs). Queued with the file by its upload, moved on by the worker; completed '
    'rows older than seven days are deleted by the media.collect job.';
-- Serves rapport.media._collect.collect: completed steps past their retention.
CREATE INDEX ix_processing_completed_at ON media.processing (completed_at) WHERE status = 'completed';

CREATE TABLE media.uploads (
    id uuid NOT NULL,
    owner_id uuid NOT NULL,
    length bigint NOT NULL,
    "offset" bigint NOT NULL DEFAULT 0,
    file_name text,
    declared_type text,
    purpose text NOT NULL DEFAULT 'general',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    file_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL DEFAULT now() + interval '24 hours',
    CONSTRAINT pk_uploads PRIMARY KEY (id),
    CONSTRAINT fk_uploads_owner_id_users FOREIGN KEY (owner_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_uploads_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE SET NULL,
    CONSTRAINT ck_uploads_length CHECK (length >= 0),
    CONSTRAINT ck_uploads_offset CHECK ("offset" BETWEEN 0 AND length),
    CONSTRAINT ck_uploads_file_name CHECK (length(file_name) BETWEEN 1 AND 255),
    CONSTRAINT ck_uploads_declared_type CHECK (length(declared_type) <= 255),
    CONSTRAINT ck_uploads_purpose CHECK (purpose IN ('attachment', 'profile_photo', 'album', 'comment', 'general')),
    CONSTRAINT ck_uploads_metadata CHECK (jsonb_typeof(metadata) = 'object' AND octet_length(metadata::text) <= 8000)
);
COMMENT ON TABLE media.uploads IS
    'Resumable (tus 1.0) uploads in progress: the bytes received so far are in the staging folder under '
    'the upload''s id. Complete when offset reaches length: the file is registered as a multipart upload '
    'would be and file_id names it.';
COMMENT ON COLUMN media.uploads.metadata IS 'The Upload-Metadata pairs the client sent, decoded.';
COMMENT ON COLUMN media.uploads.expires_at IS '24 hours after the last PATCH: an upload left longer is abandoned.';
-- Serves the foreign key's ON DELETE CASCADE when an account goes, and one person's uploads.
CREATE INDEX ix_uploads_owner_id ON media.uploads (owner_id);
-- Serves removing abandoned uploads, oldest first.
CREATE INDEX ix_uploads_expires_at ON media.uploads (expires_at);
-- Serves the foreign key's ON DELETE SET NULL when a file goes.
CREATE INDEX ix_uploads_file_id ON media.uploads (file_id) WHERE file_id IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON media.uploads
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE media.attachments (
    message_id uuid NOT NULL,
    message_created_at timestamptz NOT NULL,
    conversation_id uuid NOT NULL,
    seq bigint NOT NULL,
    file_id uuid NOT NULL,
    position smallint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_attachments PRIMARY KEY (message_id, file_id),
    CONSTRAINT fk_attachments_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT fk_attachments_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE CASCADE,
    CONSTRAINT ck_attachments_position CHECK (position BETWEEN 0 AND 99)
);
COMMENT ON TABLE media.attachments IS
    'Files a message carries into its conversation (seed 003 chat_file_attachments). Written by the send '
    'alone; readable, with the file, by the participants who may see that message, while it is not deleted.';
COMMENT ON COLUMN media.attachments.seq IS
    'The message''s sequence in its conversation: who may see it is decided by sequence, as for the message.';
-- Serves media.may_read_file: the messages that carry a file.
CREATE INDEX ix_attachments_file_id ON media.attachments (file_id);
-- Serves a message's attachments in history, and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_attachments_conversation_seq ON media.attachments (conversation_id, seq);

CREATE TABLE media.profile_photos (
    user_id uuid NOT NULL,
    position smallint NOT NULL,
    file_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_profile_photos PRIMARY KEY (user_id, position),
    CONSTRAINT uq_profile_photos_user_id_file_id UNIQUE (user_id, file_id),
    CONSTRAINT fk_profile_photos_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_profile_photos_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE CASCADE,
    CONSTRAINT ck_profile_photos_position CHECK (position BETWEEN 1 AND 6)
);
COMMENT ON TABLE media.profile_photos IS
    'A person''s profile photos in order, at most six (seed 002 photos): seen as the profile is.';
-- Serves media.may_read_file (is a file a profile photo?) and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_profile_photos_file_id ON media.profile_photos (file_id);

CREATE TABLE media.albums (
    id uuid NOT NULL,
    owner_id uuid NOT NULL,
    title text NOT NULL,
    description text,
    cover_file_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT pk_albums PRIMARY KEY (id),
    CONSTRAINT fk_albums_owner_id_users FOREIGN KEY (owner_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_albums_cover_file_id_files FOREIGN KEY (cover_file_id)
        REFERENCES media.files (id) ON DELETE SET NULL,
    CONSTRAINT ck_albums_title CHECK (length(title) BETWEEN 1 AND 200),
    CONSTRAINT ck_albums_description CHECK (length(description) <= 2000)
);
COMMENT ON TABLE media.albums IS 'A person''s albums of files (seed 004 media.albums).';
-- Serves one person's albums, newest first, and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_albums_owner_id ON media.albums (owner_id, id DESC);
-- Serves the foreign key's ON DELETE SET NULL when a file goes.
CREATE INDEX ix_albums_cover_file_id ON media.albums (cover_file_id) WHERE cover_file_id IS NOT NULL;
CREATE TRIGGER set_updated_at BEFORE UPDATE ON media.albums
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE media.album_items (
    album_id uuid NOT NULL,
    file_id uuid NOT NULL,
    position integer NOT NULL,
    caption text,
    added_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_album_items PRIMARY KEY (album_id, file_id),
    CONSTRAINT uq_album_items_album_id_position UNIQUE (album_id, position) DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT fk_album_items_album_id_albums FOREIGN KEY (album_id) REFERENCES media.albums (id) ON DELETE CASCADE,
    CONSTRAINT fk_album_items_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE CASCADE,
    CONSTRAINT ck_album_items_position CHECK (position >= 0),
    CONSTRAINT ck_album_items_caption CHECK (length(caption) <= 2000)
);
COMMENT ON TABLE media.album_items IS
    'The files of an album in order (seed 004 media.album_items). Positions are unique per album at '
    'commit, so a reorder may swap them within its transaction.';
-- Serves media.may_read_file (is a file in a shared album?) and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_album_items_file_id ON media.album_items (file_id);

CREATE TABLE media.shared_files (
    id uuid NOT NULL,
    owner_id uuid NOT NULL,
    file_id uuid,
    album_id uuid,
    shared_with uuid,
    link_token_hash bytea,
    permission text NOT NULL DEFAULT 'view',
    expires_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_shared_files PRIMARY KEY (id),
    CONSTRAINT fk_shared_files_owner_id_users FOREIGN KEY (owner_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_shared_files_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE CASCADE,
    CONSTRAINT fk_shared_files_album_id_albums FOREIGN KEY (album_id) REFERENCES media.albums (id) ON DELETE CASCADE,
    CONSTRAINT fk_shared_files_shared_with_users FOREIGN KEY (shared_with)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_shared_files_target CHECK ((file_id IS NULL) <> (album_id IS NULL)),
    CONSTRAINT ck_shared_files_audience CHECK ((shared_with IS NULL) <> (link_token_hash IS NULL)),
    CONSTRAINT ck_shared_files_not_self CHECK (shared_with <> owner_id),
    CONSTRAINT ck_shared_files_link_token_hash CHECK (octet_length(link_token_hash) = 32),
    CONSTRAINT ck_shared_files_permission CHECK (permission IN ('view', 'comment'))
);
COMMENT ON TABLE media.shared_files IS
    'A file or an album shared with a person or by a link, until expires_at or its revocation (seed 004 '
    'media.shared_files). A link''s token is random, shown once, stored as its SHA-256 only.';
COMMENT ON COLUMN media.shared_files.permission IS 'view: see it; comment: see it and comment on it.';
-- Serves media.file_by_link and media.album_by_link: a link's share by its token.
CREATE UNIQUE INDEX uq_shared_files_link_token_hash ON media.shared_files (link_token_hash)
    WHERE link_token_hash IS NOT NULL;
-- Serves media.may_read_file (is a file shared with the caller?) and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_shared_files_file_id ON media.shared_files (file_id, shared_with) WHERE file_id IS NOT NULL;
CREATE INDEX ix_shared_files_album_id ON media.shared_files (album_id, shared_with) WHERE album_id IS NOT NULL;
-- Serves what is shared with a person, newest first, and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_shared_files_shared_with ON media.shared_files (shared_with, id DESC) WHERE shared_with IS NOT NULL;
-- Serves one person's shares, and the foreign key's ON DELETE CASCADE when an account goes.
CREATE INDEX ix_shared_files_owner_id ON media.shared_files (owner_id, id DESC);

CREATE TABLE media.file_versions (
    file_id uuid NOT NULL,
    version integer NOT NULL,
    sha256 bytea NOT NULL,
    size_bytes bigint NOT NULL,
    content_type text NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_file_versions PRIMARY KEY (file_id, version),
    CONSTRAINT fk_file_versions_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE CASCADE,
    CONSTRAINT fk_file_versions_sha256_blobs FOREIGN KEY (sha256) REFERENCES media.blobs (sha256),
    CONSTRAINT fk_file_versions_created_by_users FOREIGN KEY (created_by)
        REFERENCES auth.users (id) ON DELETE SET NULL,
    CONSTRAINT ck_file_versions_version CHECK (version >= 1),
    CONSTRAINT ck_file_versions_size_bytes CHECK (size_bytes >= 0),
    CONSTRAINT ck_file_versions_content_type CHECK (length(content_type) BETWEEN 1 AND 255)
);
COMMENT ON TABLE media.file_versions IS
    'Earlier versions of a file (seed 004 media.file_versions): the file row holds the current one; '
    'media.add_version copies it here before replacing it.';
-- Serves rapport.media._collect.collect: whether a blob is still referenced.
CREATE INDEX ix_file_versions_sha256 ON media.file_versions (sha256);
-- Serves the foreign key's ON DELETE SET NULL when an account goes.
CREATE INDEX ix_file_versions_created_by ON media.file_versions (created_by) WHERE created_by IS NOT NULL;

CREATE TABLE media.file_comments (
    id uuid NOT NULL,
    file_id uuid NOT NULL,
    author_id uuid NOT NULL,
    body text NOT NULL,
    attachment_file_id uuid,
    parent_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    edited_at timestamptz,
    deleted_at timestamptz,
    CONSTRAINT pk_file_comments PRIMARY KEY (id),
    CONSTRAINT fk_file_comments_file_id_files FOREIGN KEY (file_id) REFERENCES media.files (id) ON DELETE CASCADE,
    CONSTRAINT fk_file_comments_author_id_users FOREIGN KEY (author_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_file_comments_attachment_file_id_files FOREIGN KEY (attachment_file_id)
        REFERENCES media.files (id) ON DELETE SET NULL,
    CONSTRAINT fk_file_comments_parent_id_file_comments FOREIGN KEY (parent_id)
        REFERENCES media.file_comments (id) ON DELETE CASCADE,
    CONSTRAINT ck_file_comments_body CHECK (length(body) BETWEEN 1 AND 4000)
);
COMMENT ON TABLE media.file_comments IS
    'Comments on a file (seed 004 media.file_comments), threaded by parent_id: read by whoever may read '
    'the file, written by its owner and those it is shared with for comment.';
-- Serves a file's comments in order, and the foreign key's ON DELETE CASCADE.
CREATE INDEX ix_file_comments_file_id ON media.file_comments (file_id, id);
-- Serves the foreign key's ON DELETE CASCADE when an account goes.
CREATE INDEX ix_file_comments_author_id ON media.file_comments (author_id);
-- Serves media.may_read_file (is a file attached to a comment?) and the foreign key's ON DELETE SET NULL.
CREATE INDEX ix_file_comments_attachment_file_id ON media.file_comments (attachment_file_id)
    WHERE attachment_file_id IS NOT NULL;
CREATE INDEX ix_file_comments_parent_id ON media.file_comments (parent_id) WHERE parent_id IS NOT NULL;
"""


FUNCTIONS = r"""
-- A file size for people: '1.5 MB' (seed 004 media.format_file_size).
CREATE FUNCTION media.format_file_size(bytes bigint) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT CASE
            WHEN bytes < 1024 THEN bytes::text || ' B'
            WHEN bytes < 1048576 THEN trim_scale(round(bytes / 1024.0, 1))::text || ' KB'
            WHEN bytes < 1073741824 THEN trim_scale(round(bytes / 1048576.0, 1))::text || ' MB'
            WHEN bytes < 1099511627776 THEN trim_scale(round(bytes / 1073741824.0, 1))::text || ' GB'
            ELSE trim_scale(round(bytes / 1099511627776.0, 1))::text || ' TB'
        END
    $$;
COMMENT ON FUNCTION media.format_file_size(bigint) IS 'A byte count as people read it: 512 B, 1.5 MB, 2 GB.';

-- The hash of the share link a request was made with, if any: the server sets it for the
-- transaction from the token in the URL. Knowing a live link's hash is what the link grants.
CREATE FUNCTION media.link_token_hash() RETURNS bytea
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
    AS $$ SELECT decode(nullif(current_setting('rapport.media_link', true), ''), 'hex') $$;
COMMENT ON FUNCTION media.link_token_hash() IS
    'The SHA-256 of the share link this transaction acts through (setting rapport.media_link, hex), or NULL.';

-- Whether a live share gives the acting user (or the link of this transaction) a file:
-- shared itself, or in a live album that is shared; `commenting` asks for a share that
-- allows comments. A block either way ends a person's share (a link is nobody's).
CREATE FUNCTION media.shared_with_caller(file uuid, commenting boolean) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM media.shared_files s
             WHERE ((s.shared_with = auth.current_user_id()
                     AND NOT coalesce(social.is_blocked(s.owner_id, auth.current_user_id()), false))
                    OR s.link_token_hash = media.link_token_hash())
               AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())
               AND (NOT commenting OR s.permission = 'comment')
               AND (s.file_id = file OR s.album_id IN (
                        SELECT i.album_id FROM media.album_items i JOIN media.albums a ON a.id = i.album_id
                         WHERE i.file_id = file AND a.deleted_at IS NULL)))
    $$;
COMMENT ON FUNCTION media.shared_with_caller(uuid, boolean) IS
    'Whether a live share (to the acting user, or the link this transaction acts through) gives them '
    'the file, itself or through an album; with commenting, a share that allows comments.';

-- The one rule of who may read a file: its metadata, thumbnails, versions, comments and
-- bytes. A definer function: each rule looks at rows the caller cannot read themself
-- (another's participation, a share's token hash, someone's profile photos).
CREATE FUNCTION media.may_read_file_itself(file uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT auth.is_system() OR EXISTS (
            SELECT 1 FROM media.files f
             WHERE f.id = file AND (
                -- 1. The owner, until they delete it.
                (f.owner_id = auth.current_user_id() AND f.deleted_at IS NULL)
                -- 2. A participant (active or muted: a removed one no longer) of a conversation
                --    holding a message with it that they may see and that is not deleted.
                OR EXISTS (
                    SELECT 1 FROM media.attachments a
                      JOIN messaging.participants p
                        ON p.conversation_id = a.conversation_id AND p.user_id = auth.current_user_id()
                     WHERE a.file_id = f.id AND p.status IN ('active', 'muted') AND a.seq > p.history_from_seq
                       AND NOT EXISTS (SELECT 1 FROM messaging.retractions r
                                        WHERE r.conversation_id = a.conversation_id AND r.seq = a.seq))
                -- 3. A profile photo, seen as its profile is, by no one either side blocks.
                OR (f.deleted_at IS NULL
                    AND EXISTS (SELECT 1 FROM media.profile_photos pp WHERE pp.file_id = f.id AND pp.user_id = f.owner_id)
                    AND social.profile_visible(f.owner_id)
                    AND NOT coalesce(social.is_blocked(f.owner_id, auth.current_user_id()), false))
                -- 4. Shared with the caller (or the link they came with), itself or in an album.
                OR (f.deleted_at IS NULL AND media.shared_with_caller(f.id, false))))
    $$;
COMMENT ON FUNCTION media.may_read_file_itself(uuid) IS
    'Rules 1-4 of media.may_read_file: the owner (until deleted); a participant who may see a live '
    'message carrying it; anyone who may see the profile it is a photo of; anyone it, or an album holding '
    'it, is shared with (or the share link of this transaction), until expiry or revocation.';

-- 5. A file attached to a live comment is read by whoever may read the file commented on,
-- one level only: an attachment's own comments lend nothing further (no recursion).
CREATE FUNCTION media.may_read_file(file uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT media.may_read_file_itself(file) OR EXISTS (
            SELECT 1 FROM media.file_comments c
              JOIN media.files f ON f.id = file AND f.deleted_at IS NULL
             WHERE c.attachment_file_id = file AND c.deleted_at IS NULL
               AND media.may_read_file_itself(c.file_id))
    $$;
COMMENT ON FUNCTION media.may_read_file(uuid) IS
    'Whether the acting user may read the file: its owner (until deleted); a participant who may see a '
    'live message carrying it; anyone who may see the profile it is a photo of; anyone it, or an album '
    'holding it, is shared with (or the share link of this transaction), until expiry or revocation; '
    'whoever may read a file it is attached to by a live comment.';

-- Whether the acting user may comment on a file: its owner, or a live share for comment.
CREATE FUNCTION media.may_comment_file(file uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (
            SELECT 1 FROM media.files f
             WHERE f.id = file AND f.deleted_at IS NULL
               AND (f.owner_id = auth.current_user_id()
                    OR (auth.current_user_id() IS NOT NULL AND media.shared_with_caller(f.id, true))))
    $$;
COMMENT ON FUNCTION media.may_comment_file(uuid) IS
    'Whether the acting user may comment on the file: its owner, or someone it is shared with for comment.';

-- Whether the acting user may see an album: its owner, or a live share of it to them (or
-- to the link of this transaction).
CREATE FUNCTION media.may_read_album(album uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT auth.is_system() OR EXISTS (
            SELECT 1 FROM media.albums a
             WHERE a.id = album AND (
                a.owner_id = auth.current_user_id()
                OR (a.deleted_at IS NULL AND EXISTS (
                    SELECT 1 FROM media.shared_files s
                     WHERE s.album_id = a.id
                       AND ((s.shared_with = auth.current_user_id()
                             AND NOT coalesce(social.is_blocked(s.owner_id, auth.current_user_id()), false))
                            OR s.link_token_hash = media.link_token_hash())
                       AND s.revoked_at IS NULL AND (s.expires_at IS NULL OR s.expires_at > now())))))
    $$;
COMMENT ON FUNCTION media.may_read_album(uuid) IS
    'Whether the acting user may see the album: its owner, or someone it is shared with (or its link).';

-- Whether the acting user owns a live file (for the write policies of the tables that
-- name one of their files).
CREATE FUNCTION media.owns_file(file uuid) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (SELECT 1 FROM media.files f
                        WHERE f.id = file AND f.owner_id = auth.current_user_id() AND f.deleted_at IS NULL)
    $$;
COMMENT ON FUNCTION media.owns_file(uuid) IS 'Whether the file is the acting user''s and not deleted.';

-- Where the bytes of a hash are kept: 'ab/cd/<64 hex digits>' (rapport.media._storage.blob_key).
CREATE FUNCTION media.blob_key(hash bytea) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT substr(encode(hash, 'hex'), 1, 2) || '/' || substr(encode(hash, 'hex'), 3, 2) || '/'
               || encode(hash, 'hex')
    $$;
COMMENT ON FUNCTION media.blob_key(bytea) IS 'The storage key of the bytes with this SHA-256.';

-- An upload claims its blob before its bytes are stored: the row is made, or its
-- reservation renewed, so that the collector leaves it alone while the bytes are put and
-- the file row is written. Returns nothing, whether the bytes were there before or not:
-- whether someone else uploaded the same bytes is nobody's business. Anyone signed in
-- may claim any hash, so a claim no file, version or thumbnail names yet takes the
-- caller's size and type: a claim made ahead with false ones is corrected by the upload
-- that registers the bytes, in the transaction that then names them (the row stays locked
-- until it commits). The key is the hash's, whatever the caller says.
CREATE FUNCTION media.register_blob(
    hash bytea, size bigint, sniffed_type text, provider text, key text
) RETURNS void
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF auth.current_user_id() IS NULL AND NOT auth.is_system() THEN
            RAISE EXCEPTION 'blobs are registered for an upload' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF key IS DISTINCT FROM media.blob_key(hash) THEN
            RAISE EXCEPTION 'a blob is kept under its hash''s key' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO media.blobs AS b (sha256, size_bytes, content_type, storage_provider, storage_key)
        VALUES (hash, size, sniffed_type, provider, key)
        ON CONFLICT (sha256) DO UPDATE
            SET reserved_at = now(),
                size_bytes = CASE WHEN media.blob_named(b.sha256) THEN b.size_bytes ELSE EXCLUDED.size_bytes END,
                content_type = CASE WHEN media.blob_named(b.sha256) THEN b.content_type
                                    ELSE EXCLUDED.content_type END,
                storage_provider = CASE WHEN media.blob_named(b.sha256) THEN b.storage_provider
                                        ELSE EXCLUDED.storage_provider END;
    END
    $$;
COMMENT ON FUNCTION media.register_blob(bytea, bigint, text, text, text) IS
    'Make the blob of an upload''s bytes, or renew its reservation when it exists; says neither. Raises '
    'invalid_parameter_value for a key that is not media.blob_key(hash).';

-- Whether a file, version or thumbnail names the bytes (the collector's test, and
-- register_blob's before it lets a claim's size and type change).
CREATE FUNCTION media.blob_named(hash bytea) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT EXISTS (SELECT 1 FROM media.files f WHERE f.sha256 = hash)
            OR EXISTS (SELECT 1 FROM media.files f WHERE f.public_sha256 = hash)
            OR EXISTS (SELECT 1 FROM media.file_versions v WHERE v.sha256 = hash)
            OR EXISTS (SELECT 1 FROM media.thumbnails t WHERE t.sha256 = hash)
    $$;
COMMENT ON FUNCTION media.blob_named(bytea) IS
    'Whether any file, public variant, version or thumbnail names these bytes (as its caller may see them: '
    'definer functions and system work see all).';

-- The bytes a reader downloads of a file: the owner gets what they uploaded, everyone
-- else the public variant when there is one. Empty when the caller may not read it.
CREATE FUNCTION media.file_blob(file uuid) RETURNS TABLE (
    sha256 bytea, size_bytes bigint, content_type text, storage_provider text, storage_key text
)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        -- The original's size and type are the file's own, as the server read them from the
        -- bytes it received; a variant's are the blob's, which processing wrote.
        SELECT b.sha256,
               CASE WHEN b.sha256 = f.sha256 THEN f.size_bytes ELSE b.size_bytes END,
               CASE WHEN b.sha256 = f.sha256 THEN f.content_type ELSE b.content_type END,
               b.storage_provider, b.storage_key
          FROM media.files f
          JOIN media.blobs b ON b.sha256 = CASE WHEN f.owner_id = auth.current_user_id() THEN f.sha256
                                                ELSE coalesce(f.public_sha256, f.sha256) END
         WHERE f.id = file AND media.may_read_file(f.id)
    $$;
COMMENT ON FUNCTION media.file_blob(uuid) IS
    'The blob the acting user downloads of a file (the owner''s bytes, or the public variant for others), '
    'or no row when they may not read it.';

-- A thumbnail's bytes, for whoever may read the file.
CREATE FUNCTION media.thumbnail_blob(file uuid, thumbnail_size text) RETURNS TABLE (
    sha256 bytea, size_bytes bigint, content_type text, storage_provider text, storage_key text
)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT b.sha256, b.size_bytes, b.content_type, b.storage_provider, b.storage_key
          FROM media.thumbnails t JOIN media.blobs b ON b.sha256 = t.sha256
         WHERE t.file_id = file AND t.size = thumbnail_size AND media.may_read_file(file)
    $$;
COMMENT ON FUNCTION media.thumbnail_blob(uuid, text) IS
    'The blob of a file''s thumbnail of that size, or no row when there is none or the caller may not read the file.';

-- An earlier version's bytes, for whoever may read the file.
CREATE FUNCTION media.version_blob(file uuid, file_version integer) RETURNS TABLE (
    sha256 bytea, size_bytes bigint, content_type text, storage_provider text, storage_key text
)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT b.sha256, b.size_bytes, b.content_type, b.storage_provider, b.storage_key
          FROM media.file_versions v JOIN media.blobs b ON b.sha256 = v.sha256
         WHERE v.file_id = file AND v.version = file_version AND media.may_read_file(file)
    $$;
COMMENT ON FUNCTION media.version_blob(uuid, integer) IS
    'The blob of an earlier version of a file, or no row when there is none or the caller may not read the file.';

-- A reader downloaded a file: its count goes up, whoever they are (the row is the owner's).
CREATE FUNCTION media.count_download(file uuid) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        UPDATE media.files f SET download_count = f.download_count + 1
         WHERE f.id = file AND media.may_read_file(f.id)
    $$;
COMMENT ON FUNCTION media.count_download(uuid) IS
    'Count one download of a file the acting user may read (nothing otherwise).';

-- The owner deletes a file: gone from their listing, albums, profile photo slots and
-- shares at once; a message that carries it keeps it readable in its conversation, and
-- the media.collect job removes the row (and the bytes, with the last reference) after.
CREATE FUNCTION media.delete_file(file uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        caller uuid := auth.current_user_id();
    BEGIN
        IF caller IS NULL THEN
            RAISE EXCEPTION 'files are deleted by their owner' USING ERRCODE = 'insufficient_privilege';
        END IF;
        UPDATE media.files f SET deleted_at = now()
         WHERE f.id = file AND f.owner_id = caller AND f.deleted_at IS NULL;
        IF NOT FOUND THEN
            RETURN false;
        END IF;
        DELETE FROM media.album_items i USING media.albums a
         WHERE i.file_id = file AND a.id = i.album_id AND a.owner_id = caller;
        UPDATE media.albums a SET cover_file_id = NULL WHERE a.cover_file_id = file AND a.owner_id = caller;
        DELETE FROM media.profile_photos p WHERE p.file_id = file AND p.user_id = caller;
        DELETE FROM media.shared_files s WHERE s.file_id = file AND s.owner_id = caller;
        RETURN true;
    END
    $$;
COMMENT ON FUNCTION media.delete_file(uuid) IS
    'Delete one of the acting user''s files (sets deleted_at, takes it out of their albums, profile photo '
    'slots and shares); false when it is not theirs or already deleted.';

-- A new version of a file: the current one is copied into file_versions, the file row
-- takes the new bytes and is processed again (thumbnails and variants of the old bytes go).
CREATE FUNCTION media.add_version(
    file uuid, hash bytea, size bigint, sniffed_type text, declared text, new_kind text
) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        caller uuid := auth.current_user_id();
        existing media.files;
    BEGIN
        IF caller IS NULL THEN
            RAISE EXCEPTION 'versions are added by the file''s owner' USING ERRCODE = 'insufficient_privilege';
        END IF;
        SELECT * INTO existing FROM media.files f
         WHERE f.id = file AND f.owner_id = caller AND f.deleted_at IS NULL
           FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'file-not-found' USING ERRCODE = 'RF404';
        END IF;
        INSERT INTO media.file_versions (file_id, version, sha256, size_bytes, content_type, created_by, created_at)
        VALUES (existing.id, existing.version, existing.sha256, existing.size_bytes, existing.content_type,
                existing.owner_id, existing.updated_at);
        UPDATE media.files f
           SET sha256 = hash, public_sha256 = NULL, size_bytes = size, content_type = sniffed_type,
               declared_type = declared, kind = new_kind, version = f.version + 1,
               status = 'processing', scan_status = 'pending', scan_signature = NULL,
               width = NULL, height = NULL, has_alpha = NULL, dominant_color = NULL, blurhash = NULL,
               duration_seconds = NULL, codec = NULL, frame_rate = NULL, audio_channels = NULL,
               sample_rate = NULL, bitrate = NULL, page_count = NULL, word_count = NULL, metadata = '{}'::jsonb
         WHERE f.id = existing.id;
        DELETE FROM media.thumbnails t WHERE t.file_id = existing.id;
        INSERT INTO media.processing (file_id, step)
        SELECT existing.id, s.step FROM unnest(ARRAY['scan', 'metadata', 'thumbnails']) AS s(step)
        ON CONFLICT (file_id, step) DO UPDATE
            SET status = 'queued', attempts = 0, error = NULL, queued_at = now(), started_at = NULL,
                completed_at = NULL;
        RETURN existing.version + 1;
    END
    $$;
COMMENT ON FUNCTION media.add_version(uuid, bytea, bigint, text, text, text) IS
    'Replace the acting user''s file with new bytes (whose blob media.register_blob made), keeping the '
    'current version in file_versions; processing starts again. Returns the new version''s number; '
    'raises RF404 when the file is not the caller''s live file.';

-- A link share, by its token's hash: what it shares, while it is live. No sign-in needed:
-- the link is the capability, like an invite link.
CREATE FUNCTION media.file_by_link(token_hash bytea) RETURNS TABLE (
    share_id uuid, file_id uuid, permission text, expires_at timestamptz
)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT s.id, s.file_id, s.permission, s.expires_at
          FROM media.shared_files s JOIN media.files f ON f.id = s.file_id
         WHERE s.link_token_hash = token_hash AND s.revoked_at IS NULL
           AND (s.expires_at IS NULL OR s.expires_at > now()) AND f.deleted_at IS NULL
    $$;
COMMENT ON FUNCTION media.file_by_link(bytea) IS
    'The file a live link share names, by the SHA-256 of its token; no row for an unknown, revoked or '
    'expired link, or a deleted file.';

CREATE FUNCTION media.album_by_link(token_hash bytea) RETURNS TABLE (
    share_id uuid, album_id uuid, permission text, expires_at timestamptz
)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT s.id, s.album_id, s.permission, s.expires_at
          FROM media.shared_files s JOIN media.albums a ON a.id = s.album_id
         WHERE s.link_token_hash = token_hash AND s.revoked_at IS NULL
           AND (s.expires_at IS NULL OR s.expires_at > now()) AND a.deleted_at IS NULL
    $$;
COMMENT ON FUNCTION media.album_by_link(bytea) IS
    'The album a live link share names, by the SHA-256 of its token; no row for an unknown, revoked or '
    'expired link, or a deleted album.';
"""


VIEWS = r"""
-- Seed 004 media.processing_queue: the processing of the caller's own files.
CREATE VIEW media.processing_queue WITH (security_invoker = true) AS
SELECT p.file_id, f.owner_id, f.file_name, f.kind, p.step, p.status, p.attempts, p.error,
       p.queued_at, p.started_at, p.completed_at
  FROM media.processing p JOIN media.files f ON f.id = p.file_id
 WHERE f.owner_id = auth.current_user_id() OR auth.is_system();
COMMENT ON VIEW media.processing_queue IS
    'Processing steps of the caller''s own files (seed 004 media.processing_queue); system work sees all.';

-- Seed views.media_storage_summary: the caller's usage by kind and month.
CREATE VIEW media.storage_summary WITH (security_invoker = true) AS
SELECT f.owner_id, f.kind, date_trunc('month', f.created_at) AS month, count(*) AS file_count,
       sum(f.size_bytes)::bigint AS total_bytes, media.format_file_size(sum(f.size_bytes)::bigint) AS total_size
  FROM media.files f
 WHERE f.owner_id = auth.current_user_id() AND f.deleted_at IS NULL
 GROUP BY f.owner_id, f.kind, date_trunc('month', f.created_at);
COMMENT ON VIEW media.storage_summary IS
    'The caller''s live files by kind and month: how many, how many bytes (seed views.media_storage_summary). '
    'Bytes are counted per file, as the person uploaded them, whatever deduplication saves.';
"""


POLICIES = r"""
-- Blobs: definer functions and system work only. No grant to the server's role at all.
ALTER TABLE media.blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.blobs FORCE ROW LEVEL SECURITY;
CREATE POLICY blobs_system ON media.blobs
    USING (kernel.in_definer() OR auth.is_system()) WITH CHECK (kernel.in_definer() OR auth.is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON media.blobs TO rapport_worker;

ALTER TABLE media.files ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.files FORCE ROW LEVEL SECURITY;
-- The owner's own live files first: the common case, checked without calling the function.
CREATE POLICY files_read ON media.files FOR SELECT
    USING (kernel.in_definer() OR auth.is_system()
           OR (owner_id = auth.current_user_id() AND deleted_at IS NULL) OR media.may_read_file(id));
-- An upload is registered by its owner, as processing; everything else is system work's
-- (processing) or a definer function's (deleting, versions, counting downloads).
CREATE POLICY files_upload ON media.files FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR owner_id = auth.current_user_id());
CREATE POLICY files_change ON media.files FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system()) WITH CHECK (kernel.in_definer() OR auth.is_system());
CREATE POLICY files_collect ON media.files FOR DELETE TO rapport_worker USING (auth.is_system());
GRANT SELECT, INSERT (id, owner_id, file_name, content_type, declared_type, kind, size_bytes, sha256, purpose)
    ON media.files TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON media.files TO rapport_worker;

ALTER TABLE media.thumbnails ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.thumbnails FORCE ROW LEVEL SECURITY;
CREATE POLICY thumbnails_read ON media.thumbnails FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR media.may_read_file(file_id));
CREATE POLICY thumbnails_system ON media.thumbnails TO rapport_worker
    USING (auth.is_system()) WITH CHECK (auth.is_system());
CREATE POLICY thumbnails_definer ON media.thumbnails FOR DELETE TO rapport_owner USING (kernel.in_definer());
GRANT SELECT ON media.thumbnails TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON media.thumbnails TO rapport_worker;

ALTER TABLE media.processing ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.processing FORCE ROW LEVEL SECURITY;
-- The owner sees their files' steps, and queues them with the upload; the worker moves them on.
CREATE POLICY processing_read ON media.processing FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR media.owns_file(file_id));
CREATE POLICY processing_enqueue ON media.processing FOR INSERT
    WITH CHECK (kernel.in_definer() OR auth.is_system() OR (status = 'queued' AND attempts = 0 AND media.owns_file(file_id)));
CREATE POLICY processing_system ON media.processing FOR UPDATE
    USING (kernel.in_definer() OR auth.is_system()) WITH CHECK (kernel.in_definer() OR auth.is_system());
CREATE POLICY processing_system_delete ON media.processing FOR DELETE TO rapport_worker USING (auth.is_system());
GRANT SELECT, INSERT (file_id, step) ON media.processing TO rapport_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON media.processing TO rapport_worker;

ALTER TABLE media.uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.uploads FORCE ROW LEVEL SECURITY;
CREATE POLICY uploads_own ON media.uploads
    USING (owner_id = auth.current_user_id() OR auth.is_system())
    WITH CHECK ((owner_id = auth.current_user_id() AND (file_id IS NULL OR media.owns_file(file_id)))
                OR auth.is_system());
GRANT SELECT, INSERT (id, owner_id, length, file_name, declared_type, purpose, metadata, expires_at),
      UPDATE ("offset", file_id, expires_at), DELETE
    ON media.uploads TO rapport_app;
GRANT SELECT, DELETE ON media.uploads TO rapport_worker;

-- Attachments: written by the send (a definer function), read by the participants who may
-- see the message, within the window messaging.messages' policy allows them.
ALTER TABLE media.attachments ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.attachments FORCE ROW LEVEL SECURITY;
CREATE POLICY attachments_read ON media.attachments FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR EXISTS (
        SELECT 1 FROM messaging.participants p
         WHERE p.conversation_id = attachments.conversation_id AND p.user_id = auth.current_user_id()
           AND attachments.seq > p.history_from_seq AND (p.left_seq IS NULL OR attachments.seq <= p.left_seq)));
CREATE POLICY attachments_definer ON media.attachments FOR INSERT TO rapport_owner WITH CHECK (kernel.in_definer());
CREATE POLICY attachments_system ON media.attachments FOR DELETE TO rapport_worker USING (auth.is_system());
GRANT SELECT ON media.attachments TO rapport_app;
GRANT SELECT, DELETE ON media.attachments TO rapport_worker;

-- Profile photos: seen as the profile is; set by their person, with their own files.
ALTER TABLE media.profile_photos ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.profile_photos FORCE ROW LEVEL SECURITY;
CREATE POLICY profile_photos_read ON media.profile_photos FOR SELECT
    USING (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system()
           OR (social.profile_visible(user_id) AND NOT coalesce(social.is_blocked(user_id, auth.current_user_id()), false)));
CREATE POLICY profile_photos_add ON media.profile_photos FOR INSERT
    WITH CHECK (user_id = auth.current_user_id() AND media.owns_file(file_id));
CREATE POLICY profile_photos_change ON media.profile_photos FOR UPDATE
    USING (user_id = auth.current_user_id())
    WITH CHECK (user_id = auth.current_user_id() AND media.owns_file(file_id));
CREATE POLICY profile_photos_remove ON media.profile_photos FOR DELETE
    USING (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system());
GRANT SELECT, INSERT (user_id, position, file_id), UPDATE (position, file_id), DELETE
    ON media.profile_photos TO rapport_app;
GRANT SELECT ON media.profile_photos TO rapport_worker;

ALTER TABLE media.albums ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.albums FORCE ROW LEVEL SECURITY;
CREATE POLICY albums_read ON media.albums FOR SELECT
    USING (owner_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system() OR media.may_read_album(id));
CREATE POLICY albums_own ON media.albums FOR INSERT
    WITH CHECK (owner_id = auth.current_user_id() AND (cover_file_id IS NULL OR media.owns_file(cover_file_id)));
CREATE POLICY albums_change ON media.albums FOR UPDATE
    USING (owner_id = auth.current_user_id() OR kernel.in_definer())
    WITH CHECK ((owner_id = auth.current_user_id() AND (cover_file_id IS NULL OR media.owns_file(cover_file_id)))
                OR kernel.in_definer());
CREATE POLICY albums_remove ON media.albums FOR DELETE USING (owner_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT (id, owner_id, title, description, cover_file_id),
      UPDATE (title, description, cover_file_id, deleted_at), DELETE
    ON media.albums TO rapport_app;
GRANT SELECT ON media.albums TO rapport_worker;

-- An album's items: seen with the album; changed by its owner, with their own files.
ALTER TABLE media.album_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.album_items FORCE ROW LEVEL SECURITY;
CREATE POLICY album_items_read ON media.album_items FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR media.may_read_album(album_id));
CREATE POLICY album_items_add ON media.album_items FOR INSERT
    WITH CHECK (media.owns_file(file_id)
                AND EXISTS (SELECT 1 FROM media.albums a WHERE a.id = album_id AND a.owner_id = auth.current_user_id()));
CREATE POLICY album_items_change ON media.album_items FOR UPDATE
    USING (EXISTS (SELECT 1 FROM media.albums a WHERE a.id = album_id AND a.owner_id = auth.current_user_id()))
    WITH CHECK (EXISTS (SELECT 1 FROM media.albums a WHERE a.id = album_id AND a.owner_id = auth.current_user_id()));
CREATE POLICY album_items_remove ON media.album_items FOR DELETE
    USING (kernel.in_definer() OR auth.is_system()
           OR EXISTS (SELECT 1 FROM media.albums a WHERE a.id = album_id AND a.owner_id = auth.current_user_id()));
GRANT SELECT, INSERT (album_id, file_id, position, caption), UPDATE (position, caption), DELETE
    ON media.album_items TO rapport_app;
GRANT SELECT ON media.album_items TO rapport_worker;

-- Shares: their owner makes, lists and revokes them; the person shared with sees theirs.
-- Link shares are found by token only through media.file_by_link / media.album_by_link.
ALTER TABLE media.shared_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.shared_files FORCE ROW LEVEL SECURITY;
CREATE POLICY shared_files_read ON media.shared_files FOR SELECT
    USING (owner_id = auth.current_user_id() OR shared_with = auth.current_user_id()
           OR kernel.in_definer() OR auth.is_system());
CREATE POLICY shared_files_share ON media.shared_files FOR INSERT
    WITH CHECK (owner_id = auth.current_user_id() AND revoked_at IS NULL
                AND (media.owns_file(file_id) OR EXISTS (
                    SELECT 1 FROM media.albums a
                     WHERE a.id = album_id AND a.owner_id = auth.current_user_id() AND a.deleted_at IS NULL)));
CREATE POLICY shared_files_revoke ON media.shared_files FOR UPDATE
    USING (owner_id = auth.current_user_id()) WITH CHECK (owner_id = auth.current_user_id());
CREATE POLICY shared_files_remove ON media.shared_files FOR DELETE
    USING (owner_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system());
GRANT SELECT, INSERT (id, owner_id, file_id, album_id, shared_with, link_token_hash, permission, expires_at),
      UPDATE (revoked_at), DELETE
    ON media.shared_files TO rapport_app;
GRANT SELECT ON media.shared_files TO rapport_worker;

-- Versions: read as the file is; written by media.add_version.
ALTER TABLE media.file_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.file_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY file_versions_read ON media.file_versions FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR media.may_read_file(file_id));
CREATE POLICY file_versions_definer ON media.file_versions FOR INSERT TO rapport_owner WITH CHECK (kernel.in_definer());
GRANT SELECT ON media.file_versions TO rapport_app, rapport_worker;

-- Comments: read as the file is; written as oneself on a file one may comment on; an
-- author edits or deletes their own, the file's owner deletes any on their file.
ALTER TABLE media.file_comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE media.file_comments FORCE ROW LEVEL SECURITY;
CREATE POLICY file_comments_read ON media.file_comments FOR SELECT
    USING (kernel.in_definer() OR auth.is_system() OR media.may_read_file(file_id));
CREATE POLICY file_comments_write ON media.file_comments FOR INSERT
    WITH CHECK (author_id = auth.current_user_id() AND media.may_comment_file(file_id)
                AND (attachment_file_id IS NULL OR media.owns_file(attachment_file_id)));
CREATE POLICY file_comments_change ON media.file_comments FOR UPDATE
    USING (author_id = auth.current_user_id() OR media.owns_file(file_id))
    WITH CHECK (author_id = auth.current_user_id() OR media.owns_file(file_id));
GRANT SELECT, INSERT (id, file_id, author_id, body, attachment_file_id, parent_id),
      UPDATE (body, edited_at, deleted_at)
    ON media.file_comments TO rapport_app;
GRANT SELECT ON media.file_comments TO rapport_worker;

GRANT SELECT ON media.processing_queue, media.storage_summary TO rapport_app, rapport_worker;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA media FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA media TO rapport_app, rapport_worker;
"""


def upgrade() -> None:
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(VIEWS)
    run_sql(POLICIES)


def downgrade() -> None:
    run_sql("DROP SCHEMA media CASCADE;")
