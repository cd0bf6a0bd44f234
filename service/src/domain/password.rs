//! Passwords: 10 to 256 characters (OWASP: length over composition rules; the upper bound keeps
//! hashing cost bounded). Hashed with Argon2id at OWASP's minimum parameters or above, always off
//! the async runtime (a hash takes tens of milliseconds of CPU).

use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::OwnedSemaphorePermit;

pub const MIN_CHARS: usize = 10;
pub const MAX_CHARS: usize = 256;

/// A password that satisfies the rules. Never printed: `Debug` is redacted.
#[derive(Clone)]
pub struct Password(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password must be at least {MIN_CHARS} characters long")]
    TooShort,
    #[error("password must be at most {MAX_CHARS} characters long")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed: {0}")]
    Task(String),
}

/// Permission to compute one hash (a slot of the replica's hashing limit, `limits::Limits`). Held
/// until the hash is done: it moves into the blocking task, so a request that is dropped while
/// its hash runs still holds the slot until the memory is freed.
#[derive(Debug)]
pub struct HashPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl HashPermit {
    pub fn new(permit: OwnedSemaphorePermit) -> Self {
        Self(permit)
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// OWASP Password Storage Cheat Sheet, Argon2id minimum: m = 19 MiB, t = 2, p = 1.
fn hasher() -> Argon2<'static> {
    const MEMORY_KIB: u32 = 19 * 1024;
    const ITERATIONS: u32 = 2;
    const PARALLELISM: u32 = 1;
    // These constants are within argon2's bounds, so `Params::new` cannot fail with them.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Password {
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if chars < MIN_CHARS {
            return Err(PasswordError::TooShort);
        }
        if chars > MAX_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw.to_string()))
    }

    /// Argon2id PHC string, computed on the blocking pool.
    pub async fn hash(self, permit: HashPermit) -> Result<String, PasswordError> {
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_blocking(&self.0)
        })
        .await
        .map_err(|e| PasswordError::Task(e.to_string()))?
    }
}

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A hash of a random password, verified against when the username does not exist so that
/// "unknown user" and "wrong password" take the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_blocking(&uuid::Uuid::new_v4().to_string()).unwrap_or_else(|_| String::new())
    })
}

/// Checks `candidate` against `stored` (a PHC string), or against a dummy hash when there is no
/// user, on the blocking pool. Any malformed input counts as a mismatch. Accepts any length up to
/// a bound, so a login with a password that could never have been registered still costs a hash.
pub async fn verify(
    candidate: String,
    stored: Option<String>,
    permit: HashPermit,
) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let candidate: String = candidate.chars().take(MAX_CHARS + 1).collect();
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let matches = hasher()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok();
        exists && matches
    })
    .await
    .map_err(|e| PasswordError::Task(e.to_string()))
}

/// Computes the dummy hash now, so the first login with an unknown name is not slower.
pub fn warm_up() {
    let _ = dummy_hash();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_rules() {
        assert_eq!(
            Password::parse("short").unwrap_err(),
            PasswordError::TooShort
        );
        assert_eq!(
            Password::parse(&"x".repeat(257)).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(Password::parse(&"x".repeat(256)).is_ok());
        assert!(format!("{:?}", Password::parse("secret-password").unwrap()).contains("redacted"));
    }

    fn permit() -> HashPermit {
        let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(1));
        HashPermit::new(semaphore.try_acquire_owned().unwrap())
    }

    #[tokio::test]
    async fn hashes_with_argon2id_and_verifies() {
        let hash = Password::parse("correct horse battery")
            .unwrap()
            .hash(permit())
            .await
            .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify("correct horse battery".into(), Some(hash.clone()), permit())
                .await
                .unwrap()
        );
        assert!(
            !verify("wrong horse battery".into(), Some(hash), permit())
                .await
                .unwrap()
        );
        assert!(
            !verify("anything at all".into(), None, permit())
                .await
                .unwrap()
        );
    }
}
