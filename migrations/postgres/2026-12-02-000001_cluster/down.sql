DROP FUNCTION chat_insert_messages(BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[], BIGINT, TEXT[]);
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
DROP FUNCTION chat_node_leave(BIGINT);
DROP FUNCTION chat_outbox_publish(BIGINT, INT[], TEXT[], BIGINT[], BOOLEAN[]);
DROP FUNCTION chat_outbox_put(INT[], TEXT[], BIGINT[]);
DROP FUNCTION chat_now_micros();
DROP TABLE chat_cluster_config;
DROP TABLE chat_presence_announced;
DROP TABLE chat_presence;
DROP TABLE chat_nodes;
DROP TABLE chat_outbox;
DROP TABLE chat_outbox_shards;
