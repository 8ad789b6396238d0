-- The Node stack's tables (users, chats) as `chat-gateway import` lines.
-- A conversation of two usernames becomes a direct room keyed by the pair;
-- `media` URLs become attachments (fetched at import); a recipient's read
-- mark is the newest message of the pair they have read.
WITH pairs AS (
    SELECT DISTINCT LEAST(sender, recipient) AS a, GREATEST(sender, recipient) AS b
      FROM chats
), lines AS (
    SELECT 1 AS part, 0::BIGINT AS n, username AS k,
           json_build_object('type', 'user', 'id', username, 'username', username)::TEXT AS line
      FROM users
    UNION ALL
    SELECT 2, 0, a || ' ' || b,
           json_build_object('type', 'room', 'id', json_build_array(a, b)::TEXT,
                             'kind', 'direct', 'members', json_build_array(a, b))::TEXT
      FROM pairs
    UNION ALL
    SELECT 3, c.id, '',
           json_build_object(
               'type', 'message', 'id', c.id,
               'room', json_build_array(LEAST(c.sender, c.recipient), GREATEST(c.sender, c.recipient))::TEXT,
               'author', c.sender, 'text', c.message, 'created_at', c.created_at,
               'attachments', (SELECT json_agg(json_build_object('url', u))
                                 FROM jsonb_array_elements_text(c.media) AS u))::TEXT
      FROM chats c
    UNION ALL
    SELECT 4, max(c.id), '',
           json_build_object(
               'type', 'read',
               'room', json_build_array(LEAST(c.sender, c.recipient), GREATEST(c.sender, c.recipient))::TEXT,
               'user', c.recipient, 'message', max(c.id))::TEXT
      FROM chats c
     WHERE c.has_read
     GROUP BY c.sender, c.recipient
)
SELECT line FROM lines ORDER BY part, n, k;
