//! Pushes an assembled image over the OCI distribution API, skipping blobs the registry has.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::error::PushError;
use crate::image::Image;

/// Progress is reported after each piece of this size is handed to the HTTP body.
const PROGRESS_CHUNK: usize = 256 * 1024;

/// Registry credentials. ECR's GetAuthorizationToken decodes to `Basic("AWS", token)`.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    Basic { username: String, password: String },
}

impl Auth {
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    fn username(&self) -> &str {
        match self {
            Auth::Anonymous => "(anonymous)",
            Auth::Basic { username, .. } => username,
        }
    }
}

/// Never prints the password.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

/// What the push is doing, for progress bars and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushProgress {
    /// Before any transfer: how many blobs (layers + config) and bytes the image has.
    Started {
        blobs: usize,
        total_bytes: u64,
    },
    /// The registry already had this blob; nothing was sent.
    BlobSkipped {
        digest: String,
        size: u64,
    },
    /// `sent` of `size` bytes of this blob handed to the connection so far.
    BlobProgress {
        digest: String,
        sent: u64,
        size: u64,
    },
    BlobUploaded {
        digest: String,
        size: u64,
    },
    ManifestPushed {
        digest: String,
    },
}

/// The outcome of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// Manifest digest, `sha256:...`.
    pub digest: String,
    /// `registry/repository@sha256:...`, what a task definition should name.
    pub reference_with_digest: String,
    pub uploaded_blobs: usize,
    pub uploaded_bytes: u64,
    pub skipped_blobs: usize,
    pub skipped_bytes: u64,
}

/// Pushes `image` to `reference` (`registry/repository[:tag]`; the tag defaults to `latest`).
///
/// Each blob is checked with a HEAD request first and only sent when missing, so a release
/// that changed only the binary uploads only that layer and the config. `insecure_http` speaks
/// plain HTTP, for a registry on loopback in tests.
#[tracing::instrument(skip(image, auth, progress), fields(digest = %image.digest()))]
pub async fn push(
    image: &Image,
    reference: &str,
    auth: &Auth,
    insecure_http: bool,
    progress: impl Fn(PushProgress),
) -> Result<Pushed, PushError> {
    let target: Reference =
        reference
            .parse()
            .map_err(|e: oci_client::ParseError| PushError::InvalidReference {
                reference: reference.to_string(),
                reason: e.to_string(),
            })?;
    let ctx = Context {
        registry: target.registry().to_string(),
        repository: target.repository().to_string(),
        username: auth.username().to_string(),
        insecure_http,
    };
    let client = Client::new(ClientConfig {
        protocol: if insecure_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        // ECR answers chunked PATCH uploads with 201 and drops every chunk after the first;
        // one PUT per blob works everywhere.
        use_monolithic_push: true,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    });
    let registry_auth = match auth {
        Auth::Anonymous => RegistryAuth::Anonymous,
        Auth::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
    };
    client
        .auth(&target, &registry_auth, RegistryOperation::Push)
        .await
        .map_err(|e| ctx.classify(e, "authenticating"))?;

    let blobs: Vec<(&str, &Bytes)> = image
        .layers
        .iter()
        .map(|l| (l.digest.as_str(), &l.data))
        .chain(std::iter::once((
            image.config.digest.as_str(),
            &image.config.data,
        )))
        .collect();
    progress(PushProgress::Started {
        blobs: blobs.len(),
        total_bytes: blobs.iter().map(|(_, d)| d.len() as u64).sum(),
    });

    let mut pushed = Pushed {
        digest: image.digest().to_string(),
        reference_with_digest: format!("{}/{}@{}", ctx.registry, ctx.repository, image.digest()),
        uploaded_blobs: 0,
        uploaded_bytes: 0,
        skipped_blobs: 0,
        skipped_bytes: 0,
    };
    for (digest, data) in blobs {
        let size = data.len() as u64;
        let exists = client
            .blob_exists(&target, digest)
            .await
            .map_err(|e| ctx.classify(e, &format!("checking blob {digest}")))?;
        if exists {
            pushed.skipped_blobs += 1;
            pushed.skipped_bytes += size;
            progress(PushProgress::BlobSkipped {
                digest: digest.to_string(),
                size,
            });
            continue;
        }
        upload_blob(&client, &target, digest, data.clone(), &progress)
            .await
            .map_err(|e| ctx.classify(e, &format!("uploading blob {digest}")))?;
        pushed.uploaded_blobs += 1;
        pushed.uploaded_bytes += size;
        progress(PushProgress::BlobUploaded {
            digest: digest.to_string(),
            size,
        });
    }

    let content_type = oci_client::manifest::OCI_IMAGE_MEDIA_TYPE
        .parse()
        .map_err(|_| {
            ctx.classify(
                OciDistributionError::GenericError(None),
                "preparing the manifest",
            )
        })?;
    client
        .push_manifest_raw(&target, image.manifest.data.clone(), content_type)
        .await
        .map_err(|e| ctx.classify(e, "pushing the manifest"))?;
    progress(PushProgress::ManifestPushed {
        digest: image.digest().to_string(),
    });
    tracing::info!(
        uploaded_bytes = pushed.uploaded_bytes,
        skipped_bytes = pushed.skipped_bytes,
        "image pushed"
    );
    Ok(pushed)
}

