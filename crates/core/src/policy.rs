//! Authorization rules, as pure functions of the caller and the room. The service asks
//! these before it commits anything; dialects never decide who may do what.

use crate::auth::Principal;
use crate::error::ChatError;
use crate::model::{Message, RoomKind, RoomView};

fn deny(msg: &str) -> ChatError {
    ChatError::forbidden(msg)
}

/// Members pass, and anyone `privileged`; the room is hidden ("not found") from
/// everyone else, who may not know it exists.
fn member_or(p: &Principal, room: &RoomView, privileged: bool) -> Result<(), ChatError> {
    if privileged || room.is_member(p.id()) {
        Ok(())
    } else {
        Err(ChatError::not_found("chat"))
    }
}

/// May see the room and its history: members, and moderators (admins on the admin
/// endpoint) for any room.
pub fn can_view(p: &Principal, room: &RoomView) -> Result<(), ChatError> {
    member_or(p, room, p.moderator)
}

/// May post: members; moderators only in rooms with `has_business`.
pub fn can_post(p: &Principal, room: &RoomView) -> Result<(), ChatError> {
    if p.moderator && !room.room.has_business {
        return Err(deny("admins may write only in chats with a business plan"));
    }
    member_or(p, room, p.moderator)
}

/// May edit: only the author, in a room where they may post, and not a tombstone.
pub fn can_edit(p: &Principal, room: &RoomView, msg: &Message) -> Result<(), ChatError> {
    can_post(p, room)?;
    if msg.author_id != p.id() {
        return Err(deny("only the author may edit a message"));
    }
    if msg.is_deleted() {
        return Err(ChatError::invalid(
            "message",
            "the message has been deleted",
        ));
    }
    Ok(())
}

/// May delete: the author, or an admin (moderators: any message of a business room).
pub fn can_delete(p: &Principal, room: &RoomView, msg: &Message) -> Result<(), ChatError> {
    can_post(p, room)?;
    if msg.author_id == p.id() || p.is_admin {
        Ok(())
    } else {
        Err(deny("only the author or an admin may delete a message"))
    }
}

/// May rename the room: members and admins.
pub fn can_update_room(p: &Principal, room: &RoomView) -> Result<(), ChatError> {
    member_or(p, room, p.is_admin)
}

/// What every change of members starts with: never in a direct room; admins may;
/// anyone else must be a member and pass `rule`.
fn change_members(
    p: &Principal,
    room: &RoomView,
    rule: impl FnOnce() -> Result<(), ChatError>,
) -> Result<(), ChatError> {
    if let RoomKind::Direct { .. } = room.room.kind {
        return Err(deny("a direct chat always has exactly its two users"));
    }
    if p.is_admin {
        return Ok(());
    }
    member_or(p, room, false)?;
    rule()
}

/// May add members: any member of a group room, the admins of any non-direct room.
pub fn can_add_members(p: &Principal, room: &RoomView) -> Result<(), ChatError> {
    change_members(p, room, || match room.room.kind {
        RoomKind::Group => Ok(()),
        _ => Err(deny(
            "only an admin may change the members of a project chat",
        )),
    })
}

/// May remove `targets`: anyone may remove themselves from a non-direct room; removing
/// others takes the room's creator or an admin.
pub fn can_remove_members(
    p: &Principal,
    room: &RoomView,
    targets: &[crate::UserId],
) -> Result<(), ChatError> {
    change_members(p, room, || {
        if targets.iter().all(|t| *t == p.id()) || room.room.created_by == Some(p.id()) {
            Ok(())
        } else {
            Err(deny(
                "only the chat's creator or an admin may remove other users",
            ))
        }
    })
}

/// May delete the room with its messages: admins only (any kind of room).
pub fn can_delete_room(p: &Principal) -> Result<(), ChatError> {
    if p.is_admin {
        Ok(())
    } else {
        Err(deny("only an admin may delete a chat"))
    }
}

/// Admin-only operations (REST user and room management).
pub fn require_admin(p: &Principal) -> Result<(), ChatError> {
    if p.is_admin {
        Ok(())
    } else {
        Err(deny("this requires an admin"))
    }
}

