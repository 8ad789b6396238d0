DROP TABLE chat_blobs;
