-- Foundation: accounts, sign-in, photos, categories, cases (reports), timeline.
-- Ids are UUID text; times are UTC RFC 3339 text (sqlx encodes chrono that way).

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    unit_id       TEXT,
    username      TEXT UNIQUE,
    password_hash TEXT,
    phone         TEXT UNIQUE,
    display_name  TEXT,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE otp_codes (
    phone      TEXT PRIMARY KEY,
    code_hash  TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users(id),
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    revoked    INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE categories (
    code        TEXT PRIMARY KEY,
    parent_code TEXT REFERENCES categories(code),
    name_zh     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    sort_order  INTEGER NOT NULL DEFAULT 0,
    active      INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE cases (
    id              TEXT PRIMARY KEY,
    tracking_no     TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL,
    source          TEXT NOT NULL,
    category_code   TEXT NOT NULL REFERENCES categories(code),
    lat             REAL NOT NULL,
    lon             REAL NOT NULL,
    accuracy_m      REAL,
    address         TEXT,
    description     TEXT NOT NULL,
    confidential    INTEGER NOT NULL DEFAULT 0,
    reporter_id     TEXT NOT NULL REFERENCES users(id),
    photo_distance_m REAL,
    version         INTEGER NOT NULL DEFAULT 1,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX cases_reporter ON cases(reporter_id, id);

CREATE TABLE photos (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL REFERENCES users(id),
    case_id        TEXT REFERENCES cases(id),
    position       INTEGER,
    source_type    TEXT NOT NULL,
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    taken_at       TEXT,
    gps_lat        REAL,
    gps_lon        REAL,
    sha256         TEXT NOT NULL,
    phash          TEXT NOT NULL,
    byte_size      INTEGER NOT NULL,
    display_key    TEXT NOT NULL,
    display_width  INTEGER NOT NULL,
    display_height INTEGER NOT NULL,
    display_etag   TEXT NOT NULL,
    thumb_key      TEXT NOT NULL,
    thumb_width    INTEGER NOT NULL,
    thumb_height   INTEGER NOT NULL,
    thumb_etag     TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX photos_case ON photos(case_id, position);
CREATE INDEX photos_unattached ON photos(created_at) WHERE case_id IS NULL;

CREATE TABLE case_events (
    id         TEXT PRIMARY KEY,
    case_id    TEXT NOT NULL REFERENCES cases(id),
    kind       TEXT NOT NULL,
    actor_id   TEXT,
    actor_role TEXT NOT NULL,
    public     INTEGER NOT NULL,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX case_events_case ON case_events(case_id, id);

-- One counter row per local day gives gap-free, human-sized tracking numbers.
CREATE TABLE tracking_counters (
    day  TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);

CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
