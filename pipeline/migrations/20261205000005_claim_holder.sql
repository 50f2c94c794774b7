-- Which worker session holds a claim: the key of a session-level advisory lock its worker keeps on a
-- connection of its own. When that session ends (the process died), the claim is claimable at once instead
-- of when its lease expires; the lease still covers a worker that is alive but hung.
ALTER TABLE backfill_jobs ADD COLUMN holder_key BIGINT;