/// May create or update this user record: admins any; anyone else only their own (the
/// same id, and the same external id when both are known).
pub fn can_write_profile(p: &Principal, profile: &crate::UserProfile) -> Result<(), ChatError> {
    if p.is_admin {
        return Ok(());
    }
    if profile.id.is_some_and(|id| id != p.id()) {
        return Err(deny(&format!(
            "user.id must be your own id ({}); only an admin may create other users",
            p.id()
        )));
    }
    // The external id links a user to the legacy backend's: only an admin sets or
    // changes it, so a user cannot take over another identity's link.
    if let Some(given) = &profile.external_id {
        if p.user.external_id.as_ref() != Some(given) {
            return Err(deny(
                "user.external_id can only be set or changed by an admin; leave it out or give your own",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{MessageKind, Room, User};
    use crate::{MessageId, RoomId, UserId, UserProfile};
    use Decision::*;

    /// What a rule answered, by kind of error.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Decision {
        Allow,
        /// The room is hidden from the caller ("not found").
        Hidden,
        Forbidden,
        Invalid,
    }

    fn decision(r: Result<(), ChatError>) -> Decision {
        match r {
            Ok(()) => Allow,
            Err(ChatError::NotFound { .. }) => Hidden,
            Err(ChatError::Forbidden(_)) => Forbidden,
            Err(ChatError::Invalid { .. }) => Invalid,
            Err(e) => panic!("a rule answered {e:?}"),
        }
    }

    /// Who calls, always as user 1.
    #[derive(Clone, Copy, Debug)]
    enum Caller {
        /// A member of the room.
        Member,
        /// The member who created the room.
        Creator,
        /// Not a member.
        Outsider,
        /// An admin who is not a member.
        Admin,
        /// An admin who is a member.
        AdminMember,
        /// An admin on an admin endpoint, not a member.
        Moderator,
    }

    const ME: UserId = UserId(1);
    const OTHER: UserId = UserId(2);

    impl Caller {
        fn principal(self) -> Principal {
            let (is_admin, moderator) = match self {
                Caller::Member | Caller::Creator | Caller::Outsider => (false, false),
                Caller::Admin | Caller::AdminMember => (true, false),
                Caller::Moderator => (true, true),
            };
            Principal {
                user: User::placeholder(ME),
                is_admin,
                moderator,
                expires_at: None,
            }
        }

        fn is_member(self) -> bool {
            matches!(self, Caller::Member | Caller::Creator | Caller::AdminMember)
        }
    }

    /// The kinds of room, in the order of every table's columns.
    #[derive(Clone, Copy, Debug)]
    enum Shape {
        Direct,
        Group,
        /// A group with a business plan.
        Business,
        Project,
    }
    const SHAPES: [Shape; 4] = [Shape::Direct, Shape::Group, Shape::Business, Shape::Project];

    /// A room of `shape` whose members are user 2 and, when `caller` is a member, the
    /// caller (else user 3).
    fn room(caller: Caller, shape: Shape) -> RoomView {
        let first = if caller.is_member() { ME } else { UserId(3) };
        let kind = match shape {
            Shape::Direct => RoomKind::direct(first, OTHER).expect("two users"),
            Shape::Group | Shape::Business => RoomKind::Group,
            Shape::Project => RoomKind::Project { project_id: 7 },
        };
        let creator = match caller {
            Caller::Creator => ME,
            _ => OTHER,
        };
        let now = chrono::Utc::now();
        RoomView {
            room: Room {
                id: RoomId(10),
                kind,
                title: String::new(),
                has_business: matches!(shape, Shape::Business),
                created_by: Some(creator),
                created_at: now,
                updated_at: now,
            },
            members: vec![User::placeholder(first), User::placeholder(OTHER)],
            watermarks: Vec::new(),
        }
    }

    fn message(author: UserId, deleted: bool) -> Message {
        let now = chrono::Utc::now();
        Message {
            id: MessageId(100),
            room_id: RoomId(10),
            author_id: author,
            kind: MessageKind::Text,
            text: "hi".into(),
            reply_to: None,
            created_at: now,
            updated_at: now,
            edited_at: None,
            deleted_at: deleted.then_some(now),
            attachments: Vec::new(),
        }
    }

    /// Check `rule` over every caller of `table` and every room shape (columns:
    /// direct, group, business group, project).
    fn check(
        name: &str,
        table: &[(Caller, [Decision; 4])],
        rule: impl Fn(&Principal, &RoomView) -> Result<(), ChatError>,
    ) {
        for (caller, expected) in table {
            for (shape, want) in SHAPES.iter().zip(expected) {
                let got = decision(rule(&caller.principal(), &room(*caller, *shape)));
                assert_eq!(got, *want, "{name}: {caller:?} in a {shape:?} room");
            }
        }
    }

    #[test]
    fn who_may_view() {
        check(
            "can_view",
            &[
                (Caller::Member, [Allow; 4]),
                (Caller::Outsider, [Hidden; 4]),
                (Caller::Admin, [Hidden; 4]),
                (Caller::AdminMember, [Allow; 4]),
                (Caller::Moderator, [Allow; 4]),
            ],
            can_view,
        );
    }

    #[test]
    fn who_may_post() {
        check(
            "can_post",
            &[
                (Caller::Member, [Allow; 4]),
                (Caller::Outsider, [Hidden; 4]),
                (Caller::Admin, [Hidden; 4]),
                (Caller::AdminMember, [Allow; 4]),
                // Moderators write only where the room has a business plan.
                (Caller::Moderator, [Forbidden, Forbidden, Allow, Forbidden]),
            ],
            can_post,
        );
    }

    #[test]
    fn who_may_edit_which_message() {
        // (caller, author of the message, deleted) → by room shape
        let table = [
            (Caller::Member, ME, false, [Allow; 4]),
            (Caller::Member, OTHER, false, [Forbidden; 4]),
            (Caller::Member, ME, true, [Invalid; 4]),
            (Caller::Outsider, ME, false, [Hidden; 4]),
            (Caller::AdminMember, OTHER, false, [Forbidden; 4]),
            (
                Caller::Moderator,
                ME,
                false,
                [Forbidden, Forbidden, Allow, Forbidden],
            ),
            (Caller::Moderator, OTHER, false, [Forbidden; 4]),
        ];
        for (caller, author, deleted, expected) in table {
            let msg = message(author, deleted);
            check(
                &format!("can_edit (author {author}, deleted {deleted})"),
                &[(caller, expected)],
                |p, r| can_edit(p, r, &msg),
            );
        }
    }

    #[test]
    fn who_may_delete_which_message() {
        // (caller, author of the message, deleted) → by room shape
        let table = [
            (Caller::Member, ME, false, [Allow; 4]),
            (Caller::Member, ME, true, [Allow; 4]),
            (Caller::Member, OTHER, false, [Forbidden; 4]),
            (Caller::Outsider, ME, false, [Hidden; 4]),
            (Caller::AdminMember, OTHER, false, [Allow; 4]),
            (
                Caller::Moderator,
                OTHER,
                false,
                [Forbidden, Forbidden, Allow, Forbidden],
            ),
        ];
        for (caller, author, deleted, expected) in table {
            let msg = message(author, deleted);
            check(
                &format!("can_delete (author {author}, deleted {deleted})"),
                &[(caller, expected)],
                |p, r| can_delete(p, r, &msg),
            );
        }
    }

    #[test]
    fn who_may_rename() {
        check(
            "can_update_room",
            &[
                (Caller::Member, [Allow; 4]),
                (Caller::Outsider, [Hidden; 4]),
                (Caller::Admin, [Allow; 4]),
                (Caller::AdminMember, [Allow; 4]),
                (Caller::Moderator, [Allow; 4]),
            ],
            can_update_room,
        );
    }

    #[test]
    fn who_may_add_members() {
        check(
            "can_add_members",
            &[
                (Caller::Member, [Forbidden, Allow, Allow, Forbidden]),
                (Caller::Creator, [Forbidden, Allow, Allow, Forbidden]),
                (Caller::Outsider, [Forbidden, Hidden, Hidden, Hidden]),
                (Caller::Admin, [Forbidden, Allow, Allow, Allow]),
                (Caller::AdminMember, [Forbidden, Allow, Allow, Allow]),
                (Caller::Moderator, [Forbidden, Allow, Allow, Allow]),
            ],
            can_add_members,
        );
    }

    #[test]
    fn who_may_remove_whom() {
        // (caller, the users removed) → by room shape
        let table = [
            (Caller::Member, vec![ME], [Forbidden, Allow, Allow, Allow]),
            (Caller::Member, vec![OTHER], [Forbidden; 4]),
            (Caller::Member, vec![ME, OTHER], [Forbidden; 4]),
            (
                Caller::Creator,
                vec![OTHER],
                [Forbidden, Allow, Allow, Allow],
            ),
            (
                Caller::Outsider,
                vec![ME],
                [Forbidden, Hidden, Hidden, Hidden],
            ),
            (Caller::Admin, vec![OTHER], [Forbidden, Allow, Allow, Allow]),
            (
                Caller::Moderator,
                vec![OTHER],
                [Forbidden, Allow, Allow, Allow],
            ),
        ];
        for (caller, targets, expected) in table {
            check(
                &format!("can_remove_members ({targets:?})"),
                &[(caller, expected)],
                |p, r| can_remove_members(p, r, &targets),
            );
        }
    }

    #[test]
    fn who_is_an_admin() {
        // The room does not matter: every column is the same.
        check(
            "require_admin",
            &[
                (Caller::Member, [Forbidden; 4]),
                (Caller::Outsider, [Forbidden; 4]),
                (Caller::Admin, [Allow; 4]),
                (Caller::AdminMember, [Allow; 4]),
                (Caller::Moderator, [Allow; 4]),
            ],
            |p, _| require_admin(p),
        );
    }

    fn principal(id: i64, external: Option<&str>, admin: bool) -> Principal {
        let mut user = User::placeholder(UserId(id));
        user.external_id = external.map(str::to_string);
        Principal {
            user,
            is_admin: admin,
            moderator: false,
            expires_at: None,
        }
    }

    #[test]
    fn who_may_write_which_profile() {
        let own = |ext: Option<&str>| UserProfile {
            external_id: ext.map(str::to_string),
            ..Default::default()
        };
        let other = UserProfile {
            id: Some(UserId(2)),
            ..Default::default()
        };
        // (caller, profile, decision)
        let cases = [
            (principal(1, None, false), own(None), Allow),
            (principal(1, None, false), other.clone(), Forbidden),
            (principal(1, None, true), other.clone(), Allow),
            // external ids: only an admin sets or changes one
            (principal(1, None, false), own(Some("ceo")), Forbidden),
            (principal(1, Some("me"), false), own(Some("me")), Allow),
            (principal(1, Some("me"), false), own(Some("ceo")), Forbidden),
            (principal(1, None, true), own(Some("ceo")), Allow),
        ];
        for (i, (p, profile, want)) in cases.iter().enumerate() {
            assert_eq!(decision(can_write_profile(p, profile)), *want, "case {i}");
        }
    }
}
