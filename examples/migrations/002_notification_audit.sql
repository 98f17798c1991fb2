-- Notification delivery records. The example service does not write them yet, but upstream's
-- VerifyMigrations checks that the table exists (audit_events, notification_audit), and so does
-- the example's /readyz.

-- +goose Up
CREATE TABLE notification_audit (
    id                BIGSERIAL PRIMARY KEY,
    remediation_id    VARCHAR(255) NOT NULL,
    notification_id   VARCHAR(255) NOT NULL UNIQUE,
    recipient         VARCHAR(255) NOT NULL,
    channel           VARCHAR(50) NOT NULL
        CHECK (channel IN ('email', 'slack', 'pagerduty', 'sms', 'teams', 'console', 'file', 'log')),
    message_summary   TEXT NOT NULL,
    status            VARCHAR(50) NOT NULL
        CHECK (status IN ('sent', 'failed', 'acknowledged', 'escalated')),
    sent_at           TIMESTAMPTZ NOT NULL,
    delivery_status   TEXT,
    error_message     TEXT,
    escalation_level  INTEGER NOT NULL DEFAULT 0 CHECK (escalation_level >= 0),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX idx_notification_audit_remediation ON notification_audit (remediation_id);

-- +goose Down
DROP TABLE notification_audit;
