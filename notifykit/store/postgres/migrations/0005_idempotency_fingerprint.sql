-- The fingerprint of the message holding each idempotency key: a keyed hash of its number,
-- template, parameters and tags (never the parameters themselves: they may hold a
-- verification code). A key reused for a different message is refused. NULL: claimed by
-- a notifykit older than this migration.
ALTER TABLE idempotency_keys ADD COLUMN fingerprint text;
