-- Approved returns (回退) are the record routing rules are reviewed from; only
-- those events enter this index, so it costs the other timeline writes nothing.
CREATE INDEX case_events_returned ON case_events(created_at) WHERE kind = 'returned';
