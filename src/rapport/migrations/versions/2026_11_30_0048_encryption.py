"""encryption: end-to-end encrypted conversations; Rapport keeps public keys and ciphertexts.

Why: issue 19 (seed 004's "end-to-end encryption support"). Clients run Signal's X3DH and
Double Ratchet pairwise per device (docs/decisions/0028); the server's part is a key
directory and a mailbox per device, and it must be unable to read what it relays.

- Schema `encryption`: `devices` (a person's device and its public keys: an X25519
  identity key, an Ed25519 signing key, the signed prekey and its signature),
  `one_time_prekeys` (each handed out once, only through `encryption.claim_key_bundles`)
  and `envelopes` (one ciphertext per recipient device, readable and deletable by that
  device's owner only). Everything goes with the account (foreign keys ON DELETE CASCADE).
- `messaging.conversations.is_encrypted` (there since 0014) is now allowed on direct and
  group conversations only and never changes; the direct-pair index lets a pair have one
  plain and one encrypted direct conversation (`messaging.direct_with` takes which).
- `messaging.messages.content_encrypted`: such a message holds no text (`content` is '',
  a CHECK says so); `messaging.sequence_message` refuses a plain message in an encrypted
  conversation and an encrypted one in a plain conversation, whoever inserts it; the
  guard refuses to put text in an encrypted message and never lets the flag change. The
  message JSON of every read path carries `content_encrypted`.

Revision ID: 2026_11_30_0048
Revises: 2026_11_30_0047
Create Date: 2026-11-30
"""

from importlib import import_module

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_30_0048"
down_revision = "2026_11_30_0047"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    connection = op.get_bind().connection.driver_connection
    assert connection is not None
    await_only(connection.execute(script))


# The functions as earlier migrations left them: this one changes them by parts, and its
# downgrade restores them as they were.
_CORE = import_module("rapport.migrations.versions.2026_11_29_0014_messaging")
_STREAMS = import_module("rapport.migrations.versions.2026_11_30_0037_messaging_streams")
_BOTS = import_module("rapport.migrations.versions.2026_11_30_0040_bots_lifecycle")
_SUPPORT = import_module("rapport.migrations.versions.2026_11_30_0042_support_reads")
_ROOMS = import_module("rapport.migrations.versions.2026_11_30_0043_coparenting_rooms")
_THREADS = import_module("rapport.migrations.versions.2026_11_30_0044_coparenting_threads")

MAX_CIPHERTEXT = 65_536


def _replaced(script: str, *changes: tuple[str, str], count: int = 1) -> str:
    """`script` with each (before, after) replaced, each found exactly `count` times."""
    for before, after in changes:
        assert script.count(before) == count, (script.count(before), before)
        script = script.replace(before, after)
    return script


def _flagged(script: str) -> str:
    """`script` with every message JSON it writes (row `m` or `x`) carrying content_encrypted."""
    found = 0
    for row in ("m", "x"):
        before = f"'content_metadata', {row}.content_metadata,"
        found += script.count(before)
        script = script.replace(before, f"{before} 'content_encrypted', {row}.content_encrypted,")
    assert found, script[:200]
    return script


# -- messaging: the columns, the pair index, direct_with -------------------------------------

