-- Chat tables for SQLite.
--
-- Timestamps are INTEGER microseconds since the Unix epoch (UTC), the same
-- representation the PostgreSQL schema uses, so one diesel schema and one set
-- of queries serve both backends and time comparisons are exact integer ones.
--
-- AUTOINCREMENT keeps ids from ever being reused and moves the counter past an
-- explicitly inserted id (a legacy backend's primary key) by itself.

CREATE TABLE users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    username     TEXT    NOT NULL,
    external_id  TEXT,
    email        TEXT    NOT NULL DEFAULT '',
    first_name   TEXT    NOT NULL DEFAULT '',
    last_name    TEXT    NOT NULL DEFAULT '',
    display_name TEXT    NOT NULL DEFAULT '',
    photo        TEXT    NOT NULL DEFAULT '',
    color        TEXT    NOT NULL DEFAULT '',
    role         TEXT    NOT NULL DEFAULT '',
    is_admin     BOOLEAN NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_external_id_key UNIQUE (external_id)
);

CREATE TABLE rooms (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    direct_key   TEXT,
    project_id   BIGINT,
    title        TEXT    NOT NULL DEFAULT '',
    has_business BOOLEAN NOT NULL DEFAULT 0,
    created_by   BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    CONSTRAINT rooms_direct_key_key UNIQUE (direct_key),
    CONSTRAINT rooms_project_id_key UNIQUE (project_id),
    CONSTRAINT rooms_kind_check CHECK (kind IN ('direct', 'group', 'project')),
    CONSTRAINT rooms_direct_key_check CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CONSTRAINT rooms_project_id_check CHECK ((kind = 'project') = (project_id IS NOT NULL))
);

-- join_seq orders the members of a room by the order they joined, which
-- timestamps alone cannot do for users added by the same command.
CREATE TABLE members (
    room_id   BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    join_seq  BIGINT NOT NULL,
    last_read BIGINT,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE INDEX members_user_id_idx ON members (user_id);

CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    room_id    BIGINT NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    author_id  BIGINT NOT NULL REFERENCES users (id),
    kind       TEXT   NOT NULL,
    text       TEXT   NOT NULL,
    reply_to   BIGINT REFERENCES messages (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    edited_at  BIGINT,
    deleted_at BIGINT,
    CONSTRAINT messages_kind_check CHECK (kind IN ('text', 'img', 'file'))
);

CREATE INDEX messages_room_id_id_idx ON messages (room_id, id);
CREATE INDEX messages_room_id_created_at_idx ON messages (room_id, created_at);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT   NOT NULL,
    content_type TEXT   NOT NULL,
    size         BIGINT NOT NULL,
    blob_key     TEXT   NOT NULL,
    uploader_id  BIGINT NOT NULL REFERENCES users (id),
    message_id   BIGINT REFERENCES messages (id) ON DELETE SET NULL,
    position     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT  NOT NULL
);

CREATE INDEX attachments_message_id_idx ON attachments (message_id, position);
