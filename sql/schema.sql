-- The coffee service's schema. Idempotent: safe to apply any number of
-- times, also by several connections at once (the advisory lock serialises
-- them). coffee-server applies it on its first database connection; to
-- apply it by hand: psql "$DATABASE_URL" -f sql/schema.sql
BEGIN;
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock(4242001);

CREATE TABLE IF NOT EXISTS orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mode        text NOT NULL,
    scale       double precision NOT NULL,
    started_at  timestamptz NOT NULL,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed')),
    elapsed_ms  double precision,
    queued_ms   double precision,
    failed_step text,
    error       text,
    steps       jsonb
);
CREATE INDEX IF NOT EXISTS orders_mode_started_idx ON orders (mode, started_at);
-- When a row still running belongs to a server that died: past it, the
-- server's periodic sweep fails the row as abandoned. Set by the INSERT
-- (now + the longest the order can take); the partial index keeps the
-- sweep cheap however many orders the table holds.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS deadline_at timestamptz;
CREATE INDEX IF NOT EXISTS orders_running_deadline_idx ON orders (deadline_at) WHERE status = 'running';
-- Which replica ran the order (coffee-server --instance; default its host
-- name): with several replicas behind a balancer, /stats and SQL show the
-- spread. NULL for rows written before the column existed.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS instance text;
-- The order's W3C traceparent (the client's trace, or one the server
-- started; the span id is the order's own), as sent to the kitchen.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS traceparent text;

-- The recipe of an order that is not coffee (the seed's other programs, a
-- teacher's own): its answer names it; NULL for coffee.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS recipe text;

-- A teacher's own recipes (POST /recipes), so that every replica serves
-- them: body is the recipe as GET /workflow?recipe=NAME shows it (its
-- steps at scale 1). An order keeps its steps in its own row, so deleting
-- a recipe leaves the orders that used it readable.
CREATE TABLE IF NOT EXISTS recipes (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_-]{1,32}$'),
    body       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The brew step: holds a database backend for ms milliseconds (the
-- "automatic coffee machine"), then answers from the ingredients it got.
-- As in the seed, coffee is ready only with boiled water and ground coffee.
CREATE OR REPLACE FUNCTION brew_coffee(order_id bigint, ms int, ingredients text[])
RETURNS text
LANGUAGE plpgsql
AS $$
BEGIN
    IF ms IS NULL OR ms < 0 OR ms > 60000 THEN
        RAISE EXCEPTION 'brew_coffee: ms must be from 0 to 60000, got %', ms;
    END IF;
    IF ms > 0 THEN
        PERFORM pg_sleep(ms / 1000.0);
    END IF;
    IF coalesce(ingredients @> ARRAY['Boiled water', 'Ground coffee'], false) THEN
        RETURN 'Coffee ready!';
    END IF;
    RETURN 'Coffee not ready!';
END;
$$;

COMMIT;
