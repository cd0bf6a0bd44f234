//! Daemonless container images for a Rust service: build the binary statically, assemble a
//! reproducible OCI image around it, and push it to a registry over the distribution API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ocibuild::{assemble, build_static_binary, push, Auth, ImageSpec, StaticBuild};
//! let binary = build_static_binary(
//!     &StaticBuild::new(".", "data-processor", "data-processor").target_dir("target/static"),
//!     |line| eprintln!("{line}"),
//! )?;
//! let image = assemble(&ImageSpec::for_binary(binary))?;
//! let pushed = push(&image, "127.0.0.1:5000/data-processor:v1",
//!     &Auth::basic("user", "pass"), true, |p| eprintln!("{p:?}")).await?;
//! println!("{}", pushed.reference_with_digest);
//! # Ok(()) }
//! ```

mod build;
mod digest;
mod elf;
mod error;
mod image;
mod layer;
mod layout;
mod push;

pub use build::{STATIC_TARGET, StaticBuild, build_static_binary};
pub use digest::sha256_digest;
pub use error::{BuildError, PushError};
pub use image::{
    Blob, CA_BUNDLE_PATH, ExtraFile, Image, ImageSpec, User, assemble, source_date_epoch,
};
pub use layer::{LAYER_MEDIA_TYPE, Layer, LayerBuilder};
pub use layout::write_oci_layout;
pub use push::{Auth, PushProgress, Pushed, push};