COLUMNS = """
-- A constant default: PostgreSQL stores it once, no partition is rewritten.
ALTER TABLE messaging.messages ADD COLUMN content_encrypted boolean NOT NULL DEFAULT false;
-- NOT VALID: every existing row is plain (false), so there is nothing to check, and checking
-- would read every partition under this lock. Every row written from now on is checked.
ALTER TABLE messaging.messages ADD CONSTRAINT ck_messages_encrypted_empty
    CHECK (NOT content_encrypted OR content = '') NOT VALID;
COMMENT ON COLUMN messaging.messages.content_encrypted IS
    'End-to-end encrypted: the text is in encryption.envelopes, one ciphertext per recipient device; '
    'content is empty and content_metadata holds only the edit counter. Set at the insert; never changes.';
GRANT INSERT (content_encrypted) ON messaging.messages TO rapport_app, rapport_worker;

ALTER TABLE messaging.conversations ADD CONSTRAINT ck_conversations_encrypted
    CHECK (NOT is_encrypted OR type = 'direct' OR type = 'group');
COMMENT ON COLUMN messaging.conversations.is_encrypted IS
    'End-to-end encrypted (direct and group only): every message is content_encrypted. Fixed at creation.';

-- A room's encryption is what its people agreed to when they joined: nobody turns it off
-- (or on) afterwards, owners included.
CREATE FUNCTION messaging.keep_encryption() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    AS $$
    BEGIN
        IF NEW.is_encrypted <> OLD.is_encrypted THEN
            RAISE EXCEPTION 'a conversation''s encryption is fixed at its creation' USING ERRCODE = 'RM409';
        END IF;
        RETURN NEW;
    END
    $$;
COMMENT ON FUNCTION messaging.keep_encryption() IS 'BEFORE UPDATE OF is_encrypted on conversations: it never changes.';
CREATE TRIGGER keep_encryption BEFORE UPDATE OF is_encrypted ON messaging.conversations
    FOR EACH ROW EXECUTE FUNCTION messaging.keep_encryption();

DROP INDEX messaging.uq_conversations_direct_pair;
-- Serves rapport.messaging._conversations.do_open_direct: at most one plain and one
-- encrypted direct conversation per pair of people.
CREATE UNIQUE INDEX uq_conversations_direct_pair ON messaging.conversations (direct_low, direct_high, is_encrypted)
    WHERE type = 'direct' AND deleted_at IS NULL;

DROP FUNCTION messaging.direct_with(uuid);
-- The live direct conversation between the acting user and another person, plain or
-- encrypted, also when the acting user has left it (and so no longer sees it).
CREATE FUNCTION messaging.direct_with(other uuid, encrypted boolean DEFAULT false) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT c.id FROM messaging.conversations c
         WHERE c.type = 'direct' AND c.deleted_at IS NULL AND c.is_encrypted = coalesce(encrypted, false)
           AND c.direct_low = least(auth.current_user_id(), other)
           AND c.direct_high = greatest(auth.current_user_id(), other)
    $$;
COMMENT ON FUNCTION messaging.direct_with(uuid, boolean) IS
    'The id of the acting user''s direct conversation (plain, or encrypted) with another person, or NULL.';
REVOKE ALL ON FUNCTION messaging.direct_with(uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.direct_with(uuid, boolean) TO rapport_app, rapport_worker;
"""

COLUMNS_UNDONE = """
DROP FUNCTION messaging.direct_with(uuid, boolean);
CREATE FUNCTION messaging.direct_with(other uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT c.id FROM messaging.conversations c
         WHERE c.type = 'direct' AND c.deleted_at IS NULL
           AND c.direct_low = least(auth.current_user_id(), other)
           AND c.direct_high = greatest(auth.current_user_id(), other)
    $$;
COMMENT ON FUNCTION messaging.direct_with(uuid) IS
    'The id of the acting user''s direct conversation with another person, or NULL.';
REVOKE ALL ON FUNCTION messaging.direct_with(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION messaging.direct_with(uuid) TO rapport_app, rapport_worker;
-- The index below holds one direct conversation per pair: the encrypted ones close.
UPDATE messaging.conversations SET deleted_at = now() WHERE is_encrypted AND type = 'direct' AND deleted_at IS NULL;
DROP INDEX messaging.uq_conversations_direct_pair;
CREATE UNIQUE INDEX uq_conversations_direct_pair ON messaging.conversations (direct_low, direct_high)
    WHERE type = 'direct' AND deleted_at IS NULL;
DROP TRIGGER keep_encryption ON messaging.conversations;
DROP FUNCTION messaging.keep_encryption();
ALTER TABLE messaging.conversations DROP CONSTRAINT ck_conversations_encrypted;
COMMENT ON COLUMN messaging.conversations.is_encrypted IS NULL;
REVOKE INSERT (content_encrypted) ON messaging.messages FROM rapport_app, rapport_worker;
ALTER TABLE messaging.messages DROP CONSTRAINT ck_messages_encrypted_empty, DROP COLUMN content_encrypted;
"""

# -- messaging: the triggers -------------------------------------------------------------------

