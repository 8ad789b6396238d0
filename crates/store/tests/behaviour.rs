//! The store's behaviour, written once and run against both backends.
//!
//! Each behaviour is a plain async fn; the `behaviours!` macro turns it into a
//! `sqlite::<name>` and a `postgres::<name>` test, each on a database of its own (a
//! fresh SQLite file, a fresh PostgreSQL schema), so the tests run in parallel.

use chat_core::store::{NewAttachment, NewMessage, NewRoom, UserWrite};
use chat_core::{
    AttachmentId, MessageId, MessageKind, RoomId, RoomKind, Store, StoreError, UserId, UserProfile,
};
use chat_store::{connect, StoreOptions};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

async fn open(url: &str) -> Arc<dyn Store> {
    match connect(url, StoreOptions { pool_size: 8 }).await {
        Ok(store) => store,
        Err(e) => panic!("cannot open {}: {e}", chat_store::describe_url(url)),
    }
}

macro_rules! behaviours {
    (store: [$($name:ident),* $(,)?], url: [$($url_name:ident),* $(,)?] $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = chat_store::testing::sqlite_temp().await;
                    super::$name(super::open(&db.url).await).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $url_name() {
                    let db = chat_store::testing::sqlite_temp().await;
                    super::$url_name(&db.url).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = chat_store::testing::postgres_schema().await else {
                        return;
                    };
                    super::$name(super::open(&db.url).await).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $url_name() {
                    let Some(db) = chat_store::testing::postgres_schema().await else {
                        return;
                    };
                    super::$url_name(&db.url).await;
                }
            )*
        }
    };
}

behaviours! {
    store: [
        explicit_ids_then_allocated_ids_do_not_collide,
        usernames_default_to_user_id,
        username_and_identity_conflicts,
        upsert_refreshes_and_matches,
        concurrent_first_sign_ins_agree,
        a_sign_up_storm_commits_together_and_a_conflict_fails_alone,
        user_lookups,
        direct_and_project_rooms_are_unique,
        explicit_room_ids_then_allocated,
        room_listing_and_titles,
        members_added_and_removed_report_changes,
        messages_carry_attachments_in_order,
        binding_a_used_attachment_rolls_back,
        edit_changes_text,
        delete_leaves_tombstones_once,
        history_pages_newest_first,
        messages_between_has_inclusive_bounds,
        read_watermark_only_moves_forward,
        unread_rooms_counts_rooms_with_news,
        contacts_are_room_mates,
        concurrent_inserts_all_commit_in_order,
        a_bad_message_among_concurrent_ones_fails_alone,
    ],
    url: [
        data_survives_a_restart,
        migrate_is_idempotent,
        two_stores_share_one_database,
    ],
}

// ---------------------------------------------------------------- helpers

/// A profile with an explicit (legacy) id and a username.
fn with_id(id: i64, name: &str) -> UserProfile {
    UserProfile {
        id: Some(UserId(id)),
        ..named(name)
    }
}

fn named(name: &str) -> UserProfile {
    UserProfile {
        username: Some(name.to_owned()),
        ..Default::default()
    }
}

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    store
        .create_user(&named(name))
        .await
        .expect("create user")
        .id
}

async fn group(store: &Arc<dyn Store>, members: &[UserId]) -> RoomId {
    store
        .create_room(&NewRoom {
            id: None,
            kind: RoomKind::Group,
            title: "group".into(),
            has_business: false,
            created_by: members.first().copied(),
            members: members.to_vec(),
        })
        .await
        .expect("create room")
        .id
}

fn text(room: RoomId, author: UserId, body: &str) -> NewMessage {
    NewMessage {
        room_id: room,
        author_id: author,
        kind: MessageKind::Text,
        text: body.to_owned(),
        reply_to: None,
        attachments: Vec::new(),
        note: None,
    }
}

async fn send(store: &Arc<dyn Store>, room: RoomId, author: UserId, body: &str) -> MessageId {
    store
        .insert_message(&text(room, author, body))
        .await
        .expect("insert message")
        .id
}

/// The ids of a room's (up to 500) messages, oldest first.
async fn history_ids(store: &Arc<dyn Store>, room: RoomId) -> Vec<MessageId> {
    let mut page = store.history(room, None, 500).await.expect("history");
    page.reverse();
    page.into_iter().map(|m| m.id).collect()
}

async fn upload(store: &Arc<dyn Store>, by: UserId, name: &str) -> AttachmentId {
    store
        .insert_attachment(
            &NewAttachment {
                name: name.to_owned(),
                content_type: "image/png".into(),
                size: 42,
                blob_key: format!("{:0>64}", name.len()),
                uploader_id: by,
                token: chat_core::files::new_token(),
            },
            None,
        )
        .await
        .expect("insert attachment")
        .id
}

// ---------------------------------------------------------------- users

async fn explicit_ids_then_allocated_ids_do_not_collide(store: Arc<dyn Store>) {
    let legacy = store
        .create_user(&with_id(1000, "legacy"))
        .await
        .expect("explicit id");
    assert_eq!(legacy.id, UserId(1000));
    let fresh = store
        .create_user(&named("fresh"))
        .await
        .expect("allocated id");
    assert!(
        fresh.id > UserId(1000),
        "allocated {} after explicit 1000",
        fresh.id
    );

    // An explicit id below the counter must not move it back.
    let low = store
        .upsert_user(&with_id(7, "low"))
        .await
        .expect("explicit low id");
    assert_eq!(low.id, UserId(7));
    let next = store
        .create_user(&named("next"))
        .await
        .expect("allocated id");
    assert!(
        next.id > fresh.id,
        "allocated {} after {}",
        next.id,
        fresh.id
    );

    // Rooms and messages are unaffected and allocate normally.
    let room = group(&store, &[legacy.id, next.id]).await;
    let m = send(&store, room, next.id, "hi").await;
    assert_eq!(
        store.message(m).await.expect("load").map(|m| m.room_id),
        Some(room)
    );
}

