-- Request budgets shared by every process on this database, one row per budget (`tardis` today): a token
-- bucket and the pause a 429 puts on everyone. Before each request a process takes a token with one
-- UPDATE ... RETURNING (store/budget.rs); the rate and the capacity are the taker's configuration
-- (TARDIS_RATE_LIMIT; capacity max(1, rate)), not stored here, so every process should be given the same.
-- Times come from clock_timestamp(), never now(): a statement that waited for the row's lock must refill
-- from the time it got it, not from when it started.
CREATE TABLE request_budgets (
    name          TEXT PRIMARY KEY,
    -- Tokens in the bucket at `refilled_at` (fractions included); refilled at the rate, up to the capacity.
    tokens        DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- When `tokens` was counted. A pause moves it to the pause's end, so the bucket starts empty there.
    refilled_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- No process sends a request before this (a 429's Retry-After); only ever moved later.
    paused_until  TIMESTAMPTZ NOT NULL DEFAULT '-infinity',
    -- 429s that paused the budget, for operators.
    pauses        BIGINT NOT NULL DEFAULT 0 CHECK (pauses >= 0)
);
INSERT INTO request_budgets (name) VALUES ('tardis');
