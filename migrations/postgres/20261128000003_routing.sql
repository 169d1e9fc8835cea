-- Ownership routing: responsible units, zones, versioned rules, the audit trail of
-- reference-data changes, and each case's routing decision.

CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    parent_code TEXT REFERENCES units(code),
    contacts    TEXT NOT NULL DEFAULT '[]',
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

ALTER TABLE categories ADD COLUMN national_code TEXT;
ALTER TABLE categories ADD COLUMN service_code TEXT;
ALTER TABLE categories ADD COLUMN default_urgency TEXT NOT NULL DEFAULT 'normal';
ALTER TABLE categories ADD COLUMN requires_photo BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE categories ADD COLUMN public BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE categories ADD COLUMN deadline_profile TEXT;

-- Geometry is kept as the GeoJSON it was imported as; the routing table parses it.
CREATE TABLE zones (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    parent_code TEXT,
    geometry    TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- Editing a rule adds a version; cases keep the (id, version) that routed them.
CREATE TABLE rules (
    id               TEXT NOT NULL,
    version          BIGINT NOT NULL,
    category_prefix  TEXT NOT NULL,
    zone_code        TEXT REFERENCES zones(code),
    lead_unit        TEXT NOT NULL REFERENCES units(code),
    co_units         TEXT NOT NULL DEFAULT '[]',
    deadline_profile TEXT,
    priority         BIGINT NOT NULL,
    valid_from       TIMESTAMPTZ,
    valid_to         TIMESTAMPTZ,
    active           BOOLEAN NOT NULL,
    note             TEXT,
    is_current       BOOLEAN NOT NULL,
    created_by       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE INDEX rules_current ON rules(is_current);

CREATE TABLE audit_log (
    id         TEXT PRIMARY KEY,
    actor_id   TEXT,
    actor_role TEXT NOT NULL,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- Bumped by every change to zones, units or rules; instances poll it and rebuild.
CREATE TABLE routing_state (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO routing_state (id, version) VALUES (1, 0);

ALTER TABLE cases ADD COLUMN zone_path TEXT NOT NULL DEFAULT '[]';
ALTER TABLE cases ADD COLUMN rule_id TEXT;
ALTER TABLE cases ADD COLUMN rule_version BIGINT;
ALTER TABLE cases ADD COLUMN lead_unit TEXT;
ALTER TABLE cases ADD COLUMN co_units TEXT NOT NULL DEFAULT '[]';
ALTER TABLE cases ADD COLUMN deadline_profile TEXT;
-- When no rule matched: the district suggested as fallback (兜底).
ALTER TABLE cases ADD COLUMN suggested_zone TEXT;
CREATE INDEX cases_lead_unit ON cases(lead_unit, id);
