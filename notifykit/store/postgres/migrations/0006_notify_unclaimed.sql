-- Wake the other instances' dispatchers only for events they may claim now: events stored
-- unclaimed (by a receiver with no observers). Events stored claimed by the receiving
-- instance are handed out by it; another instance takes them over only after the lease,
-- which its sweep notices on its own timer. Before, every insert notified every listener,
-- and each woke to claim nothing (a wasted round trip per push per instance).
CREATE OR REPLACE FUNCTION notify_new_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM inserted WHERE claimed_by IS NULL) THEN
        PERFORM pg_notify('notifykit_events', TG_TABLE_SCHEMA);
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER events_inserted ON events;
CREATE TRIGGER events_inserted AFTER INSERT ON events
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION notify_new_events();
