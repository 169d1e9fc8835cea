-- Code requests per client address and minute, shared by every instance (an
-- in-process limiter would give each instance its own allowance). Rows older
-- than a few minutes are purged by the sign-in housekeeping job.
CREATE TABLE otp_client_windows (
    client       TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    requests     BIGINT NOT NULL,
    PRIMARY KEY (client, window_start)
);

-- The housekeeping job deletes by expiry.
CREATE INDEX otp_codes_expires ON otp_codes(expires_at);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);
