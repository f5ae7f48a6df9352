-- notifykit's PostgreSQL schema, version 1. Runs with search_path set to notifykit's own
-- schema ([store] schema), under the migration advisory lock. Never edit a released
-- migration: append 0002_….sql.

-- `record` is the MessageRecord as JSON (history and attempts included); the columns
-- beside it exist for lookups and filters.
CREATE TABLE messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL UNIQUE,
    phone text NOT NULL,
    status text NOT NULL,
    provider text,
    provider_message_id text,
    record text NOT NULL
);
CREATE INDEX messages_by_vendor_id ON messages (provider, provider_message_id);
CREATE INDEX messages_by_phone ON messages (phone);
CREATE INDEX messages_by_status ON messages (status);

-- Every raw callback request as received: an audit log, duplicates included.
CREATE TABLE inbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    headers text NOT NULL,
    body bytea NOT NULL,
    received_at timestamptz NOT NULL,
    event_ids text NOT NULL
);

-- `payload` is the event as JSON without `message_id`, which lives in its column so that
-- linking an orphan is one UPDATE. A claim (claimed_by, claimed_until) hands an event to
-- one dispatcher among all instances until its lease ends.
CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id text NOT NULL UNIQUE,
    inbox_id bigint NOT NULL REFERENCES inbox (id),
    kind text NOT NULL,
    provider text NOT NULL,
    provider_message_id text,
    phone text,
    message_id text,
    received_at timestamptz NOT NULL,
    dispatched boolean NOT NULL DEFAULT false,
    claimed_by text,
    claimed_until timestamptz,
    payload text NOT NULL
);
CREATE INDEX events_by_vendor_id ON events (provider, provider_message_id);
CREATE INDEX events_by_message ON events (message_id);
CREATE INDEX events_by_received ON events (received_at, id);
CREATE INDEX events_undispatched ON events (id) WHERE NOT dispatched;

CREATE TABLE quarantine (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider text NOT NULL,
    method text NOT NULL,
    path text NOT NULL,
    headers text NOT NULL,
    body bytea NOT NULL,
    received_at timestamptz NOT NULL,
    reason text NOT NULL
);

-- Times in seconds since the epoch, by the database's clock: one clock for every instance.
CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    message_id text NOT NULL,
    expires_at double precision NOT NULL
);

CREATE TABLE recipient_guards (
    phone text PRIMARY KEY,
    claimed_at double precision NOT NULL
);

-- A new event wakes the dispatchers of every instance (LISTEN notifykit_events); the
-- payload names the schema, so that instances of another schema ignore it.
CREATE FUNCTION notify_new_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notifykit_events', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
CREATE TRIGGER events_inserted AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_new_events();
