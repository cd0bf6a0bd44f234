//! Writes an image as an OCI image layout directory (`skopeo copy oci:DIR ...`, `podman load`).

use std::path::Path;

use serde_json::json;

use crate::error::BuildError;
use crate::image::Image;

/// Writes `oci-layout`, `index.json` and `blobs/sha256/*` into `dir` (created if missing).
/// `tag` becomes the `org.opencontainers.image.ref.name` annotation.
#[tracing::instrument(skip(image), fields(digest = %image.digest()))]
pub fn write_oci_layout(image: &Image, dir: &Path, tag: &str) -> Result<(), BuildError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BuildError::Layout { path, source }
    };
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    let all = image.layers.iter().map(|l| (&l.digest, &l.data)).chain([
        (&image.config.digest, &image.config.data),
        (&image.manifest.digest, &image.manifest.data),
    ]);
    for (digest, data) in all {
        let hex = digest.trim_start_matches("sha256:");
        let path = blobs.join(hex);
        std::fs::write(&path, data).map_err(io(&path))?;
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": image.manifest.media_type,
            "digest": image.manifest.digest,
            "size": image.manifest.data.len(),
            "annotations": { "org.opencontainers.image.ref.name": tag },
        }],
    });
    let write_json = |name: &str, value: &serde_json::Value| {
        let path = dir.join(name);
        let data = serde_json::to_vec_pretty(value).map_err(|source| BuildError::Encode {
            what: "OCI layout",
            source,
        })?;
        std::fs::write(&path, data).map_err(io(&path))
    };
    write_json("index.json", &index)?;
    write_json("oci-layout", &json!({ "imageLayoutVersion": "1.0.0" }))
}