async fn usernames_default_to_user_id(store: Arc<dyn Store>) {
    let anonymous = store
        .create_user(&UserProfile::default())
        .await
        .expect("user without a name");
    assert_eq!(anonymous.username, format!("user{}", anonymous.id));

    let explicit = store
        .upsert_user(&UserProfile {
            id: Some(UserId(4242)),
            email: Some("x@example.org".into()),
            ..Default::default()
        })
        .await
        .expect("explicit id without a name");
    assert_eq!(explicit.username, "user4242");
    assert_eq!(explicit.email, "x@example.org");

    // Someone already chose the name the next user would get: fall back, don't fail.
    let squatter = store
        .create_user(&with_id(5000, "user5001"))
        .await
        .expect("squatter");
    let next = store
        .create_user(&UserProfile {
            id: Some(UserId(5001)),
            ..Default::default()
        })
        .await
        .expect("user whose default name is taken");
    assert_ne!(next.username, squatter.username);
    assert!(next.username.starts_with("user5001"), "{}", next.username);
}

async fn username_and_identity_conflicts(store: Arc<dyn Store>) {
    let alice = store
        .create_user(&UserProfile {
            username: Some("alice".into()),
            external_id: Some("ext-a".into()),
            ..Default::default()
        })
        .await
        .expect("alice");
    let bob = user(&store, "bob").await;

    let dup_name = store.create_user(&named("alice")).await;
    assert!(
        matches!(dup_name, Err(StoreError::Conflict(_))),
        "{dup_name:?}"
    );

    let dup_id = store
        .create_user(&UserProfile {
            id: Some(alice.id),
            username: Some("alice2".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(dup_id, Err(StoreError::Conflict(_))), "{dup_id:?}");

    let dup_ext = store
        .create_user(&UserProfile {
            username: Some("carol".into()),
            external_id: Some("ext-a".into()),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(dup_ext, Err(StoreError::Conflict(_))),
        "{dup_ext:?}"
    );

    // Renaming bob to alice's name through an upsert is refused, and bob is unchanged.
    let rename = store
        .upsert_user(&UserProfile {
            id: Some(bob),
            username: Some("alice".into()),
            ..Default::default()
        })
        .await;
    assert!(matches!(rename, Err(StoreError::Conflict(_))), "{rename:?}");
    let bob_now = store.user(bob).await.expect("load").expect("bob");
    assert_eq!(bob_now.username, "bob");

    // Creating a new user through an upsert with a taken name is refused too.
    let new_with_taken = store.upsert_user(&with_id(777, "bob")).await;
    assert!(
        matches!(new_with_taken, Err(StoreError::Conflict(_))),
        "{new_with_taken:?}"
    );
    assert_eq!(store.user(UserId(777)).await.expect("load"), None);
}

async fn upsert_refreshes_and_matches(store: Arc<dyn Store>) {
    let first = store
        .upsert_user(&UserProfile {
            id: Some(UserId(7)),
            username: Some("seven".into()),
            email: Some("old@example.org".into()),
            first_name: Some("Sev".into()),
            ..Default::default()
        })
        .await
        .expect("create by id");
    assert_eq!(first.id, UserId(7));
    assert!(!first.is_admin);

    // Same claims again: nothing changes, not even updated_at.
    let again = store
        .upsert_user(&UserProfile {
            id: Some(UserId(7)),
            username: Some("seven".into()),
            email: Some("old@example.org".into()),
            ..Default::default()
        })
        .await
        .expect("same again");
    assert_eq!(again, first);

    tokio::time::sleep(Duration::from_millis(2)).await;
    let refreshed = store
        .upsert_user(&UserProfile {
            id: Some(UserId(7)),
            email: Some("new@example.org".into()),
            is_admin: Some(true),
            ..Default::default()
        })
        .await
        .expect("refresh");
    assert_eq!(refreshed.id, UserId(7));
    assert_eq!(
        refreshed.username, "seven",
        "a missing username keeps the old one"
    );
    assert_eq!(
        refreshed.first_name, "Sev",
        "a missing field keeps the old value"
    );
    assert_eq!(refreshed.email, "new@example.org");
    assert!(refreshed.is_admin);
    assert_eq!(refreshed.created_at, first.created_at);
    assert!(refreshed.updated_at > first.updated_at);
    assert_eq!(
        store.user(UserId(7)).await.expect("load"),
        Some(refreshed.clone())
    );

    // By external id: created once, then matched.
    let ext = store
        .upsert_user(&UserProfile {
            external_id: Some("crm-19".into()),
            display_name: Some("Nineteen".into()),
            ..Default::default()
        })
        .await
        .expect("create by external id");
    let ext_again = store
        .upsert_user(&UserProfile {
            external_id: Some("crm-19".into()),
            photo: Some("https://example.org/19.png".into()),
            ..Default::default()
        })
        .await
        .expect("match by external id");
    assert_eq!(ext_again.id, ext.id);
    assert_eq!(ext_again.display_name, "Nineteen");
    assert_eq!(ext_again.photo, "https://example.org/19.png");

    // By username: matched.
    let by_name = store
        .upsert_user(&UserProfile {
            username: Some("seven".into()),
            color: Some("#ff0000".into()),
            ..Default::default()
        })
        .await
        .expect("match by username");
    assert_eq!(by_name.id, UserId(7));
    assert_eq!(by_name.color, "#ff0000");
    assert_eq!(by_name.email, "new@example.org");

    // Renaming to a free name works.
    let renamed = store
        .upsert_user(&with_id(7, "seventh"))
        .await
        .expect("rename");
    assert_eq!(renamed.username, "seventh");
    assert_eq!(store.user_by_username("seven").await.expect("lookup"), None);
}

async fn concurrent_first_sign_ins_agree(store: Arc<dyn Store>) {
    // A client opening several sockets at once provisions the same new user from
    // each: all must succeed and agree, by id and by external id.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let by_id = store
                .upsert_user(&UserProfile {
                    id: Some(UserId(31)),
                    username: Some("thirty-one".into()),
                    email: Some(format!("{}@example.org", i % 2)),
                    ..Default::default()
                })
                .await?;
            let by_ext = store
                .upsert_user(&UserProfile {
                    external_id: Some("ext-31".into()),
                    ..Default::default()
                })
                .await?;
            Ok::<_, StoreError>((by_id.id, by_ext.id))
        }));
    }
    let mut ext_ids = HashSet::new();
    for t in tasks {
        let (id, ext) = t.await.expect("join").expect("concurrent sign-in");
        assert_eq!(id, UserId(31));
        ext_ids.insert(ext);
    }
    assert_eq!(ext_ids.len(), 1, "one user per external id");
    assert_eq!(store.list_users(100).await.expect("users").len(), 2);
}

