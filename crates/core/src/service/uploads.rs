//! Uploaded files: recording, storing the bytes, serving URLs, sweeping abandoned
//! uploads.
//!
//! Invariant: the bytes of a recorded attachment are never deleted. Mechanism: an
//! upload records its row first, then stores its bytes, holding `blob_gc` shared;
//! the sweep holds it alone while it checks that no row names a blob and deletes it.
//! Consequence: a sweep racing an upload of the same bytes keeps them, and the
//! per-user quota is checked before anything is written.

use super::{check_limit, ChatService};
use crate::auth::Principal;
use crate::error::ChatError;
use crate::ids::AttachmentId;
use crate::model::*;
use crate::store::NewAttachment;
use crate::Result;
use std::sync::Arc;

/// A file sent inline with a message (a dialect that carries files in the message
/// frame), or uploaded on its own ([`ChatService::upload`]).
#[derive(Clone, Debug)]
pub struct Upload {
    pub name: String,
    /// `None`: guessed from the name.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// Unattached uploads deleted per sweep query.
const SWEEP_BATCH: i64 = 500;

impl ChatService {
    /// Record an uploaded file and store its bytes. The row comes first, so the
    /// per-user quota is checked before any bytes are written, and a sweep running
    /// meanwhile sees the row and keeps the bytes (see `blob_gc`).
    pub async fn upload(&self, actor: &Principal, upload: Upload) -> Result<Attachment> {
        self.throttle(actor)?;
        self.store_upload(actor, upload).await
    }

    /// A file within [`super::ServiceConfig::max_attachment_bytes`].
    pub(super) fn check_file_size(&self, upload: &Upload) -> Result<()> {
        check_limit("file", upload.bytes.len(), self.config.max_attachment_bytes)
    }

    /// An upload as part of a command already counted (a message's files).
    pub(super) async fn store_upload(
        &self,
        actor: &Principal,
        upload: Upload,
    ) -> Result<Attachment> {
        let name = sanitize_file_name(&upload.name);
        self.check_file_size(&upload)?;
        let content_type = upload
            .content_type
            .filter(|c| !c.trim().is_empty())
            .unwrap_or_else(|| {
                mime_guess::from_path(&name)
                    .first_or_octet_stream()
                    .to_string()
            });
        let quota = match self.config.max_upload_bytes_per_user {
            0 => None,
            q => Some(i64::try_from(q).unwrap_or(i64::MAX)),
        };
        let _shared = self.blob_gc.read().await;
        let attachment = self
            .store
            .insert_attachment(
                &NewAttachment {
                    name,
                    content_type,
                    size: upload.bytes.len() as i64,
                    blob_key: crate::files::key_of(&upload.bytes),
                    uploader_id: actor.id(),
                    token: crate::files::new_token(),
                },
                quota,
            )
            .await?;
        if let Err(e) = self.files.put(&upload.bytes).await {
            tracing::error!(attachment = %attachment.id, error = %e, "could not store an upload's bytes");
            if let Err(e) = self.store.delete_unattached(attachment.id).await {
                tracing::warn!(attachment = %attachment.id, error = %e, "could not forget an upload whose bytes were not stored (the sweep will)");
            }
            return Err(ChatError::Storage("could not store the file".into()));
        }
        Ok(attachment)
    }

    pub async fn attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        Ok(self.store.attachment(id).await?)
    }

    /// The absolute URL an attachment is served at:
    /// `<public base>/files/<id>/<token>/<name>` (see [`crate::files`]).
    pub fn file_url(&self, a: &Attachment) -> String {
        format!(
            "{}/files/{}/{}/{}",
            self.config.public_base_url.trim_end_matches('/'),
            a.id,
            a.token,
            percent_encoding::utf8_percent_encode(&a.name, FILE_NAME_ESCAPES)
        )
    }

    /// Delete the uploads no message holds that are older than
    /// [`ServiceConfig::unattached_upload_ttl`], and the bytes of each that no other
    /// attachment shares. Returns how many uploads went.
    pub async fn sweep_unattached_uploads(&self) -> Result<usize> {
        let ttl = self.config.unattached_upload_ttl;
        if ttl.is_zero() {
            return Ok(0);
        }
        let cutoff =
            chrono::Utc::now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let mut deleted = 0;
        let mut keys = std::collections::BTreeSet::new();
        loop {
            let batch = self
                .store
                .delete_unattached_before(cutoff, SWEEP_BATCH)
                .await?;
            deleted += batch.len();
            let full = batch.len() as i64 >= SWEEP_BATCH;
            keys.extend(batch.into_iter().map(|a| a.blob_key));
            if !full {
                break;
            }
        }
        for key in keys {
            let _alone = self.blob_gc.write().await;
            if self.store.blob_in_use(&key).await? {
                continue;
            }
            if let Err(e) = self.files.delete(&key).await {
                tracing::warn!(blob = %key, error = %e, "could not delete an unused blob");
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "deleted uploads no message took");
        }
        Ok(deleted)
    }

    /// Run [`Self::sweep_unattached_uploads`] periodically (a quarter of the TTL,
    /// between 1 s and 10 min) until `stop`; nothing when the TTL is zero.
    pub fn spawn_upload_sweeper(
        self: &Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let ttl = service.config.unattached_upload_ttl;
            if ttl.is_zero() {
                return;
            }
            let period = (ttl / 4).clamp(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(600),
            );
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = service.sweep_unattached_uploads().await {
                    tracing::warn!(error = %e, "the sweep of unattached uploads failed");
                }
            }
        })
    }
}

/// Characters escaped in a file name inside a URL path: all but RFC 3986 unreserved.
const FILE_NAME_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Keep a file name's last path component, without control characters.
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    if clean.is_empty() {
        "file".to_string()
    } else {
        clean
    }
}
