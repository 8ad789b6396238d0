//! Who is calling. Token formats are the gateway's business; the domain only sees the
//! verified [`Claims`] and turns them into a [`Principal`] (provisioning the user on
//! first sight).

use crate::model::User;

/// How a token names its user: simplejwt's `user_id` is an int or a string; a numeric
/// string is an id, any other string an external id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Id(i64),
    External(String),
}

/// The verified claims of an access token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claims {
    pub subject: Option<Subject>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_admin: bool,
    /// When the token expires (`exp`, Unix seconds).
    pub expires_at: Option<i64>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    #[error("no token was given")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not an access token")]
    WrongType,
    #[error("the token names no user")]
    NoSubject,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

/// Verifies access tokens. Implemented by the gateway (JWT); tests may use the same one.
pub trait TokenVerifier: Send + Sync + 'static {
    fn verify(&self, token: &str) -> Result<Claims, TokenError>;
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: User,
    /// Admin (`is_staff`) as of the token or the user record. A token's claim counts
    /// for that token only: it is never written to the record, whose flag is the
    /// operator's (`users add --admin`, the admin REST API, an import).
    pub is_admin: bool,
    /// Acting as a moderator: an admin on an admin endpoint, who may view any room and
    /// post only where the room has a business plan.
    pub moderator: bool,
    /// When the token this principal came from expires (Unix seconds), for
    /// `--close-on-token-expiry`.
    pub expires_at: Option<i64>,
}

impl Principal {
    pub fn id(&self) -> crate::UserId {
        self.user.id
    }
}
