//! The one diesel schema both backends share. The migrations of each backend create
//! tables whose column types map onto these: ids and timestamps are 64-bit integers
//! (`BIGINT` on PostgreSQL, `INTEGER` on SQLite), flags are booleans, the rest text.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        external_id -> Nullable<Text>,
        email -> Text,
        first_name -> Text,
        last_name -> Text,
        display_name -> Text,
        photo -> Text,
        color -> Text,
        role -> Text,
        is_admin -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    rooms (id) {
        id -> BigInt,
        kind -> Text,
        direct_key -> Nullable<Text>,
        project_id -> Nullable<BigInt>,
        title -> Text,
        has_business -> Bool,
        created_by -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    members (room_id, user_id) {
        room_id -> BigInt,
        user_id -> BigInt,
        join_seq -> BigInt,
        last_read -> Nullable<BigInt>,
        joined_at -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> BigInt,
        room_id -> BigInt,
        author_id -> BigInt,
        kind -> Text,
        text -> Text,
        reply_to -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        edited_at -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    attachments (id) {
        id -> BigInt,
        name -> Text,
        content_type -> Text,
        size -> BigInt,
        blob_key -> Text,
        uploader_id -> BigInt,
        message_id -> Nullable<BigInt>,
        position -> BigInt,
        created_at -> BigInt,
        token -> Text,
    }
}

diesel::joinable!(members -> rooms (room_id));
diesel::joinable!(members -> users (user_id));
diesel::joinable!(messages -> rooms (room_id));
diesel::joinable!(attachments -> messages (message_id));

diesel::allow_tables_to_appear_in_same_query!(users, rooms, members, messages, attachments);

diesel::table! {
    chat_import_keys (source, kind, key) {
        source -> Text,
        kind -> Text,
        key -> Text,
        id -> BigInt,
    }
}
