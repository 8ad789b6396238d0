-- The outbox's wake-up leaves the writers' transactions: chat_outbox_put no longer
-- calls pg_notify. A transaction that notified takes a database-wide lock at commit
-- and holds it through its WAL flush, so every message writer committed one at a
-- time behind it. The gateway now sends the NOTIFY after each commit that appended,
-- in a transaction of its own (crates/store/src/note.rs, CommitWake).
CREATE OR REPLACE FUNCTION chat_outbox_put(
    p_shards   INT[],
    p_payloads TEXT[],
    p_messages BIGINT[]
) RETURNS BIGINT[]
LANGUAGE plpgsql AS $$
DECLARE
    seqs BIGINT[];
BEGIN
    IF coalesce(cardinality(p_shards), 0) = 0 THEN
        RETURN '{}';
    END IF;
    PERFORM 1 FROM chat_outbox_shards WHERE shard = ANY (p_shards) ORDER BY shard FOR UPDATE;
    WITH input AS (
        SELECT * FROM unnest(p_shards, p_payloads, p_messages) WITH ORDINALITY
                 AS t (shard, payload, message_id, ord)
    ), counts AS (
        SELECT shard, count(*) AS n FROM input GROUP BY shard
    ), bumped AS (
        UPDATE chat_outbox_shards s SET last_seq = s.last_seq + c.n
          FROM counts c WHERE s.shard = c.shard
        RETURNING s.shard, s.last_seq - c.n AS base
    ), numbered AS (
        SELECT i.ord, i.shard, i.payload, i.message_id,
               b.base + row_number() OVER (PARTITION BY i.shard ORDER BY i.ord) AS seq
          FROM input i JOIN bumped b ON b.shard = i.shard
    ), inserted AS (
        INSERT INTO chat_outbox (shard, seq, message_id, payload, created_at)
        SELECT shard, seq, message_id, payload, chat_now_micros() FROM numbered
        RETURNING 1
    )
    SELECT array_agg(seq ORDER BY ord) INTO seqs FROM numbered;
    RETURN seqs;
END
$$;
