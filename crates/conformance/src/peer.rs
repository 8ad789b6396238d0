//! A connection seen through the spec: every frame the server sends is identified
//! as one of the spec's server messages and validated against its schema before the
//! scenario sees it.
//!
//! Why frames are identified by schema rather than by a dialect-specific field: it
//! keeps the runner honest (a frame is accepted only if the spec can say which
//! message it is) and it is the same code for all five dialects. A frame that no
//! server message of the spec accepts is a failure on its own, whatever the scenario
//! expected.
//!
//! Each peer has a set of *ignorable* messages: pushes that may arrive at any moment
//! because of things outside the scenario's control (presence of users connecting,
//! typing). They are still validated, then skipped.

use crate::report::{CaseError, CaseResult};
use crate::spec::Spec;
use chat_client::{Incoming, SioClient, SioPacket, WsConn};
use serde_json::Value;
use std::time::Duration;

/// Timeouts shared by the peers of a run.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How long a frame the scenario waits for may take.
    pub timeout: Duration,
    /// How long "nothing else arrives" is watched for after a case.
    pub quiet: Duration,
}

/// A frame for messages, cut to a readable length.
pub fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 400 {
        let cut: String = s.chars().take(400).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// Check a frame the runner is about to send against the client message `key`, so
/// that a happy path also proves the spec's request schema describes what the
/// server accepts.
fn check_outgoing(spec: &Spec, key: &str, name: Option<&str>, v: &Value) -> Result<(), String> {
    spec.check(key, name, v)
        .map_err(|e| format!("the runner's own `{key}` request does not match the spec: {e}"))
}

/// How a request goes out: checked against the spec first, or sent as it is (an
/// error case's malformed request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing {
    Checked,
    Unchecked,
}

/// Why waiting for `key` failed: nothing came within `timeout` (`kind`: what the
/// message is called, when more than its name), or the connection failed.
fn wait_failed(
    label: &str,
    key: &str,
    kind: &str,
    timeout: Duration,
    e: chat_client::Error,
) -> CaseError {
    CaseError::Fail(match e {
        chat_client::Error::Timeout => format!("{label}: no `{key}`{kind} within {timeout:?}"),
        e => format!("{label}: waiting for `{key}`: {e}"),
    })
}

/// What is left of a quiet period that ends at `deadline`; `None` once it is over.
fn time_left(deadline: tokio::time::Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    (!left.is_zero()).then_some(left)
}

/// The end of a quiet period that a receive error cut short: `extra`, plus the error
/// unless it is the period running out.
fn quiet_ended(mut extra: Vec<String>, label: &str, e: chat_client::Error) -> Vec<String> {
    if !matches!(e, chat_client::Error::Timeout) {
        extra.push(format!("{label}: {e}"));
    }
    extra
}

/// What a scenario waits for besides the message: `pred` accepts it, `what` says what
/// is wrong with a frame it refuses.
pub struct Want<'a> {
    pub what: &'a str,
    pub pred: &'a dyn Fn(&Value) -> bool,
}

/// Waiting for the spec's server messages, the same for both kinds of peer.
pub(crate) trait Expect {
    /// The next frame that is the message `key` (ignorable ones skipped), validated;
    /// a failure unless `want` accepts it.
    async fn next_where(&mut self, key: &str, want: Want<'_>) -> Result<Value, CaseError>;

    /// The next frame that is the message `key`, validated.
    async fn expect(&mut self, key: &str) -> Result<Value, CaseError> {
        self.expect_where(key, "", |_| true).await
    }

    /// The next frame that is the message `key` and satisfies `pred` (described by
    /// `what` in the failure).
    async fn expect_where(
        &mut self,
        key: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, CaseError> {
        self.next_where(key, Want { what, pred: &pred }).await
    }
}

/// A plain WebSocket peer.
pub struct WsPeer<'s> {
    pub label: String,
    pub conn: WsConn,
    spec: &'s Spec,
    ignorable: Vec<String>,
    timing: Timing,
}

impl<'s> WsPeer<'s> {
    pub async fn connect(
        label: &str,
        url: &str,
        headers: &[(&str, &str)],
        spec: &'s Spec,
        timing: Timing,
    ) -> Result<WsPeer<'s>, chat_client::Error> {
        let conn = WsConn::connect(url, headers).await?;
        Ok(WsPeer {
            label: label.to_string(),
            conn,
            spec,
            ignorable: Vec::new(),
            timing,
        })
    }