async fn a_sign_up_storm_commits_together_and_a_conflict_fails_alone(store: Arc<dyn Store>) {
    // 300 first sign-ins at once (they share transactions), one of them with an id
    // whose username another user already holds: that one alone is refused.
    let taken = store.upsert_user(&with_id(5, "taken")).await.expect("seed");
    let mut tasks = Vec::new();
    for i in 0..300i64 {
        let store = store.clone();
        let name = if i == 150 {
            "taken".to_owned()
        } else {
            format!("storm{i}")
        };
        tasks.push(tokio::spawn(async move {
            store.put_user(&with_id(1000 + i, &name)).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let outcome = t.await.expect("join");
        if i == 150 {
            assert!(
                matches!(outcome, Err(StoreError::Conflict(_))),
                "the taken name conflicts: {outcome:?}"
            );
            continue;
        }
        let (user, write) = outcome.unwrap_or_else(|e| panic!("sign-up {i} failed: {e}"));
        assert_eq!(write, UserWrite::Created);
        assert_eq!(user.id, UserId(1000 + i as i64));
        assert_eq!(user.username, format!("storm{i}"));
    }
    assert_eq!(store.list_users(1000).await.expect("users").len(), 300);
    assert_eq!(store.user(UserId(1150)).await.expect("lookup"), None);
    // Signing in again with the same claims writes nothing; new claims change it.
    let (_, again) = store
        .put_user(&with_id(1001, "storm1"))
        .await
        .expect("again");
    assert_eq!(again, UserWrite::Unchanged);
    let (renamed, write) = store
        .put_user(&with_id(1001, "storm-one"))
        .await
        .expect("rename");
    assert_eq!(
        (renamed.username.as_str(), write),
        ("storm-one", UserWrite::Changed)
    );
    // Ids allocated later do not collide with the explicit ones.
    let fresh = store
        .upsert_user(&named("after-the-storm"))
        .await
        .expect("fresh");
    assert!(fresh.id.0 > 1299 && fresh.id != taken.id, "{:?}", fresh.id);
}

async fn user_lookups(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = store
        .create_user(&UserProfile {
            username: Some("b".into()),
            external_id: Some("ext-b".into()),
            ..Default::default()
        })
        .await
        .expect("b")
        .id;
    let c = user(&store, "c").await;

    let got = store
        .users(&[c, a, UserId(999_999), a])
        .await
        .expect("users");
    assert_eq!(got.iter().map(|u| u.id).collect::<Vec<_>>(), vec![a, c]);
    assert_eq!(store.users(&[]).await.expect("none"), vec![]);

    assert_eq!(
        store
            .user_by_username("b")
            .await
            .expect("by name")
            .map(|u| u.id),
        Some(b)
    );
    assert_eq!(store.user_by_username("zzz").await.expect("by name"), None);
    assert_eq!(
        store
            .user_by_external_id("ext-b")
            .await
            .expect("by ext")
            .map(|u| u.id),
        Some(b)
    );
    assert_eq!(
        store.user_by_external_id("nope").await.expect("by ext"),
        None
    );
    assert_eq!(store.user(UserId(999_999)).await.expect("missing"), None);

    let listed = store.list_users(2).await.expect("list");
    assert_eq!(listed.iter().map(|u| u.id).collect::<Vec<_>>(), vec![a, b]);
    assert_eq!(store.list_users(100).await.expect("list").len(), 3);
    assert_eq!(store.list_users(0).await.expect("list").len(), 0);
}

// ---------------------------------------------------------------- rooms

async fn direct_and_project_rooms_are_unique(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let kind = RoomKind::direct(b, a).expect("two users");
    let direct = store
        .create_room(&NewRoom {
            id: None,
            kind: kind.clone(),
            title: String::new(),
            has_business: false,
            created_by: Some(b),
            members: vec![b, a],
        })
        .await
        .expect("direct room");
    assert_eq!(direct.kind, RoomKind::Direct { low: a, high: b });
    assert_eq!(
        store.room_by_kind(&kind).await.expect("find"),
        Some(direct.clone())
    );

    let again = store
        .create_room(&NewRoom {
            id: None,
            kind: RoomKind::direct(a, b).expect("two users"),
            title: "other".into(),
            has_business: false,
            created_by: Some(a),
            members: vec![a, b],
        })
        .await;
    assert_eq!(again, Err(StoreError::DuplicateRoom(direct.id)));

    let project = store
        .create_room(&NewRoom {
            id: None,
            kind: RoomKind::Project { project_id: 77 },
            title: "Project 77".into(),
            has_business: true,
            created_by: None,
            members: vec![a],
        })
        .await
        .expect("project room");
    assert!(project.has_business);
    assert_eq!(project.created_by, None);
    let dup = store
        .create_room(&NewRoom {
            id: None,
            kind: RoomKind::Project { project_id: 77 },
            title: "again".into(),
            has_business: false,
            created_by: Some(b),
            members: vec![b],
        })
        .await;
    assert_eq!(dup, Err(StoreError::DuplicateRoom(project.id)));
    assert_eq!(
        store
            .room_by_kind(&RoomKind::Project { project_id: 77 })
            .await
            .expect("find"),
        Some(project.clone())
    );
    assert_eq!(
        store
            .room_by_kind(&RoomKind::Project { project_id: 78 })
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        store.room_by_kind(&RoomKind::Group).await.expect("find"),
        None
    );

    // The failed attempts left no trace.
    assert_eq!(store.all_rooms().await.expect("all").len(), 2);

    // Racing creators of the same pair: exactly one wins, the rest learn its id.
    let c = user(&store, "c").await;
    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .create_room(&NewRoom {
                    id: None,
                    kind: RoomKind::direct(a, c).expect("two users"),
                    title: String::new(),
                    has_business: false,
                    created_by: Some(a),
                    members: vec![a, c],
                })
                .await
        }));
    }
    let mut winners = Vec::new();
    let mut told = HashSet::new();
    for r in racers {
        match r.await.expect("join") {
            Ok(room) => winners.push(room.id),
            Err(StoreError::DuplicateRoom(id)) => {
                told.insert(id);
            }
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one creator wins");
    assert!(told.iter().all(|id| *id == winners[0]));
}

async fn explicit_room_ids_then_allocated(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let legacy = store
        .create_room(&NewRoom {
            id: Some(RoomId(500)),
            kind: RoomKind::Group,
            title: "imported".into(),
            has_business: false,
            created_by: Some(a),
            members: vec![a],
        })
        .await
        .expect("explicit room id");
    assert_eq!(legacy.id, RoomId(500));
    let next = group(&store, &[a]).await;
    assert!(next > RoomId(500), "allocated {next} after explicit 500");

    let clash = store
        .create_room(&NewRoom {
            id: Some(RoomId(500)),
            kind: RoomKind::Group,
            title: "again".into(),
            has_business: false,
            created_by: Some(a),
            members: vec![a],
        })
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");

    // A member who does not exist is refused and the room is not created.
    let ghost = store
        .create_room(&NewRoom {
            id: None,
            kind: RoomKind::Group,
            title: "ghosts".into(),
            has_business: false,
            created_by: Some(a),
            members: vec![a, UserId(123_456)],
        })
        .await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
    assert_eq!(store.all_rooms().await.expect("all").len(), 2);
}

async fn room_listing_and_titles(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let c = user(&store, "c").await;
    let r1 = group(&store, &[a, b]).await;
    let r2 = group(&store, &[b, c]).await;
    let r3 = group(&store, &[a, c]).await;

    let of_a: Vec<RoomId> = store
        .rooms_of(a)
        .await
        .expect("rooms")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(of_a, vec![r1, r3]);
    let all: Vec<RoomId> = store
        .all_rooms()
        .await
        .expect("all")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(all, vec![r1, r2, r3]);
    assert_eq!(store.rooms_of(UserId(999)).await.expect("rooms"), vec![]);

    let before = store.room(r2).await.expect("load").expect("room");
    tokio::time::sleep(Duration::from_millis(2)).await;
    let renamed = store.set_room_title(r2, "Renamed").await.expect("rename");
    assert_eq!(renamed.title, "Renamed");
    assert_eq!(renamed.created_at, before.created_at);
    assert!(renamed.updated_at > before.updated_at);
    assert_eq!(store.room(r2).await.expect("load"), Some(renamed));

    assert_eq!(
        store.set_room_title(RoomId(999), "x").await,
        Err(StoreError::NotFound("room"))
    );
    assert_eq!(store.room(RoomId(999)).await.expect("load"), None);
}

async fn members_added_and_removed_report_changes(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let c = user(&store, "c").await;
    let d = user(&store, "d").await;
    let room = group(&store, &[b, a]).await;

    let order: Vec<UserId> = store
        .members(room)
        .await
        .expect("members")
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(order, vec![b, a], "members by join order");

    let added = store.add_members(room, &[a, d, c, d]).await.expect("add");
    assert_eq!(added, vec![d, c], "only the new ones, in the order given");
    let order: Vec<UserId> = store
        .members(room)
        .await
        .expect("members")
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(order, vec![b, a, d, c]);
    assert_eq!(store.add_members(room, &[a, b]).await.expect("add"), vec![]);

    let member = store
        .member(room, d)
        .await
        .expect("member")
        .expect("d is a member");
    assert_eq!(
        (member.room_id, member.user_id, member.last_read),
        (room, d, None)
    );

    let removed = store
        .remove_members(room, &[c, UserId(999), a])
        .await
        .expect("remove");
    assert_eq!(removed, vec![c, a]);
    assert_eq!(
        store.remove_members(room, &[c]).await.expect("remove"),
        vec![]
    );
    assert_eq!(store.member(room, c).await.expect("member"), None);
    let order: Vec<UserId> = store
        .members(room)
        .await
        .expect("members")
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(order, vec![b, d]);

    // Rejoining puts the user at the end.
    assert_eq!(store.add_members(room, &[a]).await.expect("add"), vec![a]);
    let order: Vec<UserId> = store
        .members(room)
        .await
        .expect("members")
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(order, vec![b, d, a]);

    assert_eq!(
        store.add_members(RoomId(999), &[a]).await,
        Err(StoreError::NotFound("room"))
    );
    assert_eq!(
        store.remove_members(RoomId(999), &[a]).await,
        Err(StoreError::NotFound("room"))
    );
    let ghost = store.add_members(room, &[UserId(424_242)]).await;
    assert!(matches!(ghost, Err(StoreError::NotFound(_))), "{ghost:?}");
}

// ---------------------------------------------------------------- messages

async fn messages_carry_attachments_in_order(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let room = group(&store, &[a, b]).await;
    let first = upload(&store, a, "first.png").await;
    let second = upload(&store, a, "second-file.png").await;
    let third = upload(&store, a, "third.png").await;
    let stored = store
        .attachment(second)
        .await
        .expect("load")
        .expect("attachment");
    assert_eq!(stored.message_id, None);
    assert_eq!(stored.name, "second-file.png");
    assert_eq!(stored.content_type, "image/png");
    assert_eq!(stored.size, 42);
    assert_eq!(stored.uploader_id, a);

    let original = send(&store, room, b, "original").await;
    let sent = store
        .insert_message(&NewMessage {
            room_id: room,
            author_id: a,
            kind: MessageKind::Image,
            text: "look".into(),
            reply_to: Some(original),
            attachments: vec![third, first, second],
            note: None,
        })
        .await
        .expect("insert with attachments");
    assert_eq!(sent.kind, MessageKind::Image);
    assert_eq!(sent.reply_to, Some(original));
    assert_eq!(sent.edited_at, None);
    assert_eq!(sent.deleted_at, None);
    let ids: Vec<AttachmentId> = sent.attachments.iter().map(|x| x.id).collect();
    assert_eq!(ids, vec![third, first, second]);
    assert!(sent
        .attachments
        .iter()
        .all(|x| x.message_id == Some(sent.id)));

    assert_eq!(
        store.message(sent.id).await.expect("load"),
        Some(sent.clone())
    );
    assert_eq!(
        store.last_message(room).await.expect("last"),
        Some(sent.clone())
    );
    let page = store.history(room, None, 10).await.expect("history");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0], sent);
    assert!(page[1].attachments.is_empty());
    let window = store
        .messages_between(room, None, None, 10)
        .await
        .expect("between");
    assert_eq!(window[1], sent);
    assert_eq!(
        store
            .attachment(first)
            .await
            .expect("load")
            .and_then(|x| x.message_id),
        Some(sent.id)
    );

    assert_eq!(store.message(MessageId(999_999)).await.expect("load"), None);
    assert_eq!(
        store.attachment(AttachmentId(999_999)).await.expect("load"),
        None
    );
    let nowhere = store.insert_message(&text(RoomId(999), a, "x")).await;
    assert_eq!(nowhere, Err(StoreError::NotFound("room")));
}