/// Streams the blob in pieces so progress can follow the bytes as the HTTP body takes them.
async fn upload_blob(
    client: &Client,
    target: &Reference,
    digest: &str,
    data: Bytes,
    progress: &impl Fn(PushProgress),
) -> Result<(), OciDistributionError> {
    let size = data.len() as u64;
    let (sent_tx, mut sent_rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let pieces: Vec<Bytes> = (0..data.len())
        .step_by(PROGRESS_CHUNK)
        .map(|start| data.slice(start..(start + PROGRESS_CHUNK).min(data.len())))
        .collect();
    let mut sent = 0u64;
    let body = futures::stream::iter(pieces).map(move |piece| {
        sent += piece.len() as u64;
        // The receiver lives until the upload finishes; a closed channel only loses progress.
        let _ = sent_tx.send(sent);
        Ok::<_, OciDistributionError>(piece)
    });
    let upload = client.push_blob_stream(target, body, digest, Some(size));
    tokio::pin!(upload);
    loop {
        tokio::select! {
            result = &mut upload => return result.map(|_| ()),
            Some(sent) = sent_rx.recv() => progress(PushProgress::BlobProgress {
                digest: digest.to_string(),
                sent,
                size,
            }),
        }
    }
}

struct Context {
    registry: String,
    repository: String,
    username: String,
    insecure_http: bool,
}

impl Context {
    /// Turns the client's error into one that says what to fix; the registry's status code
    /// decides, since that is what differs between a bad password, a missing permission and a
    /// registry that is down.
    fn classify(&self, err: OciDistributionError, step: &str) -> PushError {
        let status = match &err {
            OciDistributionError::RequestError(e) => {
                if e.is_connect() || e.is_timeout() {
                    return self.unreachable(e);
                }
                e.status().map(|s| s.as_u16())
            }
            OciDistributionError::ServerError { code, .. } => Some(*code),
            OciDistributionError::AuthenticationFailure(_) => Some(401),
            OciDistributionError::UnauthorizedError { .. } => Some(401),
            OciDistributionError::RegistryError { envelope, .. } => {
                envelope.errors.iter().find_map(|e| match e.code {
                    OciErrorCode::Unauthorized => Some(401),
                    OciErrorCode::Denied => Some(403),
                    _ => None,
                })
            }
            _ => None,
        };
        match status {
            Some(401) => PushError::Unauthorized {
                registry: self.registry.clone(),
                username: self.username.clone(),
            },
            Some(403) => PushError::Forbidden {
                registry: self.registry.clone(),
                repository: self.repository.clone(),
            },
            _ => PushError::Registry {
                registry: self.registry.clone(),
                step: step.to_string(),
                source: err,
            },
        }
    }

    fn unreachable(&self, e: &dyn std::error::Error) -> PushError {
        // The innermost cause ("Connection refused", "deadline has elapsed") is the useful part.
        let mut cause = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let reason = cause.to_string();
        PushError::Unreachable {
            registry: self.registry.clone(),
            reason,
            hint: if self.insecure_http {
                ""
            } else {
                " (a plain-HTTP registry on loopback needs insecure HTTP)"
            },
        }
    }
}
