-- Foundation: accounts, sign-in, photos, categories, cases (reports), timeline.
-- Ids are UUID text (the same SQL binds them on both databases); times are TIMESTAMPTZ.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    unit_id       TEXT,
    username      TEXT UNIQUE,
    password_hash TEXT,
    phone         TEXT UNIQUE,
    display_name  TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE otp_codes (
    phone      TEXT PRIMARY KEY,
    code_hash  TEXT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE categories (
    code        TEXT PRIMARY KEY,
    parent_code TEXT REFERENCES categories(code),
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    sort_order  BIGINT NOT NULL DEFAULT 0,
    active      BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE cases (
    id              TEXT PRIMARY KEY,
    tracking_no     TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL,
    source          TEXT NOT NULL,
    category_code   TEXT NOT NULL REFERENCES categories(code),
    lat             DOUBLE PRECISION NOT NULL,
    lon             DOUBLE PRECISION NOT NULL,
    accuracy_m      DOUBLE PRECISION,
    address         TEXT,
    description     TEXT NOT NULL,
    confidential    BOOLEAN NOT NULL DEFAULT FALSE,
    reporter_id     TEXT NOT NULL REFERENCES users(id),
    photo_distance_m DOUBLE PRECISION,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX cases_reporter ON cases(reporter_id, id);

CREATE TABLE photos (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL REFERENCES users(id),
    case_id        TEXT REFERENCES cases(id),
    position       BIGINT,
    source_type    TEXT NOT NULL,
    width          BIGINT NOT NULL,
    height         BIGINT NOT NULL,
    taken_at       TIMESTAMPTZ,
    gps_lat        DOUBLE PRECISION,
    gps_lon        DOUBLE PRECISION,
    sha256         TEXT NOT NULL,
    phash          TEXT NOT NULL,
    byte_size      BIGINT NOT NULL,
    display_key    TEXT NOT NULL,
    display_width  BIGINT NOT NULL,
    display_height BIGINT NOT NULL,
    display_etag   TEXT NOT NULL,
    thumb_key      TEXT NOT NULL,
    thumb_width    BIGINT NOT NULL,
    thumb_height   BIGINT NOT NULL,
    thumb_etag     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX photos_case ON photos(case_id, position);
CREATE INDEX photos_unattached ON photos(created_at) WHERE case_id IS NULL;

CREATE TABLE case_events (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases(id),
    kind       TEXT NOT NULL,
    actor_id   TEXT,
    actor_role TEXT NOT NULL,
    public     BOOLEAN NOT NULL,
    data       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX case_events_case ON case_events(case_id, id);

-- One counter row per local day gives gap-free, human-sized tracking numbers.
CREATE TABLE tracking_counters (
    day  TEXT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    body         TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);
