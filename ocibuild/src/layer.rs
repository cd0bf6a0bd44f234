//! One reproducible image layer: a tar archive with sorted entries, fixed times and owners,
//! compressed with a gzip header that carries no timestamp or host information.

use std::collections::BTreeMap;
use std::io::Write;

use bytes::Bytes;
use flate2::{Compression, GzBuilder};

use crate::digest::sha256_digest;
use crate::error::BuildError;

/// Media type of a gzip-compressed OCI layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A finished layer: what a registry stores (`data`, `digest`) and what the image config lists
/// (`diff_id`, the digest of the uncompressed tar).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub data: Bytes,
    pub digest: String,
    pub diff_id: String,
    /// Uncompressed tar size, for reporting.
    pub tar_size: u64,
    /// What put this layer together, recorded in the config history.
    pub created_by: String,
}

#[derive(Clone, Debug)]
enum Kind {
    Dir,
    File(Bytes),
}

#[derive(Clone, Debug)]
struct Entry {
    kind: Kind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Collects files and directories, then writes them as one deterministic layer.
///
/// Paths are absolute inside the image (`/etc/passwd`); missing parent directories are added
/// as root-owned 0755 directories so every runtime sees the same tree.
#[derive(Clone, Debug, Default)]
pub struct LayerBuilder {
    entries: BTreeMap<String, Entry>,
}

impl LayerBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64) -> Result<(), BuildError> {
        let key = normalise(path)?;
        self.add_parents(&key);
        self.entries.insert(
            key,
            Entry {
                kind: Kind::Dir,
                mode,
                uid,
                gid,
            },
        );
        Ok(())
    }

    /// A root-owned file.
    pub fn file(
        &mut self,
        path: &str,
        mode: u32,
        data: impl Into<Bytes>,
    ) -> Result<(), BuildError> {
        let key = normalise(path)?;
        self.add_parents(&key);
        self.entries.insert(
            key,
            Entry {
                kind: Kind::File(data.into()),
                mode,
                uid: 0,
                gid: 0,
            },
        );
        Ok(())
    }

    fn add_parents(&mut self, key: &str) {
        let mut parent = key;
        while let Some((p, _)) = parent.rsplit_once('/') {
            parent = p;
            self.entries.entry(parent.to_string()).or_insert(Entry {
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
        }
    }

    /// Writes the tar (entries in path order, every header's time set to `mtime`) and gzips it.
    pub fn finish(&self, mtime: u64, created_by: &str) -> Result<Layer, BuildError> {
        let tar = self.tar(mtime).map_err(BuildError::Layer)?;
        let diff_id = sha256_digest(&tar);
        let tar_size = tar.len() as u64;
        // An empty file name and mtime 0 in the gzip header keep the bytes independent of the
        // build host and the time of the build.
        let mut gz = GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::default());
        gz.write_all(&tar).map_err(BuildError::Layer)?;
        let data = Bytes::from(gz.finish().map_err(BuildError::Layer)?);
        Ok(Layer {
            digest: sha256_digest(&data),
            data,
            diff_id,
            tar_size,
            created_by: created_by.to_string(),
        })
    }

    fn tar(&self, mtime: u64) -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(entry.mode);
            header.set_uid(entry.uid);
            header.set_gid(entry.gid);
            header.set_mtime(mtime);
            match &entry.kind {
                Kind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
                }
                Kind::File(data) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, data.as_ref())?;
                }
            }
        }
        builder.into_inner()
    }
}

/// `/etc/passwd` -> `etc/passwd`; rejects relative paths and `..` so nothing escapes the root.
fn normalise(path: &str) -> Result<String, BuildError> {
    let trimmed = path.trim_end_matches('/');
    let Some(rel) = trimmed.strip_prefix('/') else {
        return Err(BuildError::InvalidPath(path.to_string()));
    };
    if rel.is_empty()
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(BuildError::InvalidPath(path.to_string()));
    }
    Ok(rel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_sorted_and_parents_added() {
        let mut b = LayerBuilder::new();
        b.file("/usr/local/bin/app", 0o755, &b"x"[..]).unwrap();
        b.file("/etc/passwd", 0o644, &b"root"[..]).unwrap();
        let tar = b.tar(0).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/passwd",
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/app"
            ]
        );
    }

    #[test]
    fn same_content_same_digest_regardless_of_insertion_order() {
        let mut a = LayerBuilder::new();
        a.file("/a", 0o644, &b"1"[..]).unwrap();
        a.file("/b", 0o644, &b"2"[..]).unwrap();
        let mut b = LayerBuilder::new();
        b.file("/b", 0o644, &b"2"[..]).unwrap();
        b.file("/a", 0o644, &b"1"[..]).unwrap();
        assert_eq!(a.finish(0, "t").unwrap(), b.finish(0, "t").unwrap());
    }

    #[test]
    fn paths_must_be_absolute_and_plain() {
        let mut b = LayerBuilder::new();
        assert!(b.file("etc/passwd", 0o644, &b""[..]).is_err());
        assert!(b.file("/etc/../passwd", 0o644, &b""[..]).is_err());
        assert!(b.file("/", 0o644, &b""[..]).is_err());
    }
}
