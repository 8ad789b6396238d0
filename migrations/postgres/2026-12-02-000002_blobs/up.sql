-- Attachment bytes in the database, for nodes of a cluster that share no disk
-- (crates/core/src/files.rs). Content-addressed: `key` is the SHA-256 of `bytes`,
-- so a key is written once and never changes.
CREATE TABLE chat_blobs (
    key        TEXT   PRIMARY KEY,
    bytes      BYTEA  NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
