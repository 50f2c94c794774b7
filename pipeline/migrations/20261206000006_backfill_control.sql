-- Operator control of the queue.
--
-- A daily lane: `priority` orders claims before the date (the scheduler's dates are 10, backfill dates 0), so
-- a daily date is never queued behind a backfill, and workers can keep slots that claim only that lane.
--
-- Cancellation: a cancelled date is never claimed (status `cancelled`, with who cancelled it). A date being
-- run when its backfill is cancelled finishes, unless the cancel asked for `now`: `cancel_requested_at` is
-- then set and its worker, which polls it with its heartbeat, abandons the run and marks the date cancelled.
-- The audit record of a cancelled backfill says so, by whom and when.
ALTER TABLE backfill_jobs DROP CONSTRAINT backfill_jobs_status_check;
ALTER TABLE backfill_jobs ADD CONSTRAINT backfill_jobs_status_check
    CHECK (status IN ('pending', 'processing', 'completed', 'retry', 'failed', 'cancelled'));
ALTER TABLE backfill_jobs ADD COLUMN priority SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE backfill_jobs ADD COLUMN cancel_requested_at TIMESTAMPTZ;
ALTER TABLE backfill_jobs ADD COLUMN cancelled_by TEXT;
DROP INDEX backfill_jobs_claimable;
CREATE INDEX backfill_jobs_claimable ON backfill_jobs (status, priority DESC, day);
CREATE INDEX backfill_jobs_backfill ON backfill_jobs (backfill_id);

ALTER TABLE backfill_audit DROP CONSTRAINT backfill_audit_status_check;
ALTER TABLE backfill_audit ADD CONSTRAINT backfill_audit_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted', 'planned', 'enqueued', 'cancelled'));
ALTER TABLE backfill_audit ADD COLUMN cancelled_by TEXT;
ALTER TABLE backfill_audit ADD COLUMN cancelled_at TIMESTAMPTZ;
-- `pipeline backfill retry ID`: the backfill this one retries.
ALTER TABLE backfill_audit ADD COLUMN retry_of BIGINT REFERENCES backfill_audit (id) ON DELETE SET NULL;
