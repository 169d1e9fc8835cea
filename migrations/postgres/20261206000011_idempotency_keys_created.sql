-- Keys are forgotten a week after their report (jobs::idempotency_purge); the
-- purge finds them by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);
