//! Access tokens.
//!
//! Verification accepts the tokens of the legacy Django backends unchanged:
//! djangorestframework-simplejwt signs HS256 with a shared secret and puts `user_id`
//! (int or string), `token_type: "access"`, `exp`, `iat` and `jti` in the claims.
//! Deployments with an identity provider can verify RS256/ES256 with a public key
//! instead. `alg: none` and any algorithm other than the configured one are refused.

use chat_core::{Claims, Subject, TokenError, TokenVerifier};
use jsonwebtoken::{
    decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde_json::{json, Map, Value};

/// How tokens are verified (and, with a secret, minted).
#[derive(Clone)]
pub struct Jwt {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt")
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("the JWT public key is not a valid RSA or EC PEM key")]
    BadPublicKey,
    #[error("the JWT secret must not be empty")]
    EmptySecret,
}

impl Jwt {
    /// HS256 with a shared secret (simplejwt's default).
    pub fn hs256(secret: &[u8]) -> Result<Self, JwtSetupError> {
        if secret.is_empty() {
            return Err(JwtSetupError::EmptySecret);
        }
        Ok(Jwt {
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
            algorithms: vec![Algorithm::HS256],
        })
    }

    /// RS256 or ES256 with a PEM public key; this mode cannot mint tokens.
    pub fn public_key(pem: &[u8]) -> Result<Self, JwtSetupError> {
        if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Jwt {
                decoding: k,
                encoding: None,
                algorithms: vec![Algorithm::RS256],
            });
        }
        if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            return Ok(Jwt {
                decoding: k,
                encoding: None,
                algorithms: vec![Algorithm::ES256],
            });
        }
        Err(JwtSetupError::BadPublicKey)
    }

    pub fn can_mint(&self) -> bool {
        self.encoding.is_some()
    }

    /// Mint an access token in simplejwt's shape.
    pub fn mint(&self, spec: &TokenSpec) -> Option<String> {
        let key = self.encoding.as_ref()?;
        let now = chrono::Utc::now().timestamp();
        let mut claims = Map::new();
        claims.insert("token_type".into(), json!("access"));
        claims.insert("exp".into(), json!(now + spec.ttl_secs));
        claims.insert("iat".into(), json!(now));
        claims.insert("jti".into(), json!(random_hex(16)));
        claims.insert("user_id".into(), json!(spec.user_id));
        if let Some(u) = &spec.username {
            claims.insert("username".into(), json!(u));
        }
        if spec.admin {
            claims.insert("is_staff".into(), json!(true));
        }
        encode(&Header::new(Algorithm::HS256), &Value::Object(claims), key).ok()
    }
}

/// What to put in a minted token.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub user_id: i64,
    pub username: Option<String>,
    pub admin: bool,
    pub ttl_secs: i64,
}

fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn str_claim(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn bool_claim(m: &Map<String, Value>, k: &str) -> bool {
    matches!(m.get(k), Some(Value::Bool(true)))
}

impl TokenVerifier for Jwt {
    fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(self.algorithms[0]);
        validation.algorithms = self.algorithms.clone();
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp"]);
        let data = decode::<Map<String, Value>>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::Invalid("bad signature".into()),
                ErrorKind::InvalidAlgorithm => TokenError::Invalid("algorithm not accepted".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    TokenError::Invalid(format!("missing claim `{c}`"))
                }
                _ => TokenError::Invalid("malformed token".into()),
            },
        )?;
        let m = data.claims;
        if let Some(tt) = m.get("token_type") {
            if tt.as_str() != Some("access") {
                return Err(TokenError::WrongType);
            }
        }
        let subject = match m.get("user_id").or_else(|| m.get("sub")) {
            Some(Value::Number(n)) => n.as_i64().filter(|i| *i > 0).map(Subject::Id),
            Some(Value::String(s)) if !s.trim().is_empty() => Some(match s.trim().parse::<i64>() {
                Ok(i) if i > 0 => Subject::Id(i),
                _ => Subject::External(s.trim().to_string()),
            }),
            _ => None,
        };
        let Some(subject) = subject else {
            return Err(TokenError::NoSubject);
        };
        Ok(Claims {
            subject: Some(subject),
            username: str_claim(&m, "username"),
            email: str_claim(&m, "email"),
            first_name: str_claim(&m, "first_name"),
            last_name: str_claim(&m, "last_name"),
            is_admin: bool_claim(&m, "is_staff")
                || bool_claim(&m, "is_admin")
                || bool_claim(&m, "is_superuser"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> Jwt {
        Jwt::hs256(b"s3cret").unwrap()
    }

    fn sign(claims: Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn exp() -> i64 {
        chrono::Utc::now().timestamp() + 600
    }

    #[test]
    fn minted_tokens_verify() {
        let j = jwt();
        let t = j
            .mint(&TokenSpec {
                user_id: 7,
                username: Some("ann".into()),
                admin: true,
                ttl_secs: 60,
            })
            .unwrap();
        let c = j.verify(&t).unwrap();
        assert_eq!(c.subject, Some(Subject::Id(7)));
        assert_eq!(c.username.as_deref(), Some("ann"));
        assert!(c.is_admin);
    }

    #[test]
    fn simplejwt_claims_int_and_string_ids() {
        let j = jwt();
        let t = sign(
            json!({"token_type":"access","exp":exp(),"iat":1,"jti":"x","user_id":"42"}),
            b"s3cret",
        );
        assert_eq!(j.verify(&t).unwrap().subject, Some(Subject::Id(42)));
        let t = sign(json!({"exp":exp(),"user_id":"abc-uuid"}), b"s3cret");
        assert_eq!(
            j.verify(&t).unwrap().subject,
            Some(Subject::External("abc-uuid".into()))
        );
    }

    #[test]
    fn refuses_bad_tokens() {
        let j = jwt();
        let refresh = sign(
            json!({"token_type":"refresh","exp":exp(),"user_id":1}),
            b"s3cret",
        );
        assert_eq!(j.verify(&refresh), Err(TokenError::WrongType));
        let expired = sign(
            json!({"exp": chrono::Utc::now().timestamp() - 3600, "user_id":1}),
            b"s3cret",
        );
        assert_eq!(j.verify(&expired), Err(TokenError::Expired));
        let forged = sign(json!({"exp":exp(),"user_id":1}), b"other");
        assert!(matches!(j.verify(&forged), Err(TokenError::Invalid(_))));
        let no_exp = sign(json!({"user_id":1}), b"s3cret");
        assert!(matches!(j.verify(&no_exp), Err(TokenError::Invalid(_))));
        let no_user = sign(json!({"exp":exp()}), b"s3cret");
        assert_eq!(j.verify(&no_user), Err(TokenError::NoSubject));
        // alg: none — header {"alg":"none","typ":"JWT"}, no signature.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(format!(r#"{{"exp":{},"user_id":1}}"#, exp()))
        );
        assert!(matches!(j.verify(&none), Err(TokenError::Invalid(_))));
        assert!(matches!(j.verify("garbage"), Err(TokenError::Invalid(_))));
    }
}