    /// Messages that may arrive at any time and are skipped (after validation).
    pub fn ignore(&mut self, keys: &[&str]) {
        self.ignorable = keys.iter().map(|k| k.to_string()).collect();
    }

    /// Send a request that must match the client message `key`.
    pub async fn send_as(&mut self, key: &str, v: &Value) -> Result<(), CaseError> {
        check_outgoing(self.spec, key, None, v)?;
        self.send(v).await
    }

    /// Send `v` as `how` says: checked as the client message `key`, or as it is.
    pub async fn send_outgoing(
        &mut self,
        how: Outgoing,
        key: &str,
        v: &Value,
    ) -> Result<(), CaseError> {
        match how {
            Outgoing::Checked => self.send_as(key, v).await,
            Outgoing::Unchecked => self.send(v).await,
        }
    }

    /// Send any JSON (for error cases).
    pub async fn send(&mut self, v: &Value) -> Result<(), CaseError> {
        self.conn
            .send_json(v)
            .await
            .map_err(|e| CaseError::Fail(format!("{}: send failed: {e}", self.label)))
    }

    /// Send raw text (for error cases).
    pub async fn send_text(&mut self, s: &str) -> Result<(), CaseError> {
        self.conn
            .send_text(s.to_string())
            .await
            .map_err(|e| CaseError::Fail(format!("{}: send failed: {e}", self.label)))
    }

