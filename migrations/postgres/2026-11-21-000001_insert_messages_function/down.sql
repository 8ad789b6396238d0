DROP FUNCTION chat_insert_messages(BIGINT[], BIGINT[], TEXT[], TEXT[], BIGINT[], BIGINT);
