-- The service connects as slm_user while migrations may run as another role (the postgres
-- superuser, or the image's POSTGRES_USER). Upstream's 001 grants inside a DO block that checks
-- the role first, so the file also applies on a server without slm_user; this does the same,
-- last, so the grants cover every table created above.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'slm_user') THEN
        GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO slm_user;
        GRANT ALL PRIVILEGES ON ALL SEQUENCES IN SCHEMA public TO slm_user;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO slm_user;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- Revoking from the tables' owner would take away its own access, so only a grantee that is
-- not the owner loses the privileges.
-- +goose StatementBegin
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'slm_user')
       AND (SELECT tableowner FROM pg_tables
            WHERE schemaname = 'public' AND tablename = 'audit_events') <> 'slm_user' THEN
        REVOKE ALL PRIVILEGES ON audit_events, notification_audit FROM slm_user;
        REVOKE ALL PRIVILEGES ON SEQUENCE notification_audit_id_seq FROM slm_user;
    END IF;
END
$$;
-- +goose StatementEnd
