-- Objects of deleted photos until the store has deleted them. A stale photo's
-- row goes first (so nobody can attach it while its objects go), and an object
-- the store failed to delete, or a crash left, is tried again at the next pass.
CREATE TABLE photo_object_deletions (
    object_key TEXT PRIMARY KEY,
    queued_at  TEXT NOT NULL
);
CREATE INDEX photo_object_deletions_queued ON photo_object_deletions(queued_at);
