-- Group commit of new messages in one statement (crates/store/src/group.rs).
--
-- A group of messages without attachments is inserted by a single call, so it costs
-- one round trip and is its own transaction (one WAL flush). The call locks the
-- group's rooms in id order, exactly as a single insert locks its room, so the ids
-- of a room still commit in increasing order; it then takes the group's ids from
-- the sequence, ascending, gives them to the messages in the order given, inserts
-- every row, and returns the ids in that order. A room or author that does not
-- exist fails the whole call with the foreign key's error.
CREATE FUNCTION chat_insert_messages(
    p_rooms   BIGINT[],
    p_authors BIGINT[],
    p_kinds   TEXT[],
    p_texts   TEXT[],
    p_replies BIGINT[],
    p_now     BIGINT
) RETURNS BIGINT[]
LANGUAGE plpgsql AS $$
DECLARE
    ids BIGINT[];
BEGIN
    PERFORM 1 FROM rooms WHERE id = ANY (p_rooms) ORDER BY id FOR NO KEY UPDATE;
    SELECT array_agg(v ORDER BY v) INTO ids
      FROM (SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS v
              FROM generate_series(1, cardinality(p_rooms))) AS taken;
    INSERT INTO messages (id, room_id, author_id, kind, text, reply_to, created_at, updated_at)
    SELECT g.id, g.room_id, g.author_id, g.kind, g.text, g.reply_to, p_now, p_now
      FROM unnest(ids, p_rooms, p_authors, p_kinds, p_texts, p_replies)
           AS g (id, room_id, author_id, kind, text, reply_to);
    RETURN ids;
END
$$;
