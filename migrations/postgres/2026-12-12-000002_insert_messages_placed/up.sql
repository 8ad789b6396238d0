-- The group commit of messages, telling the writer where each message's cluster
-- note went: the ids in the order of the arrays, followed by each note's sequence
-- number in its shard (0 for a message without a note). The node that wrote a note
-- then delivers its own event when it is next in the shard without reading it back
-- (crates/cluster, the reader). chat_insert_messages stays for nodes of the
-- previous version during a rolling upgrade.
CREATE FUNCTION chat_insert_messages_placed(
    p_rooms   BIGINT[],
    p_authors BIGINT[],
    p_kinds   TEXT[],
    p_texts   TEXT[],
    p_replies BIGINT[],
    p_now     BIGINT,
    p_notes   TEXT[]
) RETURNS BIGINT[]
LANGUAGE plpgsql AS $$
DECLARE
    ids BIGINT[];
    shards INT[];
    notes TEXT[];
    noted BIGINT[];
    placed BIGINT[];
    seqs BIGINT[];
BEGIN
    PERFORM 1 FROM rooms WHERE id = ANY (p_rooms) ORDER BY id FOR NO KEY UPDATE;
    SELECT array_agg(v ORDER BY v) INTO ids
      FROM (SELECT nextval(pg_get_serial_sequence('messages', 'id')) AS v
              FROM generate_series(1, cardinality(p_rooms))) AS taken;
    INSERT INTO messages (id, room_id, author_id, kind, text, reply_to, created_at, updated_at)
    SELECT g.id, g.room_id, g.author_id, g.kind, g.text, g.reply_to, p_now, p_now
      FROM unnest(ids, p_rooms, p_authors, p_kinds, p_texts, p_replies)
           AS g (id, room_id, author_id, kind, text, reply_to);
    SELECT array_agg((g.room_id % 16)::INT ORDER BY g.ord), array_agg(g.note ORDER BY g.ord),
           array_agg(g.id ORDER BY g.ord)
      INTO shards, notes, noted
      FROM unnest(ids, p_rooms, p_notes) WITH ORDINALITY AS g (id, room_id, note, ord)
     WHERE g.note IS NOT NULL;
    IF shards IS NOT NULL THEN
        placed := chat_outbox_put(shards, notes, noted);
    END IF;
    -- Each message's sequence number, in the order of the arrays (the noted ids and
    -- their sequence numbers are in that order too).
    SELECT array_agg(coalesce(p.seq, 0) ORDER BY g.ord) INTO seqs
      FROM unnest(ids) WITH ORDINALITY AS g (id, ord)
      LEFT JOIN unnest(noted, placed) AS p (id, seq) ON p.id = g.id;
    RETURN ids || seqs;
END
$$;
