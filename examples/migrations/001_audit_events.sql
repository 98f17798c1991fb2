-- The audit trail the example DataStorage service writes and reads (POST/GET
-- /api/v1/audit/events). A simplified form of upstream's audit_events: the same column names,
-- without the monthly partitions, hash chain and retention columns the example does not use.

-- +goose Up
CREATE TABLE audit_events (
    event_id        UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    event_timestamp TIMESTAMPTZ NOT NULL DEFAULT now(),
    correlation_id  VARCHAR(255) NOT NULL,
    event_type      VARCHAR(255) NOT NULL,
    event_category  VARCHAR(100),
    event_action    VARCHAR(100),
    event_outcome   VARCHAR(50),
    actor_type      VARCHAR(100),
    actor_id        VARCHAR(255),
    resource_type   VARCHAR(100),
    resource_id     VARCHAR(255),
    namespace       VARCHAR(253),
    event_data      JSONB NOT NULL DEFAULT '{}'::jsonb,
    CONSTRAINT audit_events_event_data_is_object CHECK (jsonb_typeof(event_data) = 'object')
);

-- The API's query: events of one correlation id, oldest first.
CREATE INDEX idx_audit_events_correlation ON audit_events (correlation_id, event_timestamp, event_id);
CREATE INDEX idx_audit_events_type ON audit_events (event_type, event_timestamp);

COMMENT ON TABLE audit_events IS 'Audit events written through POST /api/v1/audit/events';

-- +goose Down
DROP TABLE audit_events;
