-- (PostgreSQL) Statuses held to their values by CHECK constraints, dispatch bookkeeping for
-- follow-ups, the flag for implausible event timestamps, and the liveness of worker processes.

ALTER TABLE webhook_events
    ADD COLUMN timestamp_trusted BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN dispatched_at BIGINT,
    ADD CONSTRAINT webhook_events_status_check CHECK (status IN
        ('applied', 'superseded', 'ignored', 'pending_resolution', 'skipped', 'failed'));
CREATE INDEX webhook_events_pending_resolution ON webhook_events(next_attempt_at)
    WHERE status = 'pending_resolution';

ALTER TABLE user_resyncs
    ADD COLUMN dispatched_at BIGINT,
    ADD COLUMN claimed_by TEXT,
    ADD CONSTRAINT user_resyncs_status_check CHECK (status IN
        ('pending', 'running', 'succeeded', 'skipped', 'failed', 'superseded'));

CREATE TABLE worker_instances (
    id            TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL
);
CREATE INDEX user_resyncs_dispatched ON user_resyncs(status, dispatched_at);

-- The status index served the old sweeper; nothing reads by (status, received_at) any more.
DROP INDEX webhook_events_status;

-- A webhook event's follow-up resync, requested on the user row the event writes anyway (no
-- extra row and indexes per event); the dispatcher turns due ones into user_resyncs rows.
ALTER TABLE app_users ADD COLUMN resync_due_at BIGINT;
CREATE INDEX app_users_resync_due ON app_users(resync_due_at) WHERE resync_due_at IS NOT NULL;
