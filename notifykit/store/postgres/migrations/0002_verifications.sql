-- Verifications (notifykit.verify) and the last SMS per number and purpose. Never the
-- code: `seed` derives it with the [verify] secret, `code_hash` checks it.
CREATE TABLE verifications (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    verification_id text NOT NULL UNIQUE,
    phone text NOT NULL,
    purpose text NOT NULL,
    status text NOT NULL,
    code_hash text NOT NULL,
    seed text NOT NULL,
    attempts integer NOT NULL,
    sends integer NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    updated_at double precision NOT NULL
);
-- The current verification of a number and purpose: the last row (highest id).
CREATE INDEX verifications_current ON verifications (phone, purpose, id);

-- `claim_id` and `previous_sent_at` let a send that no vendor accepted give the interval
-- back (an empty claim_id: no claim to give back).
CREATE TABLE verification_sends (
    phone text NOT NULL,
    purpose text NOT NULL,
    sent_at double precision NOT NULL,
    claim_id text NOT NULL,
    previous_sent_at double precision,
    PRIMARY KEY (phone, purpose)
);
