//! Access tokens (JWT, HS256 pinned), refresh tokens and API key material.

use crate::config::AuthConfig;
use crate::crypto::random_urlsafe;
use crate::error::{Error, Result};
use crate::ids::OrgId;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// The `Unauthorized` message of an access token past its `exp`: the session may be fine
/// (refresh and carry on), unlike a revoked or forged token.
pub const TOKEN_EXPIRED: &str = "token expired";

/// Prefix of API keys (`mc_live_<base64url(32 bytes)>`).
pub const API_KEY_PREFIX: &str = "mc_live_";
/// Characters of the random part used to find a key.
pub const API_KEY_LOOKUP_LEN: usize = 12;

/// Who a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// A console user.
    Access,
    /// An H5 end user.
    H5,
}

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: user or H5 user id.
    pub sub: Uuid,
    /// Organization the token acts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<OrgId>,
    /// Token id, for revocation.
    pub jti: Uuid,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
    /// Kind, checked in addition to the audience and the key.
    pub typ: TokenKind,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl: Duration,
    kind: TokenKind,
}

impl Keys {
    fn new(secret: &str, issuer: &str, audience: &str, ttl: Duration, kind: TokenKind) -> Self {
        // Only HS256 is accepted: a token naming another algorithm (including "none")
        // fails validation before its signature is considered.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
            kind,
        }
    }

    fn issue(&self, subject: Uuid, org: Option<OrgId>) -> Result<(String, Claims)> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject,
            org,
            jti: Uuid::now_v7(),
            iat: now,
            exp: now + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 2),
            typ: self.kind,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal("signing an access token", e))?;
        Ok((token, claims))
    }

    fn verify(&self, token: &str) -> Result<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|err| {
                Error::Unauthorized(
                    match err.kind() {
                        ErrorKind::ExpiredSignature => TOKEN_EXPIRED,
                        ErrorKind::InvalidAudience => "token is not valid for this API",
                        ErrorKind::InvalidIssuer => "token has the wrong issuer",
                        ErrorKind::InvalidAlgorithm => "token uses a forbidden algorithm",
                        _ => "invalid token",
                    }
                    .into(),
                )
            })?;
        if data.claims.typ != self.kind {
            return Err(Error::Unauthorized(
                "token is not valid for this API".into(),
            ));
        }
        Ok(data.claims)
    }
}

/// Issues and verifies the two families of access tokens, each with its own secret.
pub struct TokenService {
    admin: Keys,
    h5: Keys,
    /// Lifetime of console refresh tokens.
    pub refresh_ttl: Duration,
    /// Lifetime of H5 refresh tokens.
    pub h5_refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService").finish_non_exhaustive()
    }
}

impl TokenService {
    /// Builds both key sets from the configuration.
    pub fn new(config: &AuthConfig) -> Self {
        Self {
            admin: Keys::new(
                config.jwt_secret.expose(),
                &config.jwt_issuer,
                &config.jwt_audience,
                config.access_ttl,
                TokenKind::Access,
            ),
            h5: Keys::new(
                config.h5_jwt_secret.expose(),
                &config.jwt_issuer,
                &config.h5_jwt_audience,
                config.h5_access_ttl,
                TokenKind::H5,
            ),
            refresh_ttl: config.refresh_ttl,
            h5_refresh_ttl: config.h5_refresh_ttl,
        }
    }

    /// A console access token.
    pub fn issue_access(&self, user: Uuid, org: Option<OrgId>) -> Result<(String, Claims)> {
        self.admin.issue(user, org)
    }

    /// Verifies a console access token (signature, algorithm, issuer, audience, expiry).
    pub fn verify_access(&self, token: &str) -> Result<Claims> {
        self.admin.verify(token)
    }

    /// An H5 access token.
    pub fn issue_h5(&self, user: Uuid, org: OrgId) -> Result<(String, Claims)> {
        self.h5.issue(user, Some(org))
    }

