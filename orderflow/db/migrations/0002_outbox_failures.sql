-- A row the relay can never publish (its topic does not exist) is set aside instead of
-- blocking every row behind it. It keeps blocking later rows of its own aggregate, so an
-- order's commands stay in order; `orderflow outbox retry-failed` puts it back in line.

ALTER TABLE outbox
    ADD COLUMN failed_at  timestamptz,
    ADD COLUMN last_error text;

DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL AND failed_at IS NULL;
