//! The image step of a release, behind a small interface: something that builds the image and
//! pushes it, returning the pinned reference. The daemonless builder (crate `ocibuild`) plugs
//! in here; `release --image REF@sha256:...` skips it and deploys an image pushed before.

mod oci;
mod registry;

pub use oci::OciPublisher;
pub use registry::{RegistryTarget, TargetError, resolve_target};

use crate::progress::Progress;

/// An image in a registry, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishedImage {
    /// `registry/repository@sha256:...`: what the task definition names.
    pub reference: String,
    /// `sha256:...`
    pub digest: String,
}

impl PublishedImage {
    /// Parses `REF@sha256:HEX` (what `--image` takes). A tag alone is refused: a task definition
    /// must say exactly what runs.
    pub fn parse_pinned(reference: &str) -> Result<Self, ImageError> {
        let digest = reference
            .rsplit_once('@')
            .map(|(_, d)| d)
            .filter(|d| {
                d.strip_prefix("sha256:")
                    .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            })
            .ok_or_else(|| ImageError::NotPinned(reference.to_string()))?;
        Ok(Self {
            reference: reference.to_string(),
            digest: digest.to_string(),
        })
    }
}

/// Builds the service image and pushes it, reporting to `progress`.
pub trait ImagePublisher {
    /// Builds the image locally and returns its digest (`sha256:...`) without pushing.
    fn build(&self, progress: &Progress) -> impl Future<Output = Result<String, ImageError>>;
    /// Builds (if not done yet) and pushes to `target`, skipping blobs the registry has.
    fn publish(
        &self,
        target: &RegistryTarget,
        progress: &Progress,
    ) -> impl Future<Output = Result<PublishedImage, ImageError>>;
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("--image {0:?} is not pinned by digest; pass REPOSITORY@sha256:<64 hex digits>")]
    NotPinned(String),
    #[error("building the image failed: {0}")]
    Build(String),
    #[error("pushing the image failed: {0}")]
    Push(String),
    #[error("registry credentials: {0}")]
    Credentials(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_digest_references_are_accepted() {
        let d = format!("sha256:{}", "a".repeat(64));
        let img = PublishedImage::parse_pinned(&format!("127.0.0.1:5000/dp@{d}")).unwrap();
        assert_eq!(img.digest, d);
        assert!(PublishedImage::parse_pinned("127.0.0.1:5000/dp:latest").is_err());
        assert!(PublishedImage::parse_pinned("dp@sha256:abc").is_err());
    }
}
