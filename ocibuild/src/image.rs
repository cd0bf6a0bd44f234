//! What goes into the image (`ImageSpec`) and the assembled, content-addressed result (`Image`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use oci_client::config::{Architecture, Config, ConfigFile, History, Os, Rootfs};
use oci_client::manifest::{
    IMAGE_CONFIG_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest,
};
use serde::Serialize;

use crate::digest::sha256_digest;
use crate::elf;
use crate::error::BuildError;
use crate::layer::{LAYER_MEDIA_TYPE, Layer, LayerBuilder};

/// Where Debian-family systems keep the CA bundle; rustls-native-certs and OpenSSL look there.
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The unprivileged account the container runs as (distroless' `nonroot`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Default for User {
    fn default() -> Self {
        Self {
            name: "nonroot".into(),
            uid: 65532,
            gid: 65532,
        }
    }
}

/// A file copied from the build host into the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraFile {
    pub source: PathBuf,
    /// Absolute path inside the image.
    pub path: String,
    pub mode: u32,
}

/// Everything that decides the image's bytes. Equal specs over equal files give equal digests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// A statically linked Linux x86-64 executable (checked by `assemble`).
    pub binary: PathBuf,
    /// Where the binary lands in the image.
    pub binary_path: String,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub exposed_ports: Vec<u16>,
    pub user: User,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub workdir: String,
    /// Copied into the image at `CA_BUNDLE_PATH` when set; TLS clients that read the system
    /// store (rustls-native-certs, used by the AWS SDK) find nothing in an empty image otherwise.
    pub ca_certificates: Option<PathBuf>,
    pub extra_files: Vec<ExtraFile>,
    pub stop_signal: Option<String>,
    /// Seconds since the epoch written as every file's mtime and the config's `created`.
    pub created_epoch: u64,
}

impl ImageSpec {
    /// Defaults for a service binary: runs as 65532:65532 from `/usr/local/bin/NAME`, exposes
    /// 8080, carries the host's CA bundle if it has one, and takes its timestamp from
    /// `SOURCE_DATE_EPOCH` (0 when unset) so rebuilds are byte-identical.
    pub fn for_binary(binary: impl Into<PathBuf>) -> Self {
        let binary = binary.into();
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".into());
        let binary_path = format!("/usr/local/bin/{name}");
        let ca = Path::new(CA_BUNDLE_PATH);
        let ca_certificates = ca.is_file().then(|| ca.to_path_buf());
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into());
        if ca_certificates.is_some() {
            env.insert("SSL_CERT_FILE".into(), CA_BUNDLE_PATH.into());
        }
        Self {
            binary,
            entrypoint: vec![binary_path.clone()],
            binary_path,
            cmd: Vec::new(),
            exposed_ports: vec![8080],
            user: User::default(),
            env,
            labels: BTreeMap::new(),
            workdir: format!("/home/{}", User::default().name),
            ca_certificates,
            extra_files: Vec::new(),
            stop_signal: Some("SIGTERM".into()),
            created_epoch: source_date_epoch(),
        }
    }
}

/// `SOURCE_DATE_EPOCH` (the reproducible-builds convention) or 0.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A blob that is not a layer: the config or the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub data: Bytes,
}

impl Blob {
    fn new(media_type: &str, data: Vec<u8>) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: sha256_digest(&data),
            data: Bytes::from(data),
        }
    }
}

/// An assembled image, ready to push or to write as an OCI layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Base files first (users, CA bundle, /tmp), then the application; the base layer rarely
    /// changes, so registries usually have it already.
    pub layers: Vec<Layer>,
    pub config: Blob,
    pub manifest: Blob,
}

impl Image {
    /// The manifest digest: what a task definition pins (`repo@sha256:...`).
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// Bytes a registry stores and a runtime downloads: compressed layers plus the config.
    pub fn compressed_size(&self) -> u64 {
        self.layers.iter().map(|l| l.data.len() as u64).sum::<u64>() + self.config.data.len() as u64
    }
}

/// Reads the binary and extra files named by `spec` and assembles the image.
#[tracing::instrument(skip_all, fields(binary = %spec.binary.display()))]
pub fn assemble(spec: &ImageSpec) -> Result<Image, BuildError> {
    validate(spec)?;
    let binary = read(&spec.binary)?;
    elf::check_static_executable(&spec.binary, &binary)?;

    let base = base_layer(spec)?.finish(spec.created_epoch, "ocibuild: users, CA bundle, /tmp")?;

    let mut app = LayerBuilder::new();
    app.file(&spec.binary_path, 0o755, binary)?;
    for extra in &spec.extra_files {
        app.file(&extra.path, extra.mode, read(&extra.source)?)?;
    }
    let app = app.finish(
        spec.created_epoch,
        &format!("ocibuild: {}", spec.binary_path),
    )?;

    let layers = vec![base, app];
    let config = Blob::new(
        IMAGE_CONFIG_MEDIA_TYPE,
        canonical_json(&config_file(spec, &layers), "config")?,
    );
    let manifest = Blob::new(
        OCI_IMAGE_MEDIA_TYPE,
        canonical_json(&manifest(&layers, &config), "manifest")?,
    );
    Ok(Image {
        layers,
        config,
        manifest,
    })
}

