//! Password hashes: PBKDF2-HMAC-SHA256 with a random salt per user, stored as tagged text
//! `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>` so the scheme and its cost can change
//! without breaking stored rows. Salts come in from the caller (sans-IO).

use super::hex;
use sha2::Sha256;

/// The tag of the only scheme this build writes and reads.
pub const SCHEME: &str = "pbkdf2-sha256";
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
/// Derived key length in bytes.
const HASH_LEN: usize = 32;

/// Why a stored password hash cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// A scheme tag this build does not know.
    #[error("unsupported password scheme {0:?}")]
    Unsupported(String),
    /// The right tag, but the fields do not parse.
    #[error("malformed password hash: {0}")]
    Malformed(&'static str),
}

/// A salted, iterated password hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
    salt: [u8; SALT_LEN],
    hash: [u8; HASH_LEN],
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordHash({SCHEME}, {} iterations)", self.iterations)
    }
}

fn derive(password: &str, salt: &[u8; SALT_LEN], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

impl PasswordHash {
    /// Hashes `password` with `salt` (random, one per user) and `iterations` rounds (at least 1).
    pub fn new(password: &str, salt: [u8; SALT_LEN], iterations: u32) -> Self {
        let iterations = iterations.max(1);
        Self {
            iterations,
            salt,
            hash: derive(password, &salt, iterations),
        }
    }

    /// Whether `password` is the one hashed, compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        hex::eq_constant_time(&derive(password, &self.salt, self.iterations), &self.hash)
    }

    /// The stored text.
    pub fn encode(&self) -> String {
        format!(
            "{SCHEME}${}${}${}",
            self.iterations,
            hex::encode(&self.salt),
            hex::encode(&self.hash)
        )
    }

    /// Reads the stored text.
    pub fn decode(text: &str) -> Result<Self, PasswordError> {
        let mut parts = text.split('$');
        let scheme = parts.next().unwrap_or_default();
        if scheme != SCHEME {
            return Err(PasswordError::Unsupported(scheme.to_owned()));
        }
        let (Some(iterations), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(PasswordError::Malformed("expected 4 fields"));
        };
        let iterations = iterations
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(PasswordError::Malformed("iterations"))?;
        Ok(Self {
            iterations,
            salt: hex::decode_array(salt).ok_or(PasswordError::Malformed("salt"))?,
            hash: hex::decode_array(hash).ok_or(PasswordError::Malformed("hash"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_right_password_verifies_and_others_do_not() {
        let h = PasswordHash::new("alice", [7; SALT_LEN], 10);
        assert!(h.verify("alice"));
        assert!(!h.verify("Alice"));
        assert!(!h.verify(""));
        let salted = PasswordHash::new("alice", [8; SALT_LEN], 10);
        assert_ne!(h.encode(), salted.encode(), "the salt changes the hash");
    }

    #[test]
    fn it_round_trips_through_its_tagged_text() {
        let h = PasswordHash::new("pw", [1; SALT_LEN], 3);
        let text = h.encode();
        assert!(text.starts_with("pbkdf2-sha256$3$01010101"), "{text}");
        assert_eq!(PasswordHash::decode(&text), Ok(h));
    }

    #[test]
    fn known_pbkdf2_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", 1), first 32 bytes.
        let mut out = [0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(b"passwd", b"salt", 1, &mut out);
        assert_eq!(
            hex::encode(&out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }

    #[test]
    fn unknown_or_broken_text_is_a_typed_error() {
        assert_eq!(
            PasswordHash::decode("argon2id$x"),
            Err(PasswordError::Unsupported("argon2id".into()))
        );
        for bad in [
            "pbkdf2-sha256",
            "pbkdf2-sha256$0$00$00",
            "pbkdf2-sha256$x$00$00",
            "pbkdf2-sha256$1$zz$00",
            "pbkdf2-sha256$1$0101$0101",
            "pbkdf2-sha256$1$a$b$c",
        ] {
            assert!(
                matches!(PasswordHash::decode(bad), Err(PasswordError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
