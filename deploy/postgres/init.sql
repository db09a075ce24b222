-- Roster on PostgreSQL: one database, a schema per service, and a role per
-- service that owns its schema and reaches nothing else (issue 13).
--
-- Run once as a superuser, connected to Roster's database (the compose file
-- mounts it into the postgres image's /docker-entrypoint-initdb.d; by hand:
-- psql -d roster -f init.sql). It changes nothing when run again. Then set
-- each role's password (passwords.sh does it from the environment):
--   ALTER ROLE roster_identity PASSWORD '…';
-- and give each service its own URL, with search_path left to Roster:
--   roster serve identity --db postgres://roster_identity:…@db:5432/roster?sslmode=verify-full
--
-- pkg/store then finds its schema (it creates one only where none exists,
-- which these roles cannot do) and runs its migrations under a per-service
-- advisory lock, so replicas starting at once migrate once.

DO $$
DECLARE
    svc text;
BEGIN
    FOREACH svc IN ARRAY ARRAY['identity', 'seatbilling', 'rolepolicy', 'audit'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'roster_' || svc) THEN
            -- LOGIN without a password until passwords.sh sets one.
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT', 'roster_' || svc);
        END IF;
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', svc, 'roster_' || svc);
        -- The owner's rights on its own schema; nobody else's.
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', svc);
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), 'roster_' || svc);
        -- Connection pooling (docs/operations.md, "PostgreSQL"): each
        -- process keeps at most 8 connections (pkg/store); the limit leaves
        -- room for 4 replicas and a migration.
        EXECUTE format('ALTER ROLE %I CONNECTION LIMIT 40', 'roster_' || svc);
        -- A transaction left open (a stuck process) does not hold the
        -- account locks of the others for ever.
        EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', 'roster_' || svc, '60s');
        -- Every commit waits for the WAL flush (the default, said
        -- explicitly: Roster's outbox and inbox rely on a commit that
        -- stays committed).
        EXECUTE format('ALTER ROLE %I SET synchronous_commit = %L', 'roster_' || svc, 'on');
    END LOOP;
END
$$;

-- Nobody creates objects in public, nor new schemas.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END
$$;