    /// The next frame that is one of the messages `keys` (and satisfies `pred`):
    /// which one it is, and the frame.
    pub async fn expect_one_of(
        &mut self,
        keys_wanted: &[&str],
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<(String, Value), CaseError> {
        let key = keys_wanted.join("` or `");
        let key = key.as_str();
        let timeout = self.timing.timeout;
        loop {
            let v = self.conn.recv_json(timeout).await;
            let v = v.map_err(|e| wait_failed(&self.label, key, "", timeout, e))?;
            match self.classify(&v) {
                Ok(keys) if keys.iter().any(|k| keys_wanted.contains(&k.as_str())) => {
                    let got = keys
                        .iter()
                        .find(|k| keys_wanted.contains(&k.as_str()))
                        .cloned()
                        .unwrap_or_default();
                    if pred(&v) {
                        return Ok((got, v));
                    }
                    return Err(CaseError::Fail(format!(
                        "{}: `{key}` arrived but {what}: {}",
                        self.label,
                        show(&v)
                    )));
                }
                Ok(keys) if keys.iter().any(|k| self.ignorable.contains(k)) => continue,
                Ok(keys) => {
                    let why = self
                        .spec
                        .message(keys_wanted.first().copied().unwrap_or_default())
                        .map(|m| m.validate(&v).err().unwrap_or_default())
                        .unwrap_or_default();
                    return Err(CaseError::Fail(format!(
                        "{}: expected `{key}`, got `{}`{}: {}",
                        self.label,
                        keys.join("`/`"),
                        if why.is_empty() {
                            String::new()
                        } else {
                            format!(" (as `{key}`: {why})")
                        },
                        show(&v)
                    )));
                }
                Err(why) => {
                    return Err(CaseError::Fail(format!(
                        "{}: expected `{key}`: {why}",
                        self.label
                    )))
                }
            }
        }
    }

    /// The spec messages a received frame is; `Err` when it is none of them.
    fn classify(&self, v: &Value) -> Result<Vec<String>, String> {
        let keys = self.spec.identify(None, v);
        if keys.is_empty() {
            let hint = self
                .spec
                .messages
                .values()
                .filter(|m| {
                    m.directions
                        .contains(&crate::spec::Direction::ServerToClient)
                })
                .filter_map(|m| m.validate(v).err().map(|e| (m.key.clone(), e)))
                .min_by_key(|(_, e)| e.matches(';').count())
                .map(|(k, e)| format!(" (closest: `{k}`: {e})"))
                .unwrap_or_default();
            return Err(format!(
                "frame matches no server message of the spec{hint}: {}",
                show(v)
            ));
        }
        for k in &keys {
            self.spec.mark_seen(k);
        }
        Ok(keys)
    }

    /// Read for the quiet period; every frame that is not ignorable is returned
    /// (described), and every frame is validated.
    pub async fn settle(&mut self) -> Vec<String> {
        let mut extra = Vec::new();
        let deadline = tokio::time::Instant::now() + self.timing.quiet;
        while let Some(left) = time_left(deadline).filter(|_| !self.conn.is_closed()) {
            match self.conn.recv(left).await {
                Err(e) => return quiet_ended(extra, &self.label, e),
                Ok(Incoming::Text(t)) => match serde_json::from_str::<Value>(&t) {
                    Ok(v) => match self.classify(&v) {
                        Ok(keys) if keys.iter().any(|k| self.ignorable.contains(k)) => {}
                        Ok(keys) => extra.push(format!(
                            "{}: unexpected `{}` {}",
                            self.label,
                            keys.join("`/`"),
                            show(&v)
                        )),
                        Err(why) => extra.push(format!("{}: {why}", self.label)),
                    },
                    Err(_) => extra.push(format!("{}: non-JSON text frame {t:.200}", self.label)),
                },
                Ok(Incoming::Binary(b)) => {
                    extra.push(format!("{}: binary frame of {} bytes", self.label, b.len()))
                }
                Ok(Incoming::Closed(c)) => {
                    extra.push(format!(
                        "{}: the server closed the connection {c:?}",
                        self.label
                    ));
                    return extra;
                }
            }
        }
        extra
    }

    pub async fn close(self) {
        self.conn.close().await;
    }
}

impl Expect for WsPeer<'_> {
    async fn next_where(&mut self, key: &str, want: Want<'_>) -> Result<Value, CaseError> {
        let (_, v) = self.expect_one_of(&[key], want.what, want.pred).await?;
        Ok(v)
    }
}

/// A Socket.IO peer: events are validated as the spec message whose `name` is the
/// event name; ack arguments as the reply message the scenario names.
pub struct SioPeer<'s> {
    pub label: String,
    pub client: SioClient,
    spec: &'s Spec,
    ignorable: Vec<String>,
    timing: Timing,
}

