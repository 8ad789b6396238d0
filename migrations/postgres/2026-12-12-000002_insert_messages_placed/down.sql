DROP FUNCTION chat_insert_messages_placed(BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[], BIGINT, TEXT[]);