async fn binding_a_used_attachment_rolls_back(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let room = group(&store, &[a]).await;
    let used = upload(&store, a, "used.png").await;
    let free = upload(&store, a, "free.png").await;
    let mut first = text(room, a, "first");
    first.attachments = vec![used];
    store.insert_message(&first).await.expect("first");

    let mut second = text(room, a, "second");
    second.attachments = vec![free, used];
    let refused = store.insert_message(&second).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    // Nothing of the refused message remains: not the message, not the binding.
    assert_eq!(
        store.history(room, None, 10).await.expect("history").len(),
        1
    );
    assert_eq!(
        store
            .attachment(free)
            .await
            .expect("load")
            .and_then(|x| x.message_id),
        None
    );

    let mut twice = text(room, a, "twice");
    twice.attachments = vec![free, free];
    let refused = store.insert_message(&twice).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
}

async fn edit_changes_text(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let room = group(&store, &[a]).await;
    let att = upload(&store, a, "keep.png").await;
    let mut msg = text(room, a, "draft");
    msg.attachments = vec![att];
    let sent = store.insert_message(&msg).await.expect("send");
    tokio::time::sleep(Duration::from_millis(2)).await;
    let edited = store.edit_message(sent.id, "final").await.expect("edit");
    assert_eq!(edited.text, "final");
    assert_eq!(edited.created_at, sent.created_at);
    assert!(edited.edited_at.is_some_and(|t| t > sent.created_at));
    assert!(edited.updated_at > sent.updated_at);
    assert_eq!(edited.attachments, sent.attachments.clone());
    assert_eq!(store.message(sent.id).await.expect("load"), Some(edited));
    assert_eq!(
        store.edit_message(MessageId(999_999), "x").await,
        Err(StoreError::NotFound("message"))
    );
}

