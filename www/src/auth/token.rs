//! Bearer tokens: 256 random bits as text, and the SHA-256 the server stores instead of the
//! token itself. A leaked database holds no usable token; a token has too much entropy to be
//! guessed from its hash, so an unsalted fast hash is enough (passwords need PBKDF2, tokens do
//! not). Randomness comes in from the caller (sans-IO).

use super::hex;
use sha2::{Digest, Sha256};

/// What every issued token starts with, so a leaked one is easy to recognise.
pub const TOKEN_PREFIX: &str = "outbox_";
/// Random bytes per token.
pub const TOKEN_BYTES: usize = 32;
/// The longest `Authorization` token looked up; longer ones are refused unread.
pub const MAX_TOKEN_LEN: usize = 256;

/// A new token from `random` bytes: `outbox_` and 64 hex digits.
pub fn token_from(random: [u8; TOKEN_BYTES]) -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(&random))
}

/// The stored form of `token`: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_hex_and_stored_as_sha256() {
        let t = token_from([0xab; TOKEN_BYTES]);
        assert_eq!(t.len(), TOKEN_PREFIX.len() + 64);
        assert!(t.starts_with("outbox_abab"));
        assert_ne!(token_from([0; TOKEN_BYTES]), t);
        // FIPS 180-2 test vector.
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