SEQUENCE_BEFORE = _STREAMS.SEQUENCE
# The conversation's row is updated (and locked) by every insert already: its flag comes
# back with the sequence, for nothing. System messages (someone joined) stay plain in an
# encrypted conversation: they are Rapport's own words, not the participants'.
SEQUENCE = _replaced(
    SEQUENCE_BEFORE,
    ("    AS $$\n    BEGIN\n", "    AS $$\n    DECLARE\n        encrypted boolean;\n    BEGIN\n"),
    (
        "        RETURNING last_seq INTO NEW.seq;\n"
        "        IF NEW.seq IS NULL THEN\n"
        "            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';\n"
        "        END IF;\n",
        "        RETURNING last_seq, is_encrypted INTO NEW.seq, encrypted;\n"
        "        IF NEW.seq IS NULL THEN\n"
        "            RAISE EXCEPTION 'conversation-not-found' USING ERRCODE = 'RM404';\n"
        "        END IF;\n"
        "        IF encrypted AND NOT NEW.content_encrypted AND NEW.type NOT IN ('system', 'ai') THEN\n"
        "            RAISE EXCEPTION 'conversation-encrypted' USING ERRCODE = 'RM409';\n"
        "        END IF;\n"
        "        IF NEW.content_encrypted AND NOT encrypted THEN\n"
        "            RAISE EXCEPTION 'conversation-not-encrypted' USING ERRCODE = 'RM409';\n"
        "        END IF;\n",
    ),
)

GUARD_BEFORE = _THREADS.GUARD
_GUARD_FIXED = "OR NEW.hidden_from_guests <> OLD.hidden_from_guests THEN"
_GUARD_START = "    BEGIN\n        IF NEW.id <> OLD.id"
GUARD = _replaced(
    GUARD_BEFORE,
    (
        _GUARD_FIXED,
        "OR NEW.hidden_from_guests <> OLD.hidden_from_guests\n"
        "           OR NEW.content_encrypted <> OLD.content_encrypted THEN",
    ),
    (
        _GUARD_START,
        "    BEGIN\n"
        "        -- An encrypted message's text is only ever in its envelopes: an edit that\n"
        "        -- brings text is a plain send into an encrypted conversation.\n"
        "        IF OLD.content_encrypted AND NEW.content <> '' THEN\n"
        "            RAISE EXCEPTION 'conversation-encrypted' USING ERRCODE = 'RM409';\n"
        "        END IF;\n"
        "        IF NEW.id <> OLD.id",
    ),
)

# -- messaging: the message JSON ---------------------------------------------------------------

# (the script as it is now, the same with the flag): render_message (single reads, search),
# history, the conversation list, the send and a supervisor's page of a support room.
READERS = [
    (script, _flagged(script))
    for script in (_STREAMS.RENDER, _STREAMS.HISTORY, _BOTS.LIST, _ROOMS._SEND_AFTER, _SUPPORT.OBSERVE)
]

# -- the encryption schema ------------------------------------------------------------------