impl<'s> SioPeer<'s> {
    pub async fn connect(
        label: &str,
        url: &str,
        namespace: &str,
        auth: Option<&Value>,
        headers: &[(&str, &str)],
        spec: &'s Spec,
        timing: Timing,
    ) -> Result<SioPeer<'s>, chat_client::Error> {
        let client = SioClient::connect(url, namespace, auth, headers, timing.timeout).await?;
        Ok(SioPeer {
            label: label.to_string(),
            client,
            spec,
            ignorable: Vec::new(),
            timing,
        })
    }

    pub fn ignore(&mut self, keys: &[&str]) {
        self.ignorable = keys.iter().map(|k| k.to_string()).collect();
    }

    /// Emit the client message `key` (its name is the event) without an ack.
    pub async fn emit_as(&mut self, key: &str, payload: &Value) -> Result<(), CaseError> {
        let name = self.event_name(key)?;
        check_outgoing(self.spec, key, None, payload)?;
        self.emit(&name, Some(payload)).await
    }

    /// Emit any event (for error cases).
    pub async fn emit(&mut self, event: &str, payload: Option<&Value>) -> Result<(), CaseError> {
        self.client
            .emit(event, payload)
            .await
            .map_err(|e| CaseError::Fail(format!("{}: emit failed: {e}", self.label)))
    }

    /// Emit the client message `key` with an ack and validate the ack's argument as
    /// the reply message `reply_key`.
    pub async fn call_as(
        &mut self,
        key: &str,
        payload: &Value,
        reply_key: &str,
    ) -> Result<Value, CaseError> {
        let name = self.event_name(key)?;
        check_outgoing(self.spec, key, None, payload)?;
        self.call(&name, Some(payload), reply_key).await
    }

    /// Emit any event with an ack; validate the ack as `reply_key`.
    pub async fn call(
        &mut self,
        event: &str,
        payload: Option<&Value>,
        reply_key: &str,
    ) -> Result<Value, CaseError> {
        let args = self
            .client
            .call(event, payload, self.timing.timeout)
            .await
            .map_err(|e| CaseError::Fail(format!("{}: ack of `{event}`: {e}", self.label)))?;
        let first = args.into_iter().next().unwrap_or(Value::Null);
        self.spec.check(reply_key, None, &first).map_err(|e| {
            CaseError::Fail(format!(
                "{}: ack of `{event}` is not `{reply_key}`: {e}: {}",
                self.label,
                show(&first)
            ))
        })?;
        Ok(first)
    }

    /// The wire (event) name of the spec message `key`.
    pub fn spec_name(&self, key: &str) -> Option<String> {
        self.spec.message(key).map(|m| m.name.clone())
    }

    fn event_name(&self, key: &str) -> Result<String, CaseError> {
        self.spec
            .message(key)
            .map(|m| m.name.clone())
            .ok_or_else(|| CaseError::Fail(format!("the spec has no message `{key}`")))
    }

    /// Like [`Expect::expect_where`], but earlier events that are the same message
    /// and do not satisfy `pred` are skipped (validated): for pushes that may come
    /// several at a time, such as one `read-chat` per chat that became read.
    pub async fn expect_eventually(
        &mut self,
        key: &str,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> CaseResult {
        let deadline = tokio::time::Instant::now() + self.timing.timeout;
        loop {
            match self.expect(key).await {
                Ok(v) if pred(&v) => return Ok(()),
                Ok(v) if tokio::time::Instant::now() < deadline => {
                    let _ = v;
                    continue;
                }
                Ok(v) => {
                    return Err(CaseError::Fail(format!(
                        "{}: no `{key}` where {what} came; last: {}",
                        self.label,
                        show(&v)
                    )))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait until the server disconnects us (namespace `41` or the socket closing).
    pub async fn expect_disconnect(&mut self) -> Result<(), CaseError> {
        loop {
            match self.client.recv(self.timing.timeout).await {
                Ok(SioPacket::Disconnect) => return Ok(()),
                Err(chat_client::Error::Closed(_)) | Err(chat_client::Error::Transport(_)) => {
                    return Ok(())
                }
                Err(chat_client::Error::Timeout) => {
                    return Err(CaseError::Fail(format!(
                        "{}: still connected after {:?}",
                        self.label, self.timing.timeout
                    )))
                }
                Err(e) => return Err(CaseError::Fail(format!("{}: {e}", self.label))),
                Ok(SioPacket::Event { name, args, .. }) => {
                    let payload = args.into_iter().next().unwrap_or(Value::Null);
                    let keys = self.spec.identify(Some(&name), &payload);
                    if !keys.iter().any(|k| self.ignorable.contains(k)) {
                        return Err(CaseError::Fail(format!(
                            "{}: expected a disconnect, got event `{name}` {}",
                            self.label,
                            show(&payload)
                        )));
                    }
                }
                Ok(other) => {
                    return Err(CaseError::Fail(format!(
                        "{}: expected a disconnect, got {other:?}",
                        self.label
                    )))
                }
            }
        }
    }

    /// Like [`WsPeer::settle`].
    pub async fn settle(&mut self) -> Vec<String> {
        let mut extra = Vec::new();
        let deadline = tokio::time::Instant::now() + self.timing.quiet;
        while let Some(left) = time_left(deadline) {
            match self.client.recv(left).await {
                Err(e) => return quiet_ended(extra, &self.label, e),
                Ok(SioPacket::Event { name, args, .. }) => {
                    let payload = args.into_iter().next().unwrap_or(Value::Null);
                    let keys = self.spec.identify(Some(&name), &payload);
                    for k in &keys {
                        self.spec.mark_seen(k);
                    }
                    if keys.is_empty() {
                        extra.push(format!(
                            "{}: event `{name}` matches no server message of the spec: {}",
                            self.label,
                            show(&payload)
                        ));
                    } else if !keys.iter().any(|k| self.ignorable.contains(k)) {
                        extra.push(format!(
                            "{}: unexpected event `{name}` {}",
                            self.label,
                            show(&payload)
                        ));
                    }
                }
                Ok(other) => extra.push(format!("{}: unexpected {other:?}", self.label)),
            }
        }
        extra
    }

    pub async fn close(self) {
        self.client.disconnect().await;
    }
}

impl Expect for SioPeer<'_> {
    /// The next event that is the message `key`, validated; its payload (the first
    /// argument, `null` when the event has none).
    async fn next_where(&mut self, key: &str, want: Want<'_>) -> Result<Value, CaseError> {
        let Want { what, pred } = want;
        let name = self.event_name(key)?;
        let timeout = self.timing.timeout;
        loop {
            let p = self.client.recv(timeout).await;
            let p = p.map_err(|e| wait_failed(&self.label, &name, " event", timeout, e))?;
            let (ev, payload) = match p {
                SioPacket::Event { name, args, .. } => {
                    (name, args.into_iter().next().unwrap_or(Value::Null))
                }
                other => {
                    return Err(CaseError::Fail(format!(
                        "{}: expected event `{name}`, got {other:?}",
                        self.label
                    )))
                }
            };
            let keys = self.spec.identify(Some(&ev), &payload);
            if keys.iter().any(|k| k == key) {
                self.spec.mark_seen(key);
                if pred(&payload) {
                    return Ok(payload);
                }
                return Err(CaseError::Fail(format!(
                    "{}: `{name}` arrived but {what}: {}",
                    self.label,
                    show(&payload)
                )));
            }
            for k in &keys {
                self.spec.mark_seen(k);
            }
            if keys.iter().any(|k| self.ignorable.contains(k)) {
                continue;
            }
            let why = if ev == name {
                self.spec
                    .message(key)
                    .and_then(|m| m.validate(&payload).err())
                    .unwrap_or_default()
            } else if keys.is_empty() {
                "no server message of the spec accepts it".to_string()
            } else {
                format!("it is `{}`", keys.join("`/`"))
            };
            return Err(CaseError::Fail(format!(
                "{}: expected `{name}`, got event `{ev}` ({why}): {}",
                self.label,
                show(&payload)
            )));
        }
    }
}

/// Run a case body, then watch the listed peers for unexpected frames, and record
/// the outcome. The body is a block evaluating to `CaseResult` that may use `?`.
#[macro_export]
macro_rules! case {
    ($report:expr, [$($peer:expr),* $(,)?], $op:expr, $case:expr, $body:block) => {{
        let result: $crate::report::CaseResult = async { $body }.await;
        let result = match result {
            Ok(()) => {
                #[allow(unused_mut)]
                let mut extra: Vec<String> = Vec::new();
                $( extra.extend($peer.settle().await); )*
                if extra.is_empty() {
                    Ok(())
                } else {
                    Err($crate::report::CaseError::Fail(format!(
                        "unexpected frames after the case: {}",
                        extra.join("; ")
                    )))
                }
            }
            Err(e) => {
                // Drain what the failed case left behind, so the next case starts clean.
                $( let _ = $peer.settle().await; )*
                Err(e)
            }
        };
        $report.record($op, $case, result);
    }};
}
