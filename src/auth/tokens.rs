//! Opaque secrets: refresh tokens, session ids and generated passwords. Only SHA-256 digests are stored.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut buf = [0u8; 32];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The stored form of a refresh token.
pub fn digest(token: &str) -> String {
    digest_bytes(token.as_bytes())
}

/// SHA-256 of `bytes`, in lowercase hex.
pub fn digest_bytes(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A readable random password of 12 characters with letters and digits (no look-alikes).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    loop {
        let p: String = (0..12)
            .map(|_| char::from(ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()]))
            .collect();
        if p.chars().any(|c| c.is_ascii_digit()) && p.chars().any(|c| c.is_ascii_alphabetic()) {
            return p;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_digests_stable() {
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
        assert_eq!(digest("a"), digest("a"));
        assert_eq!(digest("a").len(), 64);
        let p = random_password();
        assert_eq!(p.len(), 12);
        let mut e = crate::error::FieldErrors::default();
        crate::domain::user::check_password(&mut e, "p", &p);
        assert!(e.0.is_empty());
    }
}