TABLES = f"""
CREATE SCHEMA encryption;
COMMENT ON SCHEMA encryption IS
    'End-to-end encryption: devices and their public keys, one-time prekeys, ciphertexts waiting for a device.';
GRANT USAGE ON SCHEMA encryption TO rapport_app, rapport_worker;

CREATE TABLE encryption.devices (
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    name text NOT NULL,
    identity_key bytea NOT NULL,
    signing_key bytea NOT NULL,
    signed_prekey_id bigint NOT NULL,
    signed_prekey bytea NOT NULL,
    signed_prekey_signature bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_devices PRIMARY KEY (id),
    CONSTRAINT fk_devices_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_devices_name CHECK (length(name) BETWEEN 1 AND 100),
    CONSTRAINT ck_devices_identity_key CHECK (octet_length(identity_key) = 32),
    CONSTRAINT ck_devices_signing_key CHECK (octet_length(signing_key) = 32),
    CONSTRAINT ck_devices_signed_prekey_id CHECK (signed_prekey_id >= 0),
    CONSTRAINT ck_devices_signed_prekey CHECK (octet_length(signed_prekey) = 32),
    CONSTRAINT ck_devices_signed_prekey_signature CHECK (octet_length(signed_prekey_signature) = 64)
);
COMMENT ON TABLE encryption.devices IS
    'A person''s device that takes part in end-to-end encryption, with its public keys (never a private one). '
    'Read and written by its owner; others get its keys only through encryption.claim_key_bundles.';
COMMENT ON COLUMN encryption.devices.identity_key IS 'X25519 public identity key (32 bytes): X3DH''s IK.';
COMMENT ON COLUMN encryption.devices.signing_key IS
    'Ed25519 public key (32 bytes) that signs the signed prekey: whoever fetches the bundle checks it.';
COMMENT ON COLUMN encryption.devices.signed_prekey IS
    'X25519 public signed prekey (32 bytes): X3DH''s SPK, replaced from time to time by its owner.';
COMMENT ON COLUMN encryption.devices.signed_prekey_signature IS
    'Ed25519 signature (64 bytes) of signed_prekey''s 32 bytes under signing_key, checked when stored.';
-- Serves rapport.encryption._devices.list_devices and claim_key_bundles: one person's devices.
CREATE INDEX ix_devices_user_id ON encryption.devices (user_id, id);
CREATE TRIGGER set_updated_at BEFORE UPDATE ON encryption.devices
    FOR EACH ROW EXECUTE FUNCTION kernel.set_updated_at();

CREATE TABLE encryption.one_time_prekeys (
    device_id uuid NOT NULL,
    key_id bigint NOT NULL,
    user_id uuid NOT NULL,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_one_time_prekeys PRIMARY KEY (device_id, key_id),
    CONSTRAINT fk_one_time_prekeys_device_id_devices FOREIGN KEY (device_id)
        REFERENCES encryption.devices (id) ON DELETE CASCADE,
    CONSTRAINT fk_one_time_prekeys_user_id_users FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT ck_one_time_prekeys_key_id CHECK (key_id >= 0),
    CONSTRAINT ck_one_time_prekeys_public_key CHECK (octet_length(public_key) = 32)
);
COMMENT ON TABLE encryption.one_time_prekeys IS
    'X3DH one-time prekeys (X25519 public keys) of a device: each is handed out once, and deleted as it is, '
    'by encryption.claim_key_bundles; its owner uploads and counts them.';
COMMENT ON COLUMN encryption.one_time_prekeys.user_id IS 'The device''s owner (its policies ask no join).';
-- Serves the foreign key's ON DELETE CASCADE when an account goes.
CREATE INDEX ix_one_time_prekeys_user_id ON encryption.one_time_prekeys (user_id);

CREATE TABLE encryption.envelopes (
    id uuid NOT NULL,
    device_id uuid NOT NULL,
    recipient_id uuid NOT NULL,
    conversation_id uuid NOT NULL,
    message_id uuid NOT NULL,
    seq bigint NOT NULL,
    sender_id uuid NOT NULL,
    sender_device_id uuid NOT NULL,
    type text NOT NULL,
    ciphertext bytea NOT NULL,
    edit boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_envelopes PRIMARY KEY (id),
    CONSTRAINT fk_envelopes_device_id_devices FOREIGN KEY (device_id)
        REFERENCES encryption.devices (id) ON DELETE CASCADE,
    CONSTRAINT fk_envelopes_recipient_id_users FOREIGN KEY (recipient_id)
        REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_envelopes_sender_id_users FOREIGN KEY (sender_id) REFERENCES auth.users (id) ON DELETE CASCADE,
    CONSTRAINT fk_envelopes_conversation_id_conversations FOREIGN KEY (conversation_id)
        REFERENCES messaging.conversations (id) ON DELETE CASCADE,
    CONSTRAINT ck_envelopes_type CHECK (type IN ('prekey', 'message')),
    CONSTRAINT ck_envelopes_ciphertext CHECK (octet_length(ciphertext) BETWEEN 1 AND {MAX_CIPHERTEXT})
);
COMMENT ON TABLE encryption.envelopes IS
    'One encrypted message (or edit) for one recipient device, waiting until that device acknowledges it: '
    'opaque bytes Rapport cannot read. Readable and deletable by the device''s owner only.';
COMMENT ON COLUMN encryption.envelopes.recipient_id IS 'The owner of device_id (its policies ask no join).';
COMMENT ON COLUMN encryption.envelopes.message_id IS
    'The message (content_encrypted) it carries (messaging.messages is partitioned: no foreign key; the '
    'conversation''s takes the row along).';
COMMENT ON COLUMN encryption.envelopes.sender_device_id IS
    'The device that encrypted it (no foreign key: a sender may revoke it before the envelope is read).';
COMMENT ON COLUMN encryption.envelopes.type IS
    'prekey: opens a session (X3DH''s initial message); message: within one (Double Ratchet).';
COMMENT ON COLUMN encryption.envelopes.edit IS 'The message''s new text after an edit, not a new message.';
-- Serves rapport.encryption._envelopes.list_envelopes and the acknowledgement: one
-- device's queue, oldest first.
CREATE INDEX ix_envelopes_device_id ON encryption.envelopes (device_id, id);
-- Serve the foreign keys' ON DELETE CASCADE when an account or a conversation goes.
CREATE INDEX ix_envelopes_recipient_id ON encryption.envelopes (recipient_id);
CREATE INDEX ix_envelopes_sender_id ON encryption.envelopes (sender_id);
CREATE INDEX ix_envelopes_conversation_id ON encryption.envelopes (conversation_id);
"""