async fn delete_leaves_tombstones_once(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let room = group(&store, &[a]).await;
    let other_room = group(&store, &[a]).await;
    let m1 = send(&store, room, a, "one").await;
    let m2 = send(&store, room, a, "two").await;
    let m3 = send(&store, room, a, "three").await;
    let elsewhere = send(&store, other_room, a, "elsewhere").await;

    let deleted = store
        .delete_messages(room, &[m3, m1, elsewhere, MessageId(999_999)])
        .await
        .expect("delete");
    assert_eq!(
        deleted,
        vec![m1, m3],
        "only this room's messages, each once"
    );
    assert_eq!(
        store.delete_messages(room, &[m1, m3]).await.expect("again"),
        vec![]
    );
    assert_eq!(
        store.delete_messages(room, &[m1, m2]).await.expect("mixed"),
        vec![m2]
    );

    let tomb = store
        .message(m1)
        .await
        .expect("load")
        .expect("tombstone stays");
    assert!(tomb.is_deleted());
    assert_eq!(tomb.text, "");
    let history = store.history(room, None, 10).await.expect("history");
    assert_eq!(history.len(), 3, "tombstones keep their place");
    assert!(history.iter().all(|m| m.is_deleted()));
    let kept = store.message(elsewhere).await.expect("load").expect("kept");
    assert!(!kept.is_deleted());
    assert_eq!(kept.text, "elsewhere");

    let edit = store.edit_message(m1, "revive").await;
    assert!(matches!(edit, Err(StoreError::Conflict(_))), "{edit:?}");
}

