//! Content addresses in the `sha256:<hex>` form the OCI specs use.

use sha2::{Digest, Sha256};

pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
