//! Errors inside the store, and how they become [`StoreError`]s.
//!
//! Queries keep diesel's own error until the very end of an operation, because some
//! operations must look at it first: a unique violation while creating a direct room
//! means "that room exists" (and the store then finds its id), while the same
//! violation on a username is a conflict. Only at the boundary is every remaining
//! error flattened into the domain's [`StoreError`].

use chat_core::StoreError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The error type of every query closure in this crate.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Straight from diesel; classified at the boundary.
    Db(DieselError),
    /// Already a domain error.
    Store(StoreError),
}

impl From<DieselError> for Fail {
    fn from(e: DieselError) -> Self {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl Fail {
    pub fn not_found(what: &'static str) -> Self {
        Fail::Store(StoreError::NotFound(what))
    }

    pub fn conflict(what: impl Into<String>) -> Self {
        Fail::Store(StoreError::Conflict(what.into()))
    }

    /// Stored data this version cannot interpret.
    pub fn corrupt(what: impl Into<String>) -> Self {
        Fail::Store(StoreError::Backend(format!(
            "stored data is inconsistent: {}",
            what.into()
        )))
    }

    pub fn pool(e: impl std::fmt::Display) -> Self {
        Fail::Store(StoreError::Backend(format!(
            "no database connection available: {e}"
        )))
    }

    /// True for a violated unique constraint (or primary key).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Fail::Db(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// True for a conflict found by an explicit check.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Fail::Store(StoreError::Conflict(_)))
    }

    /// True for a violated foreign key.
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            Fail::Db(DieselError::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }

    pub fn into_store_error(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Db(e) => classify(e),
        }
    }
}

fn classify(e: DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(kind, info) => {
            let mut msg = info.message().to_owned();
            if let Some(detail) = info.details() {
                msg.push_str(": ");
                msg.push_str(detail);
            }
            if let Some(constraint) = info.constraint_name() {
                msg.push_str(&format!(" (constraint {constraint})"));
            }
            match kind {
                DatabaseErrorKind::UniqueViolation => {
                    // The database's detail names other records' keys: logged only.
                    tracing::debug!(detail = %msg, "unique violation");
                    StoreError::Conflict("a record with the same key exists".into())
                }
                DatabaseErrorKind::ForeignKeyViolation => StoreError::NotFound("referenced record"),
                DatabaseErrorKind::ClosedConnection => {
                    StoreError::Backend(format!("the database connection was closed: {msg}"))
                }
                DatabaseErrorKind::SerializationFailure => StoreError::Backend(format!(
                    "the database refused a concurrent change (retry): {msg}"
                )),
                _ => StoreError::Backend(format!("database error: {msg}")),
            }
        }
        DieselError::NotFound => StoreError::Backend("an expected row is missing".into()),
        DieselError::RollbackTransaction => {
            StoreError::Backend("the transaction was rolled back".into())
        }
        other => StoreError::Backend(format!("database error: {other}")),
    }
}
