//! Short-lived access tokens: HS256 pinned, `exp`/`iat`/`iss`/`aud`/`sub` required, a `typ` per purpose.

use std::collections::HashMap;
use std::sync::Mutex;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

const ISSUER: &str = "fieldwork";
const AUDIENCE: &str = "fieldwork-api";
const ACCESS: &str = "access";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Session id; the session must still be live.
    pub sid: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Token purpose; only `access` is accepted by the API.
    pub typ: String,
}

/// Signs and verifies access tokens with one HMAC key.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
    /// Tokens already verified, with their claims: a phone sends the same token for up to 15 minutes, and
    /// decoding and checking it again took ~7 % of a small request's CPU. Only tokens that passed every
    /// check get in; expiry is still checked on every use (the session itself is checked in the database
    /// on every request anyway).
    verified: Mutex<HashMap<String, Claims>>,
}

/// Most verified tokens remembered (about 0.5 KB each); the map is emptied when full.
const VERIFIED_MAX: usize = 10_000;

impl JwtKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(900),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Lifetime of an access token in seconds.
    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Issues an access token for a user's session at `now` (seconds since the epoch).
    pub fn issue(&self, user_id: i64, session_id: &str, now: i64) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_owned(),
            iat: now,
            exp: now + self.ttl_secs,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            typ: ACCESS.into(),
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies signature, algorithm, expiry, issuer, audience, purpose and lifetime (at most the configured
    /// one).
    pub fn verify(&self, token: &str) -> Option<Claims> {
        self.verify_at(token, jsonwebtoken::get_current_timestamp())
    }

    /// `verify` at `now` (seconds since the epoch) for a remembered token; a new token is decoded and
    /// checked by `jsonwebtoken` against the system clock.
    fn verify_at(&self, token: &str, now: u64) -> Option<Claims> {
        let live =
            |c: &Claims| u64::try_from(c.exp).is_ok_and(|exp| exp + self.validation.leeway > now);
        {
            let known = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = known.get(token) {
                return live(c).then(|| c.clone());
            }
        }
        let data = decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        // A token living longer than this server issues is refused even when correctly signed (a key that
        // leaked, or a token from a laxer configuration, must not mint long-lived access).
        if data.claims.typ != ACCESS || data.claims.exp - data.claims.iat > self.ttl_secs {
            return None;
        }
        let mut known = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= VERIFIED_MAX {
            known.clear();
        }
        known.insert(token.to_owned(), data.claims.clone());
        Some(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"0123456789abcdef0123456789abcdef", 900)
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn round_trip() {
        let t = keys().issue(7, "s1", now()).unwrap();
        let c = keys().verify(&t).unwrap();
        assert_eq!((c.sub.as_str(), c.sid.as_str()), ("7", "s1"));
    }

    #[test]
    fn remembered_tokens_still_expire_and_only_the_exact_token_is_remembered() {
        let k = keys();
        let t = k.issue(7, "s1", now()).unwrap();
        let at = u64::try_from(now()).unwrap();
        assert!(k.verify_at(&t, at).is_some());
        // Remembered now: still refused once past its expiry (900 s and the 5 s leeway).
        assert!(k.verify_at(&t, at + 10).is_some());
        assert!(
            k.verify_at(&t, at + 906).is_none(),
            "expired while remembered"
        );
        // A token differing from a remembered one in its signature is decoded, and refused.
        let i = t.len() - 10;
        let flipped = if &t[i..=i] == "A" { "B" } else { "A" };
        let forged = format!("{}{flipped}{}", &t[..i], &t[i + 1..]);
        assert!(k.verify_at(&forged, at).is_none());
        assert!(
            k.verify_at(&t, at).is_some(),
            "the real one is still remembered"
        );
    }

    #[test]
    fn a_token_living_longer_than_configured_is_refused_though_correctly_signed() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let lax = JwtKeys::new(secret, 3600);
        let strict = JwtKeys::new(secret, 900);
        let long = lax.issue(7, "s", now()).unwrap();
        assert!(lax.verify(&long).is_some());
        assert!(strict.verify(&long).is_none(), "an hour-long token");
        assert!(
            strict
                .verify(&strict.issue(7, "s", now()).unwrap())
                .is_some()
        );
    }

    #[test]
    fn rejects_expired_tampered_foreign_and_alg_none() {
        let k = keys();
        assert!(
            k.verify(&k.issue(7, "s", now() - 2000).unwrap()).is_none(),
            "expired"
        );
        let t = k.issue(7, "s", now()).unwrap();
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.replace("\"sub\":\"7\"", "\"sub\":\"1\""));
        assert!(k.verify(&parts.join(".")).is_none(), "tampered");
        let other = JwtKeys::new(b"another-secret-another-secret-xx", 900);
        assert!(
            k.verify(&other.issue(7, "s", now()).unwrap()).is_none(),
            "foreign key"
        );
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        assert!(
            k.verify(&format!("{none_header}.{}.", parts[1])).is_none(),
            "alg none"
        );
    }
}
