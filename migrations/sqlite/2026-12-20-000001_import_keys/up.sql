-- What `chat-gateway import` has brought in (crates/store/src/store/import.rs): for
-- each record of a legacy source, the key it had there and the id it has here. A
-- record whose key is listed is already imported, so importing a file again, or
-- again after an interrupted run, adds nothing twice; a key whose id was taken here
-- is mapped to a new id, and this table is where references find it.
CREATE TABLE chat_import_keys (
    source TEXT   NOT NULL,
    kind   TEXT   NOT NULL,
    key    TEXT   NOT NULL,
    id     BIGINT NOT NULL,
    PRIMARY KEY (source, kind, key)
);
