-- The cluster: several gateway nodes on one database (crates/cluster).
--
-- Every event a node publishes is appended to `chat_outbox` under a shard (a room's
-- events go to shard room_id % 16, an event about a user alone to user_id % 16)
-- with the shard's next sequence number. The number is taken by updating the
-- shard's row in `chat_outbox_shards`, whose lock is held until commit, so the
-- events of a shard commit in sequence order with no gaps: a reader that has seen
-- sequence n has seen every event of that shard below n, and reads `seq > cursor`.
-- A new message's event is appended in the transaction that inserts the message, so
-- a room's messages reach the outbox in id order. NOTIFY only wakes the readers; the
-- events themselves are always read from the table.
--
-- Presence is kept per node (`chat_presence`), and `chat_presence_announced` holds
-- the users the cluster last announced as online, so an announcement is appended
-- exactly when the cluster-wide state flips. Nodes heartbeat in `chat_nodes`; a
-- node whose heartbeat is too old is swept, which takes its users offline.

CREATE TABLE chat_outbox_shards (
    shard    INT PRIMARY KEY,
    last_seq BIGINT NOT NULL DEFAULT 0
);
INSERT INTO chat_outbox_shards (shard) SELECT g FROM generate_series(0, 15) AS g;

CREATE TABLE chat_outbox (
    shard      INT    NOT NULL,
    seq        BIGINT NOT NULL,
    message_id BIGINT,
    payload    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (shard, seq)
);
CREATE INDEX chat_outbox_by_age ON chat_outbox (created_at);

CREATE TABLE chat_nodes (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE chat_presence (
    user_id BIGINT NOT NULL,
    node_id BIGINT NOT NULL,
    PRIMARY KEY (user_id, node_id)
);
CREATE INDEX chat_presence_by_node ON chat_presence (node_id);

CREATE TABLE chat_presence_announced (
    user_id BIGINT PRIMARY KEY
);

-- The cluster's settings; `broker`: how the nodes tell each other of new events
-- ('postgres': NOTIFY; 'redis <host>': Redis pub/sub, and then no NOTIFY at all).
-- Every live node uses the same one (checked as a node joins).
CREATE TABLE chat_cluster_config (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO chat_cluster_config (key, value) VALUES ('broker', 'postgres');

CREATE FUNCTION chat_now_micros() RETURNS BIGINT
LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT
$$;

-- Append events. Locks the shards named (ascending, so two appends cannot
-- deadlock) until the caller's transaction ends; returns the sequence numbers in
-- the order of the arrays.
CREATE FUNCTION chat_outbox_put(
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
    IF EXISTS (SELECT 1 FROM chat_cluster_config WHERE key = 'broker' AND value = 'postgres') THEN
        PERFORM pg_notify('chat_outbox_' || current_schema(), '');
    END IF;
    RETURN seqs;
END
$$;

-- Publish events and presence changes of one node in one transaction. For each
-- user in p_users, p_online says whether the node has a connection of theirs now;
-- when that flips the cluster-wide state, a presence event is appended after the
-- given ones. Users are locked (advisory, ascending) before any shard.
CREATE FUNCTION chat_outbox_publish(
    p_node     BIGINT,
    p_shards   INT[],
    p_payloads TEXT[],
    p_users    BIGINT[],
    p_online   BOOLEAN[]
) RETURNS TABLE (shard INT, seq BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    u BIGINT;
    o BOOLEAN;
    now_on BOOLEAN;
    was BOOLEAN;
    shards INT[] := coalesce(p_shards, '{}');
    payloads TEXT[] := coalesce(p_payloads, '{}');
    messages BIGINT[] := array_fill(NULL::BIGINT, ARRAY[coalesce(cardinality(p_shards), 0)]);
    space INT := hashtext('chat_presence ' || current_schema());
BEGIN
    FOR u IN SELECT DISTINCT x FROM unnest(p_users) AS x ORDER BY x LOOP
        PERFORM pg_advisory_xact_lock(space, (u % 2147483647)::INT);
    END LOOP;
    FOR u, o IN SELECT x.u, x.o FROM unnest(p_users, p_online) AS x (u, o) LOOP
        IF o THEN
            INSERT INTO chat_presence (user_id, node_id) VALUES (u, p_node) ON CONFLICT DO NOTHING;
        ELSE
            DELETE FROM chat_presence WHERE user_id = u AND node_id = p_node;
        END IF;
        now_on := EXISTS (SELECT 1 FROM chat_presence WHERE user_id = u);
        was := EXISTS (SELECT 1 FROM chat_presence_announced WHERE user_id = u);
        IF now_on AND NOT was THEN
            INSERT INTO chat_presence_announced (user_id) VALUES (u);
        ELSIF was AND NOT now_on THEN
            DELETE FROM chat_presence_announced WHERE user_id = u;
        END IF;
        IF now_on <> was THEN
            shards := shards || (u % 16)::INT;
            payloads := payloads || json_build_object(
                'what', json_build_object('k', 'PresenceOf', 'user', u, 'online', now_on))::TEXT;
            messages := messages || NULL::BIGINT;
        END IF;
    END LOOP;
    -- The given events first, in order, then the presence flips: the caller
    -- learns where its flips went, so it can pass them on (the Redis broker).
    RETURN QUERY SELECT t.shard, t.seq
      FROM unnest(shards, chat_outbox_put(shards, payloads, messages)) AS t (shard, seq);
END
$$;

-- Take a node out of the cluster: its users' presence on it ends (announced
-- offline where that was their last node) and its row goes.
CREATE FUNCTION chat_node_leave(p_node BIGINT) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    users BIGINT[];
BEGIN
    SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') INTO users
      FROM chat_presence WHERE node_id = p_node;
    PERFORM * FROM chat_outbox_publish(p_node, '{}', '{}', users,
                                       array_fill(false, ARRAY[cardinality(users)]));
    DELETE FROM chat_nodes WHERE id = p_node;
END
$$;

-- The group commit of messages (see 2026-11-21-000001_insert_messages_function),
-- now also appending each message's event, when it has one (p_notes), in the same
-- transaction: rooms are locked first, then shards, as everywhere.
DROP FUNCTION chat_insert_messages(BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[], BIGINT);
CREATE FUNCTION chat_insert_messages(
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
        PERFORM chat_outbox_put(shards, notes, noted);
    END IF;
    RETURN ids;
END
$$;
