-- The DCRF stack's tables (Django's auth_user, chat_brand, chat_room,
-- chat_room_participants, chat_message) as `chat-gateway import` lines.
-- Users keep their ids (the `user_id` of their tokens); a brand's name becomes
-- the display name; rooms are groups (the old server allowed several rooms of one
-- pair), their participants' users the members; messages keep their ids.
WITH lines AS (
    SELECT 1 AS part, u.id::BIGINT AS n,
           json_build_object(
               'type', 'user', 'id', u.id, 'username', u.username, 'email', u.email,
               'first_name', u.first_name, 'last_name', u.last_name, 'is_admin', u.is_staff,
               'display_name', COALESCE((SELECT b.name FROM chat_brand b WHERE b.user_id = u.id), ''),
               'created_at', u.date_joined)::TEXT AS line
      FROM auth_user u
    UNION ALL
    SELECT 2, r.id,
           json_build_object(
               'type', 'room', 'id', r.id, 'kind', 'group', 'has_business', r.has_business,
               'members', (SELECT COALESCE(json_agg(b.user_id ORDER BY p.id), '[]'::JSON)
                             FROM chat_room_participants p
                             JOIN chat_brand b ON b.id = p.brand_id
                            WHERE p.room_id = r.id))::TEXT
      FROM chat_room r
    UNION ALL
    SELECT 3, m.id,
           json_build_object(
               'type', 'message', 'id', m.id, 'room', m.room_id, 'author', m.user_id,
               'text', m.text, 'created_at', m.created_at)::TEXT
      FROM chat_message m
)
SELECT line FROM lines ORDER BY part, n;
