//! Counts and hashes a body as it streams through, and enforces the size limit, so that every
//! backend computes size and SHA-256 the same way without holding the body.

use sha2::{Digest, Sha256};

use super::{StorageError, StoredObject};

pub(super) struct Meter {
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl Meter {
    pub(super) fn new(limit: u64) -> Self {
        Self {
            hasher: Sha256::new(),
            size: 0,
            limit,
        }
    }

    /// Accounts for `chunk`; fails as soon as the total passes the limit.
    pub(super) fn observe(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            return Err(StorageError::TooLarge { limit: self.limit });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    pub(super) fn finish(self) -> StoredObject {
        StoredObject {
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_counts_across_chunks() {
        let mut meter = Meter::new(10);
        meter.observe(b"ab").unwrap();
        meter.observe(b"c").unwrap();
        let stored = meter.finish();
        assert_eq!(stored.size, 3);
        assert_eq!(
            stored.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn fails_past_the_limit_not_at_it() {
        let mut meter = Meter::new(4);
        meter.observe(b"abcd").unwrap();
        assert!(matches!(
            meter.observe(b"e"),
            Err(StorageError::TooLarge { limit: 4 })
        ));
    }
}