fn validate(spec: &ImageSpec) -> Result<(), BuildError> {
    if spec.user.uid == 0 {
        return Err(BuildError::InvalidSpec(
            "the image must not run as root (uid 0); use an unprivileged uid such as 65532".into(),
        ));
    }
    if spec.entrypoint.is_empty() && spec.cmd.is_empty() {
        return Err(BuildError::InvalidSpec(
            "no entrypoint and no cmd: the container would have nothing to run".into(),
        ));
    }
    let bad_name = |n: &str| n.is_empty() || n.contains([':', '\n']);
    if bad_name(&spec.user.name) {
        return Err(BuildError::InvalidSpec(format!(
            "user name `{}` must be non-empty without `:` or newlines",
            spec.user.name
        )));
    }
    if let Some(key) = spec.env.keys().find(|k| k.is_empty() || k.contains('=')) {
        return Err(BuildError::InvalidSpec(format!(
            "environment variable name `{key}` must be non-empty and contain no `=`"
        )));
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn base_layer(spec: &ImageSpec) -> Result<LayerBuilder, BuildError> {
    let User { name, uid, gid } = &spec.user;
    let home = format!("/home/{name}");
    let mut base = LayerBuilder::new();
    base.file(
        "/etc/passwd",
        0o644,
        format!(
            "root:x:0:0:root:/root:/sbin/nologin\n{name}:x:{uid}:{gid}:{name}:{home}:/sbin/nologin\n"
        ),
    )?;
    base.file("/etc/group", 0o644, format!("root:x:0:\n{name}:x:{gid}:\n"))?;
    // Without this, glibc's resolver order is undefined in an image that has no /etc at all.
    base.file("/etc/nsswitch.conf", 0o644, "hosts: files dns\n")?;
    base.dir("/tmp", 0o1777, 0, 0)?;
    base.dir(&home, 0o755, u64::from(*uid), u64::from(*gid))?;
    if spec.workdir != home && spec.workdir != "/" {
        base.dir(&spec.workdir, 0o755, 0, 0)?;
    }
    if let Some(ca) = &spec.ca_certificates {
        base.file(CA_BUNDLE_PATH, 0o644, read(ca)?)?;
    }
    Ok(base)
}

fn config_file(spec: &ImageSpec, layers: &[Layer]) -> ConfigFile {
    let created: Option<DateTime<Utc>> =
        DateTime::from_timestamp(i64::try_from(spec.created_epoch).unwrap_or(0), 0);
    let exposed: HashSet<String> = spec
        .exposed_ports
        .iter()
        .map(|p| format!("{p}/tcp"))
        .collect();
    let labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    ConfigFile {
        created,
        author: None,
        architecture: Architecture::Amd64,
        os: Os::Linux,
        config: Some(Config {
            user: Some(format!("{}:{}", spec.user.uid, spec.user.gid)),
            exposed_ports: Some(exposed),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: Some(spec.cmd.clone()),
            entrypoint: Some(spec.entrypoint.clone()),
            volumes: None,
            working_dir: Some(spec.workdir.clone()),
            labels: Some(labels),
            stop_signal: spec.stop_signal.clone(),
        }),
        rootfs: Rootfs {
            r#type: "layers".into(),
            diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        },
        history: Some(
            layers
                .iter()
                .map(|l| History {
                    created,
                    author: None,
                    created_by: Some(l.created_by.clone()),
                    comment: None,
                    empty_layer: None,
                })
                .collect(),
        ),
    }
}

fn manifest(layers: &[Layer], config: &Blob) -> OciImageManifest {
    let descriptor = |media_type: &str, digest: &str, size: usize| OciDescriptor {
        media_type: media_type.to_string(),
        digest: digest.to_string(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        ..Default::default()
    };
    OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: descriptor(&config.media_type, &config.digest, config.data.len()),
        layers: layers
            .iter()
            .map(|l| descriptor(LAYER_MEDIA_TYPE, &l.digest, l.data.len()))
            .collect(),
        subject: None,
        artifact_type: None,
        annotations: None,
    }
}

/// The config types hold hash sets and maps; canonical JSON (sorted keys, no whitespace) makes
/// their iteration order irrelevant to the digest.
fn canonical_json<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, BuildError> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, olpc_cjson::CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .map_err(|source| BuildError::Encode { what, source })?;
    Ok(out)
}