async fn history_pages_newest_first(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let room = group(&store, &[a]).await;
    let other = group(&store, &[a]).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(send(&store, room, a, &format!("m{i}")).await);
        if i % 5 == 0 {
            send(&store, other, a, "noise").await;
        }
    }
    let page1 = store.history(room, None, 10).await.expect("page 1");
    let expect1: Vec<MessageId> = ids.iter().rev().take(10).copied().collect();
    assert_eq!(page1.iter().map(|m| m.id).collect::<Vec<_>>(), expect1);
    let page2 = store
        .history(room, page1.last().map(|m| m.id), 10)
        .await
        .expect("page 2");
    let expect2: Vec<MessageId> = ids.iter().rev().skip(10).take(10).copied().collect();
    assert_eq!(page2.iter().map(|m| m.id).collect::<Vec<_>>(), expect2);
    let page3 = store
        .history(room, page2.last().map(|m| m.id), 10)
        .await
        .expect("page 3");
    assert_eq!(page3.len(), 5);
    assert_eq!(page3.last().map(|m| m.id), ids.first().copied());
    let page4 = store
        .history(room, page3.last().map(|m| m.id), 10)
        .await
        .expect("page 4");
    assert!(page4.is_empty());
    assert!(store
        .history(room, None, 0)
        .await
        .expect("limit 0")
        .is_empty());
    assert_eq!(
        store.last_message(room).await.expect("last").map(|m| m.id),
        ids.last().copied()
    );
    assert_eq!(store.last_message(RoomId(999)).await.expect("last"), None);
    assert!(store
        .history(RoomId(999), None, 10)
        .await
        .expect("none")
        .is_empty());
}

async fn messages_between_has_inclusive_bounds(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let room = group(&store, &[a]).await;
    let mut msgs = Vec::new();
    for i in 0..6 {
        let m = store
            .insert_message(&text(room, a, &format!("m{i}")))
            .await
            .expect("send");
        msgs.push(m);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let ids = |v: Vec<chat_core::Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
    let all: Vec<MessageId> = msgs.iter().map(|m| m.id).collect();

    let everything = store
        .messages_between(room, None, None, 100)
        .await
        .expect("all");
    assert_eq!(ids(everything), all, "oldest first");
    let from = msgs[1].created_at;
    let to = msgs[4].created_at;
    let window = store
        .messages_between(room, Some(from), Some(to), 100)
        .await
        .expect("window");
    assert_eq!(ids(window), all[1..=4].to_vec(), "both bounds inclusive");
    let open_start = store
        .messages_between(room, None, Some(msgs[2].created_at), 100)
        .await
        .expect("open start");
    assert_eq!(ids(open_start), all[..=2].to_vec());
    let open_end = store
        .messages_between(room, Some(msgs[3].created_at), None, 100)
        .await
        .expect("open end");
    assert_eq!(ids(open_end), all[3..].to_vec());
    let limited = store
        .messages_between(room, Some(from), None, 2)
        .await
        .expect("limited");
    assert_eq!(ids(limited), all[1..=2].to_vec());
    let empty = store
        .messages_between(room, Some(to), Some(from), 100)
        .await
        .expect("empty");
    assert!(empty.is_empty());
}

// ---------------------------------------------------------------- read state

async fn read_watermark_only_moves_forward(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let outsider = user(&store, "outsider").await;
    let room = group(&store, &[a, b]).await;
    let m1 = send(&store, room, a, "1").await;
    let m2 = send(&store, room, b, "2").await;
    let m3 = send(&store, room, a, "3").await;
    let m4 = send(&store, room, a, "4").await;
    let m5 = send(&store, room, a, "5").await;

    assert_eq!(
        store.advance_read(room, b, m3).await.expect("first"),
        Some(None)
    );
    assert_eq!(
        store
            .member(room, b)
            .await
            .expect("member")
            .and_then(|m| m.last_read),
        Some(m3)
    );
    assert_eq!(store.advance_read(room, b, m3).await.expect("same"), None);
    assert_eq!(store.advance_read(room, b, m1).await.expect("back"), None);
    assert_eq!(
        store
            .member(room, b)
            .await
            .expect("member")
            .and_then(|m| m.last_read),
        Some(m3)
    );
    assert_eq!(
        store.advance_read(room, b, m5).await.expect("forward"),
        Some(Some(m3))
    );

    assert_eq!(
        store.advance_read(room, outsider, m5).await,
        Err(StoreError::NotFound("member"))
    );

    // What b's reads moved past: others' live messages in (after, up_to].
    store.delete_messages(room, &[m4]).await.expect("delete");
    let first = store
        .messages_read_between(room, b, None, m3)
        .await
        .expect("first read");
    assert_eq!(first, vec![(m1, a), (m3, a)], "b's own m2 is not included");
    let second = store
        .messages_read_between(room, b, Some(m3), m5)
        .await
        .expect("second read");
    assert_eq!(second, vec![(m5, a)], "deleted m4 is not included");
    let by_a = store
        .messages_read_between(room, a, None, m5)
        .await
        .expect("a's read");
    assert_eq!(by_a, vec![(m2, b)]);

    // Concurrent advances: the watermark ends at the highest, and exactly one
    // advance reports each step it made.
    let c = user(&store, "c").await;
    store.add_members(room, &[c]).await.expect("add c");
    let targets = [m1, m5, m2, m3, m5, m1];
    let mut tasks = Vec::new();
    for t in targets {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.advance_read(room, c, t).await },
        ));
    }
    let mut moved = Vec::new();
    for t in tasks {
        if let Some(prev) = t.await.expect("join").expect("advance") {
            moved.push(prev);
        }
    }
    assert!(!moved.is_empty());
    assert_eq!(moved.iter().filter(|p| p.is_none()).count(), 1, "{moved:?}");
    assert_eq!(
        store
            .member(room, c)
            .await
            .expect("member")
            .and_then(|m| m.last_read),
        Some(m5)
    );
}

