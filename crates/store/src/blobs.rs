//! Attachment bytes in PostgreSQL (`chat_blobs`), for the nodes of a cluster, which
//! share no disk: see `chat_core::files`.

use crate::db::{side_pool, PgPool};
use crate::target::{self, Target};
use crate::StoreSetupError;
use chat_core::files::BlobStore;
use diesel::sql_types::{BigInt, Bytea, Text};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use std::sync::Arc;
use std::time::Duration;

/// Connections for blobs: apart from the request pool, so that large uploads and
/// downloads never take the connections messages need.
const POOL_SIZE: u32 = 4;

struct PgBlobs {
    pool: PgPool,
}

#[derive(QueryableByName)]
struct Blob {
    #[diesel(sql_type = Bytea)]
    bytes: Vec<u8>,
}

#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = BigInt)]
    size: i64,
}

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("blob store: {e}"))
}

/// The blob store of the PostgreSQL database at `url`; `None` for SQLite, whose
/// node keeps files on its disk. The store must have been opened first (it applies
/// the migrations).
pub async fn open(url: &str) -> Result<Option<Arc<dyn BlobStore>>, StoreSetupError> {
    let Target::Postgres(url) = target::parse(url)? else {
        return Ok(None);
    };
    let pool = side_pool(&url, POOL_SIZE, Duration::from_secs(10), false).await?;
    Ok(Some(Arc::new(PgBlobs { pool })))
}

#[async_trait::async_trait]
impl BlobStore for PgBlobs {
    async fn put_blob(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut conn = self.pool.get().await.map_err(io)?;
        diesel::sql_query(
            "INSERT INTO chat_blobs (key, bytes, size, created_at) VALUES ($1, $2, $3, chat_now_micros()) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind::<Text, _>(key)
        .bind::<Bytea, _>(bytes)
        .bind::<BigInt, _>(bytes.len() as i64)
        .execute(&mut conn)
        .await
        .map_err(io)?;
        Ok(())
    }

    async fn get_blob(&self, key: &str) -> std::io::Result<Option<Vec<u8>>> {
        let mut conn = self.pool.get().await.map_err(io)?;
        let found = diesel::sql_query("SELECT bytes FROM chat_blobs WHERE key = $1")
            .bind::<Text, _>(key)
            .get_results::<Blob>(&mut conn)
            .await
            .map_err(io)?;
        Ok(found.into_iter().next().map(|b| b.bytes))
    }

    async fn blob_size(&self, key: &str) -> std::io::Result<Option<u64>> {
        let mut conn = self.pool.get().await.map_err(io)?;
        let found = diesel::sql_query("SELECT size FROM chat_blobs WHERE key = $1")
            .bind::<Text, _>(key)
            .get_results::<Size>(&mut conn)
            .await
            .map_err(io)?;
        Ok(found
            .into_iter()
            .next()
            .map(|s| u64::try_from(s.size).unwrap_or(0)))
    }

    async fn read_blob(&self, key: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        // bytea is at most 1 GiB, so positions fit PostgreSQL's int; substring counts
        // from 1.
        let from = i64::try_from(offset).map_err(io)?.saturating_add(1);
        let len = i64::try_from(len).map_err(io)?;
        let mut conn = self.pool.get().await.map_err(io)?;
        let found = diesel::sql_query(
            "SELECT substring(bytes FROM $2::int FOR $3::int) AS bytes FROM chat_blobs WHERE key = $1",
        )
        .bind::<Text, _>(key)
        .bind::<BigInt, _>(from)
        .bind::<BigInt, _>(len)
        .get_results::<Blob>(&mut conn)
        .await
        .map_err(io)?;
        Ok(found
            .into_iter()
            .next()
            .map(|b| b.bytes)
            .unwrap_or_default())
    }

    async fn delete_unused_blob(&self, key: &str) -> std::io::Result<bool> {
        let mut conn = self.pool.get().await.map_err(io)?;
        let deleted = diesel::sql_query(
            "DELETE FROM chat_blobs WHERE key = $1 \
             AND NOT EXISTS (SELECT 1 FROM attachments WHERE blob_key = $1)",
        )
        .bind::<Text, _>(key)
        .execute(&mut conn)
        .await
        .map_err(io)?;
        Ok(deleted > 0)
    }
}
