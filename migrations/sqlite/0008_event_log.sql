-- The event log (issue 17): a per-row sequence that orders events received in the same
-- millisecond, the indexes that serve paging newest first (all events of a project, or one
-- user's), and the history of what happened to an event after it was received.
--
-- `seq` is the table's rowid made explicit (INTEGER PRIMARY KEY): assigned on insert as one
-- more than the largest, so it never costs the insert a statement, and VACUUM keeps it (an
-- implicit rowid may be renumbered). The table is rebuilt to declare it; (project_id, event_id)
-- stays unique, so ON CONFLICT and every lookup are unchanged.

CREATE TABLE webhook_events_new (
    seq                 INTEGER PRIMARY KEY,
    project_id          TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    event_id            TEXT NOT NULL,
    event_type          TEXT NOT NULL,
    app_user_id         TEXT,
    target_user_id      TEXT,
    environment         TEXT,
    event_timestamp_ms  INTEGER NOT NULL,
    timestamp_trusted   INTEGER NOT NULL DEFAULT 1,
    payload             TEXT NOT NULL,
    received_at         INTEGER NOT NULL,
    status              TEXT NOT NULL CHECK (status IN
                            ('applied', 'superseded', 'ignored', 'pending_resolution', 'skipped', 'failed')),
    status_detail       TEXT,
    processed_at        INTEGER,
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER,
    dispatched_at       INTEGER,
    UNIQUE (project_id, event_id)
);
INSERT INTO webhook_events_new (project_id, event_id, event_type, app_user_id, target_user_id,
        environment, event_timestamp_ms, timestamp_trusted, payload, received_at, status,
        status_detail, processed_at, attempts, next_attempt_at, dispatched_at)
    SELECT project_id, event_id, event_type, app_user_id, target_user_id, environment,
        event_timestamp_ms, timestamp_trusted, payload, received_at, status, status_detail,
        processed_at, attempts, next_attempt_at, dispatched_at
    FROM webhook_events ORDER BY received_at, rowid;
DROP TABLE webhook_events;
ALTER TABLE webhook_events_new RENAME TO webhook_events;
CREATE INDEX webhook_events_pending_resolution ON webhook_events(next_attempt_at)
    WHERE status = 'pending_resolution';
-- Paging (and pruning) a project's log newest first, with or without a user filter.
CREATE INDEX webhook_events_log ON webhook_events(project_id, received_at, seq);
CREATE INDEX webhook_events_user ON webhook_events(project_id, target_user_id, received_at, seq);

-- What happened to an event after it was received: resolution attempts, giving up, replays.
-- Nothing is written here on receipt (the event row itself says how it was received), so the
-- ingestion path pays nothing for it.
CREATE TABLE webhook_event_history (
    id               INTEGER PRIMARY KEY,
    project_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    at               INTEGER NOT NULL,
    action           TEXT NOT NULL CHECK (action IN ('resolution', 'replay')),
    status           TEXT NOT NULL,
    status_detail    TEXT,
    previous_status  TEXT NOT NULL,
    previous_detail  TEXT,
    FOREIGN KEY (project_id, event_id) REFERENCES webhook_events(project_id, event_id) ON DELETE CASCADE
);
CREATE INDEX webhook_event_history_event ON webhook_event_history(project_id, event_id, id);

-- Retention reads finished resync rows by age.
CREATE INDEX user_resyncs_updated ON user_resyncs(updated_at)
    WHERE status IN ('succeeded', 'skipped', 'failed', 'superseded');