async fn unread_rooms_counts_rooms_with_news(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let c = user(&store, "c").await;
    let r1 = group(&store, &[a, b]).await;
    let r2 = group(&store, &[a, c]).await;
    let r3 = group(&store, &[a, b, c]).await;
    let outside = group(&store, &[b, c]).await;
    assert_eq!(store.unread_rooms(a).await.expect("count"), 0);

    send(&store, r1, a, "mine").await;
    assert_eq!(
        store.unread_rooms(a).await.expect("count"),
        0,
        "own messages are read"
    );
    let b1 = send(&store, r1, b, "hello").await;
    let b2 = send(&store, r1, b, "hello again").await;
    let c2 = send(&store, r2, c, "hi").await;
    send(&store, outside, b, "not a's room").await;
    assert_eq!(store.unread_rooms(a).await.expect("count"), 2);
    assert_eq!(
        store.unread_count(r1, a, None).await.expect("count"),
        chat_core::store::Unread {
            count: 2,
            newest: Some(b2)
        },
        "how many, and the newest"
    );
    assert_eq!(
        store
            .unread_count(r1, a, Some(b1))
            .await
            .expect("count")
            .count,
        1
    );
    assert_eq!(
        store.unread_count(r1, b, None).await.expect("count").count,
        1,
        "a's only"
    );
    assert_eq!(
        store.unread_count(r2, a, None).await.expect("count").count,
        1
    );

    store.advance_read(r1, a, b1).await.expect("read");
    assert_eq!(
        store.unread_rooms(a).await.expect("count"),
        2,
        "r1 still has one unread"
    );
    let last = store
        .last_message(r1)
        .await
        .expect("last")
        .expect("message")
        .id;
    store.advance_read(r1, a, last).await.expect("read");
    assert_eq!(store.unread_rooms(a).await.expect("count"), 1);

    store.delete_messages(r2, &[c2]).await.expect("delete");
    assert_eq!(
        store.unread_count(r2, a, None).await.expect("count"),
        chat_core::store::Unread::default(),
        "none: no newest either"
    );
    assert_eq!(
        store.unread_rooms(a).await.expect("count"),
        0,
        "deleted messages are not news"
    );

    send(&store, r3, c, "news").await;
    assert_eq!(store.unread_rooms(a).await.expect("count"), 1);
    assert_eq!(
        store.unread_rooms(b).await.expect("count"),
        2,
        "r1 (a wrote) and r3 (c wrote)"
    );
    assert_eq!(store.unread_rooms(UserId(999)).await.expect("count"), 0);
}

async fn contacts_are_room_mates(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let c = user(&store, "c").await;
    let d = user(&store, "d").await;
    let loner = user(&store, "loner").await;
    group(&store, &[a, c]).await;
    group(&store, &[a, b, c]).await;
    group(&store, &[b, d]).await;
    group(&store, &[loner]).await;
    assert_eq!(store.contacts(a).await.expect("contacts"), vec![b, c]);
    assert_eq!(store.contacts(b).await.expect("contacts"), vec![a, c, d]);
    assert_eq!(store.contacts(d).await.expect("contacts"), vec![b]);
    assert_eq!(store.contacts(loner).await.expect("contacts"), vec![]);
}

// ---------------------------------------------------------------- load

async fn concurrent_inserts_all_commit_in_order(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let rooms = [
        group(&store, &[a, b]).await,
        group(&store, &[a, b]).await,
        group(&store, &[a, b]).await,
        group(&store, &[a, b]).await,
    ];
    // 200 concurrent sends, while readers page through the same rooms.
    let mut sends = Vec::new();
    for i in 0..200usize {
        let store = store.clone();
        let room = rooms[i % rooms.len()];
        let author = if i % 2 == 0 { a } else { b };
        sends.push(tokio::spawn(async move {
            store
                .insert_message(&text(room, author, &format!("msg {i}")))
                .await
        }));
    }
    let mut reads = Vec::new();
    for room in rooms {
        let store = store.clone();
        reads.push(tokio::spawn(async move {
            for _ in 0..20 {
                let page = store.history(room, None, 50).await?;
                // Whatever a reader sees is a prefix of the room's ids, newest first.
                if page.windows(2).any(|w| w[0].id <= w[1].id) {
                    panic!("history out of order");
                }
                tokio::task::yield_now().await;
            }
            Ok::<_, StoreError>(())
        }));
    }
    let mut per_room: BTreeMap<RoomId, Vec<MessageId>> = BTreeMap::new();
    let mut all = HashSet::new();
    for s in sends {
        let msg = s
            .await
            .expect("join")
            .unwrap_or_else(|e| panic!("a concurrent insert failed: {e}"));
        assert!(all.insert(msg.id), "duplicate id {}", msg.id);
        per_room.entry(msg.room_id).or_default().push(msg.id);
    }
    for r in reads {
        r.await.expect("join").expect("concurrent read");
    }
    assert_eq!(all.len(), 200);
    for (room, mut ids) in per_room {
        ids.sort();
        let history = history_ids(&store, room).await;
        assert_eq!(
            history, ids,
            "room {room} holds exactly its messages, by id"
        );
        let stored = store
            .messages_between(room, None, None, 500)
            .await
            .expect("between");
        assert!(
            stored
                .windows(2)
                .all(|w| w[0].created_at <= w[1].created_at),
            "ids and creation times agree in room {room}"
        );
    }
}

