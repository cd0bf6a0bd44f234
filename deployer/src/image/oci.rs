//! The image step done by crate `ocibuild`: a static build of the service, assembled into a
//! reproducible OCI image, pushed over the distribution API (blobs the registry has are skipped).

use std::cell::Cell;
use std::path::PathBuf;

use tokio::sync::OnceCell;

use super::{ImageError, ImagePublisher, PublishedImage, RegistryTarget};
use crate::config::ImageSection;
use crate::progress::Progress;

pub struct OciPublisher {
    build: ocibuild::StaticBuild,
    /// Built once per process: `plan` or `push` after `build` reuse it.
    image: OnceCell<ocibuild::Image>,
}

impl OciPublisher {
    pub fn new(section: &ImageSection) -> Self {
        let target_dir = section.target_dir.clone().unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| section.context.join("target"))
                .join("static")
        });
        Self {
            build: ocibuild::StaticBuild::new(&section.context, &section.package, &section.binary)
                .target_dir(target_dir),
            image: OnceCell::new(),
        }
    }

    async fn image(&self, progress: &Progress) -> Result<&ocibuild::Image, ImageError> {
        self.image
            .get_or_try_init(|| async {
                progress.step(format!("building {} (static, release)", self.build.bin));
                let image = self.build_and_assemble(progress).await?;
                progress.done(format!(
                    "built image {} ({})",
                    image.digest(),
                    indicatif::HumanBytes(image.compressed_size())
                ));
                Ok(image)
            })
            .await
    }

    /// Runs cargo and the image assembly on a blocking thread: cargo takes minutes on a cold
    /// cache and the assembly compresses layers, and neither may hold a runtime worker (nor
    /// panic on a current-thread runtime, as `block_in_place` does). The thread owns its inputs;
    /// cargo's lines come back over a channel so `progress` stays on this task.
    async fn build_and_assemble(&self, progress: &Progress) -> Result<ocibuild::Image, ImageError> {
        let build = self.build.clone();
        let (lines, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
        let task = tokio::task::spawn_blocking(move || {
            let binary = ocibuild::build_static_binary(&build, |line| {
                let line = line.trim();
                if !line.is_empty() {
                    // The receiver outlives the task unless the caller gave up; then nobody
                    // is watching the lines.
                    let _ = lines.send(line.to_string());
                }
            })
            .map_err(|e| ImageError::Build(e.to_string()))?;
            ocibuild::assemble(&ocibuild::ImageSpec::for_binary(binary))
                .map_err(|e| ImageError::Build(e.to_string()))
        });
        // Ends when the blocking closure returns and drops the sender.
        while let Some(line) = received.recv().await {
            progress.step(format!("cargo: {line}"));
        }
        match task.await {
            Ok(result) => result,
            // A panic in the build is a bug; it propagates as it did when the build ran here.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ImageError::Build(e.to_string())),
        }
    }
}

impl ImagePublisher for OciPublisher {
    async fn build(&self, progress: &Progress) -> Result<String, ImageError> {
        Ok(self.image(progress).await?.digest().to_string())
    }

    #[tracing::instrument(skip_all, fields(registry = %target.host, repository = %target.repository))]
    async fn publish(
        &self,
        target: &RegistryTarget,
        progress: &Progress,
    ) -> Result<PublishedImage, ImageError> {
        let image = self.image(progress).await?;
        let auth = match (&target.username, &target.password) {
            (Some(u), Some(p)) => ocibuild::Auth::basic(u.clone(), p.clone()),
            _ => ocibuild::Auth::Anonymous,
        };
        // A tag derived from the content: pushing the same image again is a no-op, and
        // repositories with immutable tags accept it.
        let hex = image.digest().trim_start_matches("sha256:");
        let reference = format!(
            "{}:deployer-{}",
            target.repository_url(),
            &hex[..hex.len().min(16)]
        );
        // The callback is `Fn`: running totals live in cells.
        let (total, done) = (Cell::new(0), Cell::new(0));
        let pushed = ocibuild::push(image, &reference, &auth, target.insecure, |p| match p {
            ocibuild::PushProgress::Started { total_bytes, .. } => {
                total.set(total_bytes);
                progress.transfer("push", 0, total_bytes);
            }
            ocibuild::PushProgress::BlobSkipped { size, .. }
            | ocibuild::PushProgress::BlobUploaded { size, .. } => {
                done.set(done.get() + size);
                progress.transfer("push", done.get(), total.get());
            }
            ocibuild::PushProgress::BlobProgress { sent, .. } => {
                progress.transfer("push", done.get() + sent, total.get())
            }
            ocibuild::PushProgress::ManifestPushed { .. } => {}
        })
        .await
        .map_err(|e| ImageError::Push(e.to_string()))?;
        progress.done(format!(
            "pushed {} ({} blobs uploaded, {} already there)",
            pushed.reference_with_digest, pushed.uploaded_blobs, pushed.skipped_blobs
        ));
        Ok(PublishedImage {
            reference: pushed.reference_with_digest,
            digest: pushed.digest,
        })
    }
}
