-- Orders accepted over HTTP, the transactional outbox, and Idempotency-Key records.

CREATE TABLE order_intake (
    order_id     text PRIMARY KEY,
    customer_id  text NOT NULL,
    command      text NOT NULL,            -- the accepted request, as JSON
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per message to publish. The relay claims unpublished rows in id order with
-- FOR UPDATE SKIP LOCKED and sets published_at once the broker acknowledged them.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    aggregate_id  text NOT NULL,           -- rows of one aggregate are published in id order
    event_id      text NOT NULL UNIQUE,
    topic         text NOT NULL,
    key           text NOT NULL,
    payload       bytea NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_pending_by_aggregate ON outbox (aggregate_id, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The first answer to each (client, Idempotency-Key), replayed to retries until it expires.
CREATE TABLE idempotency_keys (
    scope             text NOT NULL,        -- the client the key belongs to
    key               text NOT NULL,
    request_hash      text NOT NULL,        -- sha256 of method, path and body
    response_status   integer NOT NULL,
    response_body     bytea NOT NULL,
    response_headers  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
