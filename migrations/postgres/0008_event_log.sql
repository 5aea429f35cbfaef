-- (PostgreSQL) The event log (issue 17): a per-row sequence that orders events received in the
-- same millisecond, the indexes that serve paging newest first (all events of a project, or one
-- user's), and the history of what happened to an event after it was received.
--
-- `seq` is an identity column: assigned by the insert itself (no statement of its own), never
-- reused.

ALTER TABLE webhook_events ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
DROP INDEX webhook_events_user;
-- Paging (and pruning) a project's log newest first, with or without a user filter.
CREATE INDEX webhook_events_log ON webhook_events(project_id, received_at, seq);
CREATE INDEX webhook_events_user ON webhook_events(project_id, target_user_id, received_at, seq);

-- What happened to an event after it was received: resolution attempts, giving up, replays.
-- Nothing is written here on receipt (the event row itself says how it was received), so the
-- ingestion path pays nothing for it.
CREATE TABLE webhook_event_history (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id       TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    at               BIGINT NOT NULL,
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