    /// Verifies an H5 access token.
    pub fn verify_h5(&self, token: &str) -> Result<Claims> {
        self.h5.verify(token)
    }

    /// Console access token lifetime, in seconds.
    pub fn access_ttl_secs(&self) -> i64 {
        i64::try_from(self.admin.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    /// H5 access token lifetime, in seconds.
    pub fn h5_access_ttl_secs(&self) -> i64 {
        i64::try_from(self.h5.ttl.as_secs()).unwrap_or(i64::MAX)
    }
}

/// A fresh opaque refresh token.
pub fn new_refresh_token(h5: bool) -> String {
    let prefix = if h5 { "mc_h5rt_" } else { "mc_rt_" };
    format!("{prefix}{}", random_urlsafe(32))
}

/// A fresh API key and its lookup prefix.
pub fn new_api_key() -> (String, String) {
    let random = random_urlsafe(32);
    let lookup = random[..API_KEY_LOOKUP_LEN].to_owned();
    (format!("{API_KEY_PREFIX}{random}"), lookup)
}

/// The lookup prefix of a presented key, if it has our shape.
pub fn api_key_lookup(key: &str) -> Option<&str> {
    let random = key.strip_prefix(API_KEY_PREFIX)?;
    if random.len() != 43
        || !random
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return None;
    }
    Some(&random[..API_KEY_LOOKUP_LEN])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn config() -> AuthConfig {
        AuthConfig::for_tests(Secret::new("a".repeat(40)), Secret::new("b".repeat(40)))
    }

    #[test]
    fn access_tokens_round_trip() {
        let tokens = TokenService::new(&config());
        let org = OrgId::generate();
        let user = Uuid::now_v7();
        let (token, claims) = tokens.issue_access(user, Some(org)).unwrap();
        let verified = tokens.verify_access(&token).unwrap();
        assert_eq!(verified.sub, user);
        assert_eq!(verified.org, Some(org));
        assert_eq!(verified.jti, claims.jti);
    }

    #[test]
    fn h5_and_admin_tokens_are_not_interchangeable() {
        let tokens = TokenService::new(&config());
        let (admin, _) = tokens.issue_access(Uuid::now_v7(), None).unwrap();
        let (h5, _) = tokens.issue_h5(Uuid::now_v7(), OrgId::generate()).unwrap();
        assert!(tokens.verify_h5(&admin).is_err());
        assert!(tokens.verify_access(&h5).is_err());
    }

    #[test]
    fn alg_none_and_other_algorithms_are_rejected() {
        let tokens = TokenService::new(&config());
        let (token, _) = tokens.issue_access(Uuid::now_v7(), None).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        for alg in ["none", "HS512", "RS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let forged = format!("{header}.{payload}.");
            assert!(tokens.verify_access(&forged).is_err(), "{alg} accepted");
        }
    }

    #[test]
    fn tampering_and_wrong_secrets_are_rejected() {
        let tokens = TokenService::new(&config());
        let (token, _) = tokens.issue_access(Uuid::now_v7(), None).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[2] = URL_SAFE_NO_PAD.encode([0u8; 32]);
        assert!(tokens.verify_access(&parts.join(".")).is_err());
        let other = TokenService::new(&AuthConfig::for_tests(
            Secret::new("c".repeat(40)),
            Secret::new("d".repeat(40)),
        ));
        assert!(other.verify_access(&token).is_err());
        assert!(tokens.verify_access("garbage").is_err());
    }

    #[test]
    fn api_keys_have_the_documented_shape() {
        let (key, lookup) = new_api_key();
        assert!(key.starts_with("mc_live_"));
        assert_eq!(key.len(), 8 + 43);
        assert_eq!(api_key_lookup(&key), Some(lookup.as_str()));
        assert_eq!(api_key_lookup("mc_live_short"), None);
        assert_eq!(api_key_lookup("sk_other"), None);
    }
}