/// Concurrent plain messages are committed in groups; a message that cannot be
/// stored (no such room, no such author) must fail on its own with its own error,
/// while every message sent beside it is stored whole (reply, kind and text intact).
async fn a_bad_message_among_concurrent_ones_fails_alone(store: Arc<dyn Store>) {
    let a = user(&store, "a").await;
    let b = user(&store, "b").await;
    let room = group(&store, &[a, b]).await;
    let first = send(&store, room, a, "first").await;
    let mut sends = Vec::new();
    for i in 0..300usize {
        let store = store.clone();
        let mut msg = text(room, if i % 2 == 0 { a } else { b }, &format!("msg {i}"));
        msg.reply_to = Some(first);
        msg.kind = if i % 3 == 0 {
            MessageKind::Image
        } else {
            MessageKind::Text
        };
        match i % 50 {
            7 => msg.room_id = RoomId(i64::MAX - i as i64),
            31 => msg.author_id = UserId(i64::MAX - i as i64),
            _ => {}
        }
        sends.push(tokio::spawn(async move {
            let outcome = store.insert_message(&msg).await;
            (i, msg, outcome)
        }));
    }
    let mut stored = Vec::new();
    for s in sends {
        let (i, sent, outcome) = s.await.expect("join");
        match (i % 50, outcome) {
            (7, Err(StoreError::NotFound(what))) => assert_eq!(what, "room"),
            (31, Err(StoreError::NotFound(_))) => {}
            (7 | 31, other) => panic!("message {i} should have been refused, got {other:?}"),
            (_, Ok(m)) => {
                assert_eq!(
                    (m.room_id, m.author_id, m.kind, &m.text, m.reply_to),
                    (room, sent.author_id, sent.kind, &sent.text, Some(first)),
                    "message {i} stored as sent"
                );
                stored.push(m.id);
            }
            (_, Err(e)) => panic!("message {i} failed beside a bad one: {e}"),
        }
    }
    assert_eq!(stored.len(), 300 - 12);
    stored.sort();
    let history: Vec<MessageId> = history_ids(&store, room)
        .await
        .into_iter()
        .filter(|id| *id != first)
        .collect();
    assert_eq!(history, stored, "exactly the good messages are stored");
}

// ---------------------------------------------------------------- lifecycle

async fn data_survives_a_restart(url: &str) {
    let (alice, room, msg) = {
        let store = open(url).await;
        let alice = user(&store, "alice").await;
        let bob = user(&store, "bob").await;
        let room = group(&store, &[alice, bob]).await;
        let msg = store
            .insert_message(&text(room, alice, "persisted"))
            .await
            .expect("send");
        store.advance_read(room, bob, msg.id).await.expect("read");
        (alice, room, msg)
    };
    // The first store is gone; a new one on the same URL sees everything.
    let store = open(url).await;
    assert_eq!(
        store
            .user_by_username("alice")
            .await
            .expect("user")
            .map(|u| u.id),
        Some(alice)
    );
    assert_eq!(
        store.message(msg.id).await.expect("message"),
        Some(msg.clone())
    );
    assert_eq!(store.members(room).await.expect("members").len(), 2);
    assert_eq!(
        store.history(room, None, 10).await.expect("history"),
        vec![msg]
    );
    let fresh = user(&store, "after-restart").await;
    assert!(fresh > alice);
}

async fn migrate_is_idempotent(url: &str) {
    chat_store::migrate(url).await.expect("first migration");
    chat_store::migrate(url).await.expect("second migration");
    let store = open(url).await;
    let a = user(&store, "a").await;
    assert_eq!(
        store.user(a).await.expect("load").map(|u| u.username),
        Some("a".into())
    );
}

async fn two_stores_share_one_database(url: &str) {
    // Two stores on one database (two nodes, or a gateway and an admin tool): their
    // writes interleave without either failing, on SQLite as well.
    let first = open(url).await;
    let second = open(url).await;
    let a = user(&first, "a").await;
    let room = group(&first, &[a]).await;
    let mut tasks = Vec::new();
    for i in 0..60usize {
        let store = if i % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tasks.push(tokio::spawn(async move {
            // A read-then-write transaction and a plain insert, from both stores.
            store
                .upsert_user(&UserProfile {
                    username: Some(format!("u{i}")),
                    ..Default::default()
                })
                .await?;
            store.insert_message(&text(room, a, &format!("m{i}"))).await
        }));
    }
    for t in tasks {
        t.await
            .expect("join")
            .unwrap_or_else(|e| panic!("a write failed with two stores open: {e}"));
    }
    assert_eq!(
        second
            .history(room, None, 100)
            .await
            .expect("history")
            .len(),
        60
    );
    assert_eq!(first.list_users(100).await.expect("users").len(), 61);
}

// ---------------------------------------------------------------- backend-specific

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_in_memory_works() {
    let store = open("sqlite::memory:").await;
    let a = user(&store, "a").await;
    let room = group(&store, &[a]).await;
    send(&store, room, a, "in memory").await;
    assert_eq!(
        store.history(room, None, 5).await.expect("history").len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_urls_are_refused() {
    let e = match connect("mysql://localhost/chat", StoreOptions::default()).await {
        Ok(_) => panic!("mysql accepted"),
        Err(e) => e,
    };
    assert!(matches!(e, chat_store::StoreSetupError::BadUrl(_)), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_use_wal() {
    let db = chat_store::testing::sqlite_temp().await;
    let path = db
        .url
        .strip_prefix("sqlite://")
        .expect("sqlite_temp gives a sqlite:// URL")
        .to_owned();
    let store = open(&db.url).await;
    user(&store, "a").await;
    // With WAL, committed writes land in the `-wal` file next to the database.
    assert!(
        std::path::Path::new(&format!("{path}-wal")).exists(),
        "no WAL file next to {path}"
    );
}

/// Callers' tests often use tokio's default single-threaded test runtime: start-up
/// (migrations on a blocking thread) and queries must work there too.
#[tokio::test]
async fn current_thread_runtime_sqlite() {
    let db = chat_store::testing::sqlite_temp().await;
    data_survives_a_restart(&db.url).await;
}

#[tokio::test]
async fn current_thread_runtime_postgres() {
    let Some(db) = chat_store::testing::postgres_schema().await else {
        return;
    };
    data_survives_a_restart(&db.url).await;
}
