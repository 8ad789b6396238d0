//! The admin endpoint: a second WebSocket path of the same dialect, open only to
//! staff tokens, where an admin may join any room and write where the room allows it.
//!
//! Invariant: these cases run after the user endpoint's, with its three peers still
//! connected, so a push the admin causes is checked on the members and the outsider
//! alike. Mechanism: the user endpoint's scenario hands its peers, the room and what
//! it learned about the room (`has_business`) over to [`run`], which closes them.
//! Consequence: the admin's writes are judged against the same room state.

use super::{answered_as, no_room, refused, reply, request, ADMIN_PATH};
use crate::case;
use crate::dialects::{int, marker, refused_with_403};
use crate::peer::Outgoing::Unchecked;
use crate::peer::{Expect, WsPeer};
use crate::report::{need, CaseError};
use crate::spec::Spec;
use crate::{header_refs, Config, Report, User};
use serde_json::json;

/// The admin endpoint next to the user endpoint, when not given.
fn admin_url(cfg: &Config) -> String {
    if let Some(u) = &cfg.admin_url {
        return u.clone();
    }
    match cfg
        .url
        .find("://")
        .and_then(|i| cfg.url[i + 3..].find('/').map(|j| i + 3 + j))
    {
        Some(path_start) => format!("{}{ADMIN_PATH}", &cfg.url[..path_start]),
        None => format!("{}{ADMIN_PATH}", cfg.url.trim_end_matches('/')),
    }
}

/// The admin endpoint's cases; closes the user endpoint's peers `[a, b, c]` at the end.
pub(super) async fn run(
    cfg: &Config,
    spec: &Spec,
    report: &mut Report,
    ua: &User,
    [mut a, mut b, mut c]: [WsPeer<'_>; 3],
    room: Option<i64>,
    has_business: Option<bool>,
) {
    let t = cfg.timing;
    let admin = admin_url(cfg);
    case!(
        report,
        [],
        "(admin handshake)",
        "a token of a non-admin is refused with HTTP 403",
        { refused_with_403(cfg, &admin, Some(&ua.token)).await }
    );
    let Some(admin_token) = cfg.admin_token.clone() else {
        report.record(
            "(admin)",
            "admin endpoint cases",
            Err(CaseError::Skip("pass --admin-token".into())),
        );
        a.close().await;
        b.close().await;
        c.close().await;
        return;
    };
    let h = cfg.headers(Some(&admin_token));
    let mut d = match WsPeer::connect("admin", &admin, &header_refs(&h), spec, t).await {
        Ok(p) => p,
        Err(e) => {
            report.record(
                "(admin connect)",
                "open the admin endpoint with an admin token",
                Err(CaseError::Fail(e.to_string())),
            );
            return;
        }
    };
    let not_200 = "it is not the 200 reply";
    case!(report, [d], "list", "admin endpoint: 200 with rooms", {
        answered_as(&mut d, not_200, 200, "list", json!("adm-1"), json!({})).await?;
        Ok(())
    });
    case!(
        report,
        [d],
        "join_room",
        "admin endpoint: an admin joins any room: 200",
        {
            let data = json!({"room_pk": room.ok_or_else(no_room)?});
            answered_as(&mut d, not_200, 200, "join_room", json!("adm-2"), data).await?;
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c, d],
        "create_message",
        "admin endpoint: 201 where has_business (members joined get the push), else 403",
        {
            let biz = need(&has_business, "join_room")?;
            d.send_as(
                "create_message",
                &request(
                    "create_message",
                    json!("adm-3"),
                    json!({"msg_text": marker("admin")}),
                ),
            )
            .await?;
            if biz {
                let v = d
                    .expect_where(
                        "create_message_ok",
                        "it is not the 201 reply",
                        reply(201, json!("adm-3")),
                    )
                    .await?;
                let id = int(&v, "/data/id")?;
                b.expect_where("create_message_ok", "it is not the admin's message", |p| {
                    p.pointer("/data/id") == Some(&json!(id))
                })
                .await?;
            } else {
                d.expect_where("error", "it is not a 403", reply(403, json!("adm-3")))
                    .await?;
            }
            Ok(())
        }
    );
    case!(
        report,
        [a, b, c, d],
        "create_message",
        "a member's message reaches the admin who joined the room (the admin watches it)",
        {
            need(&has_business, "join_room")?;
            let text = marker("watched");
            let data = json!({"msg_text": text});
            let not_201 = "it is not the 201 reply";
            answered_as(&mut b, not_201, 201, "create_message", json!("w-1"), data).await?;
            d.expect_where(
                "create_message_ok",
                "it is not B's message with B's request_id",
                |p| reply(201, json!("w-1"))(p) && p.pointer("/data/text") == Some(&json!(text)),
            )
            .await?;
            Ok(())
        }
    );
    case!(report, [d], "current_room_info", "admin endpoint: 405", {
        refused(
            &mut d,
            Unchecked,
            405,
            &[],
            "current_room_info",
            json!("adm-4"),
            json!({}),
        )
        .await
    });
    a.close().await;
    b.close().await;
    c.close().await;
    d.close().await;
}
