-- Recovery after a crash: each message's lease (when its sender must have settled it), and
-- which message holds a recipient-guard claim.
ALTER TABLE messages ADD COLUMN lease_until timestamptz;
CREATE INDEX messages_pending_by_lease ON messages (lease_until) WHERE status = 'pending';
ALTER TABLE recipient_guards ADD COLUMN message_id text;
