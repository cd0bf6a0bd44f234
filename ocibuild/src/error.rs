//! The two error boundaries of this crate: building an image, and pushing it.

use std::path::PathBuf;

/// Why a binary or an image could not be built. Messages say what is wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot start cargo ({0}); is the Rust toolchain installed and `cargo` on PATH?")]
    CargoNotStarted(#[source] std::io::Error),
    #[error(
        "cargo build failed ({status}); the last lines were:\n{tail}\nfix the build error above and run again"
    )]
    CargoFailed { status: String, tail: String },
    #[error(
        "cargo finished but reported no executable `{bin}` for package `{package}`; check the package and binary names"
    )]
    BinaryNotReported { package: String, bin: String },
    #[error(
        "{path} is dynamically linked (interpreter {interpreter}); build it with RUSTFLAGS=\"-C target-feature=+crt-static\" for the x86_64-unknown-linux-gnu target"
    )]
    NotStatic { path: PathBuf, interpreter: String },
    #[error("{path} is not a Linux x86-64 ELF executable: {reason}")]
    NotAnExecutable { path: PathBuf, reason: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid path in image `{0}`: paths must be absolute, without `.` or `..`")]
    InvalidPath(String),
    #[error("invalid image spec: {0}")]
    InvalidSpec(String),
    #[error("cannot write image layer: {0}")]
    Layer(#[source] std::io::Error),
    #[error("cannot encode image {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write OCI layout to {path}: {source}")]
    Layout {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a push failed. The registry's own words are kept; secrets never appear.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(
        "invalid image reference `{reference}`: {reason}; expected REGISTRY/REPOSITORY[:TAG], e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/data-processor:v1"
    )]
    InvalidReference { reference: String, reason: String },
    #[error(
        "registry {registry} rejected the credentials for user `{username}` (HTTP 401); check the username and password (for ECR: log in again, tokens expire after 12 hours)"
    )]
    Unauthorized { registry: String, username: String },
    #[error(
        "registry {registry} refused access to repository `{repository}` (HTTP 403); the credentials lack push permission there"
    )]
    Forbidden {
        registry: String,
        repository: String,
    },
    #[error("cannot reach registry {registry}: {reason}; check the address{hint}")]
    Unreachable {
        registry: String,
        reason: String,
        hint: &'static str,
    },
    #[error("registry {registry} failed while {step}: {source}")]
    Registry {
        registry: String,
        step: String,
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
}
