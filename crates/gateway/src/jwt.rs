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
    rules: JwtRules,
}

/// What a token must carry beyond a valid signature and `exp` (all optional: the
/// legacy simplejwt tokens carry none of `iss`/`aud`).
#[derive(Clone, Debug, Default)]
pub struct JwtRules {
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud` (one of the token's audiences).
    pub audience: Option<String>,
    /// Refuse tokens without `token_type: "access"` (simplejwt always sends it;
    /// without this flag a token with no `token_type` is accepted).
    pub require_token_type: bool,
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
    #[error("the JWT secret is {0} bytes: use at least {MIN_SECRET_BYTES} random bytes (e.g. `openssl rand -hex 32`)")]
    ShortSecret(usize),
    #[error("the JWT secret is a well-known placeholder ({0:?}): set a random one (e.g. `openssl rand -hex 32`)")]
    PlaceholderSecret(String),
}

/// The shortest HS256 secret a server starts with: RFC 7518 asks for a key at least
/// as long as the hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// Secrets copied from examples and templates, refused whatever their length.
const PLACEHOLDERS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "change-me-in-production",
    "changeme-in-production",
    "secret",
    "your-secret-key",
    "your-256-bit-secret",
    "insecure",
    "please-change-me",
    "replace-me",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

/// Refuse a secret a server should not run with: too short, or a placeholder
/// (compared case-insensitively; Django's generated `django-insecure-…` keys are
/// refused by their prefix, as Django's own deploy check warns about them).
pub fn check_secret_strength(secret: &str) -> Result<(), JwtSetupError> {
    if secret.is_empty() {
        return Err(JwtSetupError::EmptySecret);
    }
    let lower = secret.trim().to_ascii_lowercase();
    if lower.is_empty()
        || lower.starts_with("django-insecure-")
        || PLACEHOLDERS.iter().any(|p| lower == *p)
        || lower.bytes().all(|b| b == lower.as_bytes()[0])
    {
        return Err(JwtSetupError::PlaceholderSecret(
            secret.chars().take(24).collect(),
        ));
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(JwtSetupError::ShortSecret(secret.len()));
    }
    Ok(())
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
            rules: JwtRules::default(),
        })
    }

    /// The same keys, with `rules` on what tokens must carry.
    pub fn with_rules(mut self, rules: JwtRules) -> Self {
        self.rules = rules;
        self
    }

    /// RS256 or ES256 with a PEM public key; this mode cannot mint tokens.
    pub fn public_key(pem: &[u8]) -> Result<Self, JwtSetupError> {
        type Parse = fn(&[u8]) -> Result<DecodingKey, jsonwebtoken::errors::Error>;
        let kinds: [(Parse, Algorithm); 2] = [
            (DecodingKey::from_rsa_pem, Algorithm::RS256),
            (DecodingKey::from_ec_pem, Algorithm::ES256),
        ];
        for (parse, algorithm) in kinds {
            if let Ok(k) = parse(pem) {
                return Ok(Jwt {
                    decoding: k,
                    encoding: None,
                    algorithms: vec![algorithm],
                    rules: JwtRules::default(),
                });
            }
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
        if let Some(iss) = &self.rules.issuer {
            claims.insert("iss".into(), json!(iss));
        }
        if let Some(aud) = &self.rules.audience {
            claims.insert("aud".into(), json!(aud));
        }
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
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.rules.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.rules.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        let data = decode::<Map<String, Value>>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::Invalid("not valid yet (nbf)".into()),
                ErrorKind::InvalidIssuer => TokenError::Invalid("issuer not accepted".into()),
                ErrorKind::InvalidAudience => TokenError::Invalid("audience not accepted".into()),
                ErrorKind::InvalidSignature => TokenError::Invalid("bad signature".into()),
                ErrorKind::InvalidAlgorithm => TokenError::Invalid("algorithm not accepted".into()),
                ErrorKind::MissingRequiredClaim(c) => {
                    TokenError::Invalid(format!("missing claim `{c}`"))
                }
                _ => TokenError::Invalid("malformed token".into()),
            },
        )?;
        let m = data.claims;
        match m.get("token_type") {
            Some(tt) if tt.as_str() != Some("access") => return Err(TokenError::WrongType),
            None if self.rules.require_token_type => return Err(TokenError::WrongType),
            _ => {}
        }
        // Internal ids are JSON integers or canonical digit strings (`"42"`, not
        // `"042"`, `"+42"` or `" 42"`): anything else is an external id, so two
        // spellings never name one user.
        let subject = match m.get("user_id").or_else(|| m.get("sub")) {
            Some(Value::Number(n)) => n.as_i64().filter(|i| *i > 0).map(Subject::Id),
            Some(Value::String(s)) if !s.trim().is_empty() => Some(match s.parse::<i64>() {
                Ok(i) if i > 0 && i.to_string() == *s => Subject::Id(i),
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
            expires_at: m.get("exp").and_then(Value::as_i64),
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

    #[test]
    fn nbf_in_the_future_is_refused() {
        let j = jwt();
        let tomorrow = chrono::Utc::now().timestamp() + 86_400;
        let t = sign(json!({"exp":exp(),"nbf":tomorrow,"user_id":1}), b"s3cret");
        assert!(matches!(j.verify(&t), Err(TokenError::Invalid(m)) if m.contains("nbf")));
        let t = sign(json!({"exp":exp(),"nbf":1,"user_id":1}), b"s3cret");
        assert!(j.verify(&t).is_ok());
    }

    #[test]
    fn issuer_audience_and_token_type_when_required() {
        let j = jwt().with_rules(JwtRules {
            issuer: Some("https://id.example".into()),
            audience: Some("chat".into()),
            require_token_type: true,
        });
        let good = json!({"exp":exp(),"user_id":1,"iss":"https://id.example","aud":["x","chat"],"token_type":"access"});
        assert!(j.verify(&sign(good.clone(), b"s3cret")).is_ok());
        for (k, v) in [("iss", json!("https://evil")), ("aud", json!("other"))] {
            let mut bad = good.clone();
            bad[k] = v;
            assert!(
                matches!(j.verify(&sign(bad, b"s3cret")), Err(TokenError::Invalid(_))),
                "{k}"
            );
        }
        for k in ["iss", "aud"] {
            let mut missing = good.clone();
            missing.as_object_mut().unwrap().remove(k);
            assert!(
                matches!(
                    j.verify(&sign(missing, b"s3cret")),
                    Err(TokenError::Invalid(_))
                ),
                "{k}"
            );
        }
        let mut untyped = good.clone();
        untyped.as_object_mut().unwrap().remove("token_type");
        assert_eq!(
            j.verify(&sign(untyped, b"s3cret")),
            Err(TokenError::WrongType)
        );
        // Minted tokens carry what the rules require.
        let minted = j
            .mint(&TokenSpec {
                user_id: 3,
                username: None,
                admin: false,
                ttl_secs: 60,
            })
            .unwrap();
        assert_eq!(j.verify(&minted).unwrap().subject, Some(Subject::Id(3)));
        // Without rules, an audience in a token is no reason to refuse it.
        let t = sign(json!({"exp":exp(),"user_id":1,"aud":"whatever"}), b"s3cret");
        assert!(jwt().verify(&t).is_ok());
    }

    #[test]
    fn only_canonical_digit_strings_are_internal_ids() {
        let j = jwt();
        for (raw, want) in [
            (json!("42"), Subject::Id(42)),
            (json!(42), Subject::Id(42)),
            (json!("042"), Subject::External("042".into())),
            (json!("+42"), Subject::External("+42".into())),
            (json!("4.2e1"), Subject::External("4.2e1".into())),
        ] {
            let t = sign(json!({"exp":exp(),"user_id":raw}), b"s3cret");
            assert_eq!(j.verify(&t).unwrap().subject, Some(want), "{raw}");
        }
        for raw in [json!(42.5), json!(-1), json!(0), json!(true)] {
            let t = sign(json!({"exp":exp(),"user_id":raw}), b"s3cret");
            assert_eq!(j.verify(&t), Err(TokenError::NoSubject), "{raw}");
        }
    }

    #[test]
    fn weak_secrets_are_refused() {
        for weak in [
            "",
            "change-me",
            "CHANGEME",
            "secret",
            "short-but-random-4f9a",
        ] {
            assert!(check_secret_strength(weak).is_err(), "{weak:?}");
        }
        let insecure = format!("django-insecure-{}", "k".repeat(40));
        assert!(check_secret_strength(&insecure).is_err());
        assert!(check_secret_strength(&"a".repeat(64)).is_err());
        assert!(check_secret_strength("3f1c0a9be2d44c7f8a61b0e5d2c9f7a4").is_ok());
    }
}
