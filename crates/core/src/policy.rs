//! Authorization rules, as pure functions of the caller and the room. The service asks
//! these before it commits anything; dialects never decide who may do what.

use crate::auth::Principal;
use crate::error::ChatError;
use crate::model::{Message, RoomKind, RoomView};

fn deny(msg: &str) -> ChatError {
    ChatError::forbidden(msg)
}

/// May see the room and its history: members, and moderators (admins on the admin
/// endpoint) for any room.
pub fn can_view(p: &Principal, room: &RoomView) -> Result<(), ChatError> {
    if room.is_member(p.id()) || p.moderator {
        Ok(())
    } else {
        Err(ChatError::not_found("chat"))
    }
}

/// May post: members; moderators only in rooms with `has_business`.
pub fn can_post(p: &Principal, room: &RoomView) -> Result<(), ChatError> {
    if p.moderator {
        return if room.room.has_business {
            Ok(())
        } else {
            Err(deny("admins may write only in chats with a business plan"))
        };
    }
    if room.is_member(p.id()) {
        Ok(())
    } else {
        Err(ChatError::not_found("chat"))
    }
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
    if room.is_member(p.id()) || p.is_admin {
        Ok(())
    } else {
        Err(ChatError::not_found("chat"))
    }
}

/// May add members: any member of a group room, the admins of any non-direct room.
pub fn can_add_members(p: &Principal, room: &RoomView) -> Result<(), ChatError> {
    if let RoomKind::Direct { .. } = room.room.kind {
        return Err(deny("a direct chat always has exactly its two users"));
    }
    if p.is_admin {
        return Ok(());
    }
    if !room.is_member(p.id()) {
        return Err(ChatError::not_found("chat"));
    }
    match room.room.kind {
        RoomKind::Group => Ok(()),
        _ => Err(deny(
            "only an admin may change the members of a project chat",
        )),
    }
}

/// May remove `targets`: anyone may remove themselves from a non-direct room; removing
/// others takes the room's creator or an admin.
pub fn can_remove_members(
    p: &Principal,
    room: &RoomView,
    targets: &[crate::UserId],
) -> Result<(), ChatError> {
    if let RoomKind::Direct { .. } = room.room.kind {
        return Err(deny("a direct chat always has exactly its two users"));
    }
    if p.is_admin {
        return Ok(());
    }
    if !room.is_member(p.id()) {
        return Err(ChatError::not_found("chat"));
    }
    if targets.iter().all(|t| *t == p.id()) || room.room.created_by == Some(p.id()) {
        Ok(())
    } else {
        Err(deny(
            "only the chat's creator or an admin may remove other users",
        ))
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
    use crate::{UserId, UserProfile};

    fn principal(id: i64, external: Option<&str>, admin: bool) -> Principal {
        let mut user = crate::model::User::placeholder(UserId(id));
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
        // (caller, profile, allowed)
        let cases = [
            (principal(1, None, false), own(None), true),
            (principal(1, None, false), other.clone(), false),
            (principal(1, None, true), other.clone(), true),
            // external ids: only an admin sets or changes one
            (principal(1, None, false), own(Some("ceo")), false),
            (principal(1, Some("me"), false), own(Some("me")), true),
            (principal(1, Some("me"), false), own(Some("ceo")), false),
            (principal(1, None, true), own(Some("ceo")), true),
        ];
        for (i, (p, profile, allowed)) in cases.iter().enumerate() {
            assert_eq!(can_write_profile(p, profile).is_ok(), *allowed, "case {i}");
        }
    }
}