FUNCTIONS = """
-- Who owns a device that may be sent to in a conversation: the device's owner takes part
-- in it, and so does the acting user. NULL otherwise (unknown device, someone else's room).
-- A definer: a sender cannot read others' devices, and the envelopes' insert policy asks it.
CREATE FUNCTION encryption.device_owner_in(device uuid, conversation uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
        SELECT d.user_id FROM encryption.devices d
          JOIN messaging.participants p ON p.conversation_id = conversation AND p.user_id = d.user_id
         WHERE d.id = device AND p.status IN ('active', 'muted')
           AND EXISTS (SELECT 1 FROM messaging.participants me
                        WHERE me.conversation_id = conversation AND me.user_id = auth.current_user_id()
                          AND me.status IN ('active', 'muted'))
    $$;
COMMENT ON FUNCTION encryption.device_owner_in(uuid, uuid) IS
    'The owner of a device taking part in a conversation the acting user takes part in, else NULL.';

-- Someone's key bundles: each of their devices' public keys and one one-time prekey, taken
-- (deleted) as it is handed out. Two fetches never get the same key: each locks the key it
-- takes and skips keys another fetch holds. The caller sees only what a bundle shows; who
-- blocks whom (either way) or an account that is not active is an unknown person.
CREATE FUNCTION encryption.claim_key_bundles(target uuid, take boolean DEFAULT true)
    RETURNS TABLE (device_id uuid, identity_key bytea, signing_key bytea, signed_prekey_id bigint,
                   signed_prekey bytea, signed_prekey_signature bytea, one_time_key_id bigint,
                   one_time_key bytea, remaining bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    AS $$
    DECLARE
        me uuid := auth.current_user_id();
        d encryption.devices;
    BEGIN
        IF me IS NULL THEN
            RAISE EXCEPTION 'claiming keys needs a user' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM auth.users u WHERE u.id = target AND u.status = 'active')
           OR (target <> me AND social.is_blocked(me, target)) THEN
            RAISE EXCEPTION 'user-not-found' USING ERRCODE = 'RE404';
        END IF;
        FOR d IN SELECT * FROM encryption.devices x WHERE x.user_id = target ORDER BY x.id LOOP
            one_time_key_id := NULL;
            one_time_key := NULL;
            -- take = false: a look at the devices (which are there, their identity) that
            -- hands out no one-time prekey.
            DELETE FROM encryption.one_time_prekeys o
             WHERE (o.device_id, o.key_id) = (
                    SELECT k.device_id, k.key_id FROM encryption.one_time_prekeys k
                     WHERE take AND k.device_id = d.id ORDER BY k.key_id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING o.key_id, o.public_key INTO one_time_key_id, one_time_key;
            device_id := d.id;
            identity_key := d.identity_key;
            signing_key := d.signing_key;
            signed_prekey_id := d.signed_prekey_id;
            signed_prekey := d.signed_prekey;
            signed_prekey_signature := d.signed_prekey_signature;
            remaining := (SELECT count(*) FROM encryption.one_time_prekeys k WHERE k.device_id = d.id);
            RETURN NEXT;
        END LOOP;
    END
    $$;
COMMENT ON FUNCTION encryption.claim_key_bundles(uuid, boolean) IS
    'Each device of a person with one of its one-time prekeys (taken: handed out once; none when take is '
    'false), and how many are left. '
    'Raises RE404 user-not-found for an account that is not active or a pair with a block.';

REVOKE ALL ON FUNCTION encryption.device_owner_in(uuid, uuid), encryption.claim_key_bundles(uuid, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION encryption.device_owner_in(uuid, uuid), encryption.claim_key_bundles(uuid, boolean)
    TO rapport_app;
"""

