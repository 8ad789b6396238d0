-- The messages of a room changed (edited or deleted) since a moment, for
-- `GET /api/sync`: edits and deletions set `updated_at`.
CREATE INDEX messages_room_id_updated_at_idx ON messages (room_id, updated_at);
