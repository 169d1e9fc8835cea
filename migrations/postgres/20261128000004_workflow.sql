-- Case workflow and deadlines: assignments, clocks, deadline profiles, working
-- calendars, the outbox, and the lease that keeps one SQLite sweeper at a time.

-- Category policy (DESIGN §3): automatic filing and dispatch, reporter checks,
-- the extension cap.
ALTER TABLE categories ADD COLUMN auto_dispatch BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE categories ADD COLUMN reporter_may_check BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE categories ADD COLUMN max_extensions BIGINT NOT NULL DEFAULT 2;

ALTER TABLE cases ADD COLUMN urgency TEXT NOT NULL DEFAULT 'normal';
-- JSON of domain::case::PendingRequest while a unit's request waits.
ALTER TABLE cases ADD COLUMN pending_request TEXT;
ALTER TABLE cases ADD COLUMN extensions_granted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN rework_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN dispatched_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN sign_window_ends TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN closed_at TIMESTAMPTZ;
ALTER TABLE cases ADD COLUMN master_case_id TEXT REFERENCES cases(id);
ALTER TABLE cases ADD COLUMN not_filed_reason TEXT;
ALTER TABLE cases ADD COLUMN rating BIGINT;
-- JSON list of what the checker should look at (after-photo doubts, co-units
-- that had not finished when the lead reported).
ALTER TABLE cases ADD COLUMN check_flags TEXT NOT NULL DEFAULT '[]';
-- Earliest due time among the case's running clocks, for queue filters and sorting.
ALTER TABLE cases ADD COLUMN due_at TIMESTAMPTZ;
-- Queues filter by state; reports waiting for automatic dispatch are found by
-- it too (few stay `submitted` for long), which spares intake another index.
CREATE INDEX cases_state ON cases(state, id);
CREATE INDEX cases_due ON cases(due_at) WHERE due_at IS NOT NULL;

-- Before-photos come with the report; after-photos with the unit's 办结反馈.
ALTER TABLE photos ADD COLUMN stage TEXT NOT NULL DEFAULT 'before';

-- Who works a dispatched case: one lead (主办) and any co-units (协办).
CREATE TABLE case_assignments (
    case_id     TEXT NOT NULL REFERENCES cases(id),
    unit_code   TEXT NOT NULL REFERENCES units(code),
    lead        BOOLEAN NOT NULL,
    assigned_at TIMESTAMPTZ NOT NULL,
    signed_at   TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (case_id, unit_code)
);
CREATE INDEX case_assignments_unit ON case_assignments(unit_code, case_id);

-- One row per phase clock. unit_code is NULL for the case's own clocks and names
-- the co-unit for a co-unit's sign/handle clocks. The inputs (explanation JSON)
-- and the calendar version let a deadline be recomputed and explained later.
-- next_check_at is when the sweeper must next look (the warning time, then the
-- due time); NULL once both events are out or the clock is not running, so the
-- sweeper's index holds only clocks that still owe an event.
CREATE TABLE case_clocks (
    id               TEXT PRIMARY KEY,
    case_id          TEXT NOT NULL REFERENCES cases(id),
    phase            TEXT NOT NULL,
    unit_code        TEXT,
    limit_amount     BIGINT NOT NULL,
    limit_unit       TEXT NOT NULL,
    started_at       TIMESTAMPTZ NOT NULL,
    due_at           TIMESTAMPTZ NOT NULL,
    warning_at       TIMESTAMPTZ NOT NULL,
    status           TEXT NOT NULL,
    paused_at        TIMESTAMPTZ,
    pauses           TEXT NOT NULL DEFAULT '[]',
    stopped_at       TIMESTAMPTZ,
    calendar_version TEXT NOT NULL,
    inputs           TEXT NOT NULL,
    warned_at        TIMESTAMPTZ,
    overdue_at       TIMESTAMPTZ,
    next_check_at    TIMESTAMPTZ
);
CREATE INDEX case_clocks_case ON case_clocks(case_id);
CREATE INDEX case_clocks_next ON case_clocks(next_check_at) WHERE next_check_at IS NOT NULL;

-- Phase limits per category (or category prefix; '*' for the default) and urgency.
-- Without a prefix a profile applies only where a category or rule names it.
CREATE TABLE deadline_profiles (
    id               TEXT PRIMARY KEY,
    category_prefix  TEXT,
    urgency          TEXT NOT NULL,
    phases           TEXT NOT NULL,
    warning_fraction DOUBLE PRECISION,
    updated_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (category_prefix, urgency)
);
INSERT INTO deadline_profiles (id, category_prefix, urgency, phases, warning_fraction, updated_at) VALUES
 ('default-normal', '*', 'normal',
  '{"verify":{"amount":1,"unit":"work_days"},"dispatch":{"amount":2,"unit":"work_hours"},"sign":{"amount":2,"unit":"work_hours"},"handle":{"amount":3,"unit":"work_days"},"check":{"amount":1,"unit":"work_days"},"rework":{"amount":2,"unit":"work_days"}}',
  NULL, '2026-11-28T00:00:00Z'),
 ('default-urgent', '*', 'urgent',
  '{"verify":{"amount":4,"unit":"work_hours"},"dispatch":{"amount":1,"unit":"work_hours"},"sign":{"amount":1,"unit":"work_hours"},"handle":{"amount":1,"unit":"work_days"},"check":{"amount":4,"unit":"work_hours"},"rework":{"amount":8,"unit":"work_hours"}}',
  NULL, '2026-11-28T00:00:00Z'),
 ('default-critical', '*', 'critical',
  '{"verify":{"amount":1,"unit":"natural_hours"},"dispatch":{"amount":1,"unit":"natural_hours"},"sign":{"amount":1,"unit":"natural_hours"},"handle":{"amount":24,"unit":"natural_hours"},"check":{"amount":4,"unit":"natural_hours"},"rework":{"amount":12,"unit":"natural_hours"}}',
  NULL, '2026-11-28T00:00:00Z');

-- Working calendars, one published arrangement per jurisdiction and year.
CREATE TABLE calendar_years (
    jurisdiction TEXT NOT NULL,
    year         BIGINT NOT NULL,
    version      TEXT NOT NULL,
    document     TEXT NOT NULL,
    loaded_by    TEXT,
    loaded_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (jurisdiction, year)
);

-- Every public state change and deadline event, in order, for delivery to the
-- 12345 platform and other subscribers. Rows point at timeline events, whose
-- data is the message. Written only beside their event, in its transaction, so
-- no foreign keys: they would cost the sweeper a lookup per row for nothing.
CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      TEXT NOT NULL,
    event_id     TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ
);
CREATE INDEX outbox_pending ON outbox(id) WHERE delivered_at IS NULL;

-- Named leases for jobs that must run on one instance at a time (SQLite sweeper).
CREATE TABLE job_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