POLICIES = """
ALTER TABLE encryption.devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE encryption.devices FORCE ROW LEVEL SECURITY;
CREATE POLICY devices_own ON encryption.devices
    USING (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system())
    WITH CHECK (user_id = auth.current_user_id() OR auth.is_system());
GRANT SELECT, INSERT, UPDATE, DELETE ON encryption.devices TO rapport_app, rapport_worker;

-- Only the claim function hands someone else's one-time prekeys out; the owner uploads,
-- counts and (replacing the identity) drops their own.
ALTER TABLE encryption.one_time_prekeys ENABLE ROW LEVEL SECURITY;
ALTER TABLE encryption.one_time_prekeys FORCE ROW LEVEL SECURITY;
CREATE POLICY one_time_prekeys_own ON encryption.one_time_prekeys
    USING (user_id = auth.current_user_id() OR kernel.in_definer() OR auth.is_system())
    WITH CHECK (auth.is_system() OR (user_id = auth.current_user_id() AND EXISTS (
        SELECT 1 FROM encryption.devices d WHERE d.id = device_id AND d.user_id = auth.current_user_id())));
GRANT SELECT, INSERT, DELETE ON encryption.one_time_prekeys TO rapport_app, rapport_worker;

-- A device's owner reads and acknowledges (deletes) its envelopes. A sender writes them:
-- for their own message in that conversation, from their own device, to a device of
-- someone who takes part in it. Nobody changes one.
ALTER TABLE encryption.envelopes ENABLE ROW LEVEL SECURITY;
ALTER TABLE encryption.envelopes FORCE ROW LEVEL SECURITY;
CREATE POLICY envelopes_recipient ON encryption.envelopes FOR SELECT
    USING (recipient_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY envelopes_acknowledge ON encryption.envelopes FOR DELETE
    USING (recipient_id = auth.current_user_id() OR auth.is_system());
CREATE POLICY envelopes_send ON encryption.envelopes FOR INSERT
    WITH CHECK (
        sender_id = auth.current_user_id()
        AND recipient_id = encryption.device_owner_in(device_id, conversation_id)
        AND EXISTS (SELECT 1 FROM encryption.devices d
                     WHERE d.id = sender_device_id AND d.user_id = auth.current_user_id())
        AND EXISTS (SELECT 1 FROM messaging.messages m
                     WHERE m.conversation_id = envelopes.conversation_id AND m.id = envelopes.message_id
                       AND m.created_at = messaging.id_time(envelopes.message_id) AND m.seq = envelopes.seq
                       AND m.sender_id = auth.current_user_id() AND m.content_encrypted
                       AND m.deleted_at IS NULL));
GRANT SELECT, INSERT, DELETE ON encryption.envelopes TO rapport_app;
GRANT SELECT, DELETE ON encryption.envelopes TO rapport_worker;
"""


def upgrade() -> None:
    run_sql(COLUMNS)
    run_sql(SEQUENCE)
    run_sql(GUARD)
    for _, flagged in READERS:
        run_sql(flagged)
    run_sql(TABLES)
    run_sql(FUNCTIONS)
    run_sql(POLICIES)


def downgrade() -> None:
    run_sql("DROP SCHEMA encryption CASCADE;")
    for before, _ in READERS:
        run_sql(before)
    run_sql(GUARD_BEFORE)
    run_sql(SEQUENCE_BEFORE)
    run_sql(COLUMNS_UNDONE)
