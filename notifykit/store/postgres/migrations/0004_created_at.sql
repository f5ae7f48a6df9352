-- When each message was created, as a column (it was only inside `record`), for the
-- reconciler's query of accepted messages whose status is not final yet.
ALTER TABLE messages ADD COLUMN created_at timestamptz;
UPDATE messages SET created_at = (record::jsonb ->> 'created_at')::timestamptz;
ALTER TABLE messages ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX messages_with_vendor_id_by_created ON messages (created_at)
    WHERE provider_message_id IS NOT NULL;
