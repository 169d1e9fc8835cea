-- A report whose automatic dispatch failed (its deadline past the loaded
-- calendar, a unit gone) waits until this time before the job tries it again,
-- so it neither holds back newer reports nor fills the log on every pass.
ALTER TABLE cases ADD COLUMN auto_dispatch_after TEXT;
-- Few rows are set aside; any change to reference data clears them all.
CREATE INDEX cases_auto_dispatch_after ON cases(auto_dispatch_after)
    WHERE auto_dispatch_after IS NOT NULL;
