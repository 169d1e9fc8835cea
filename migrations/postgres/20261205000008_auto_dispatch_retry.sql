-- A report whose automatic dispatch failed (its deadline past the loaded
-- calendar, a unit gone) waits until this time before the job tries it again,
-- so it neither holds back newer reports nor fills the log on every pass.
ALTER TABLE cases ADD COLUMN auto_dispatch_after TIMESTAMPTZ;
