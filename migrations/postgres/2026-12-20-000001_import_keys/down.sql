DROP TABLE chat_import_keys;
