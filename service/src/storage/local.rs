//! The local-folder backend for the embedded single-node mode. An upload is written to a hidden
//! temporary file next to its final path, synced, then renamed into place, so a reader sees the
//! whole object or none, and a crash leaves at most a temporary file.

use std::io::SeekFrom;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use super::meter::Meter;
use super::{ByteStream, ObjectReader, ObjectStore, StorageError, StoredObject, key};

/// Fewer, larger writes: each write of a tokio file is a trip to the blocking pool.
const WRITE_BUFFER: usize = 1024 * 1024;
const READ_CHUNK: usize = 64 * 1024;

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    /// Opens (and creates) the folder.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        tokio::fs::create_dir_all(&root).await.map_err(|err| {
            StorageError::Config(format!(
                "cannot create the storage folder {}: {err}",
                root.display()
            ))
        })?;
        let root = tokio::fs::canonicalize(&root).await.map_err(|err| {
            StorageError::Config(format!(
                "cannot resolve the storage folder {}: {err}",
                root.display()
            ))
        })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        Ok(self.root.join(key::checked(key)?))
    }

    async fn write(
        &self,
        path: &Path,
        mut body: ByteStream,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        let dir = path.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|err| io_error("creating the folder", dir, err))?;
        let temp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let mut cleanup = RemoveOnDrop(Some(temp.clone()));
        let file = tokio::fs::File::create(&temp)
            .await
            .map_err(|err| io_error("creating", &temp, err))?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut meter = Meter::new(max_bytes);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StorageError::Body)?;
            meter.observe(&chunk)?;
            writer
                .write_all(&chunk)
                .await
                .map_err(|err| io_error("writing", &temp, err))?;
        }
        writer
            .flush()
            .await
            .map_err(|err| io_error("writing", &temp, err))?;
        let file = writer.into_inner();
        file.sync_all()
            .await
            .map_err(|err| io_error("syncing", &temp, err))?;
        drop(file);
        // Renamed without an await point, so that a cancellation cannot fall between the rename
        // and the switch of the cleanup to the final path.
        std::fs::rename(&temp, path).map_err(|err| io_error("renaming", &temp, err))?;
        cleanup.0 = Some(path.to_owned());
        // The rename is durable once the folder is synced.
        let dir_file = tokio::fs::File::open(dir)
            .await
            .map_err(|err| io_error("opening", dir, err))?;
        dir_file
            .sync_all()
            .await
            .map_err(|err| io_error("syncing", dir, err))?;
        cleanup.0 = None;
        Ok(meter.finish())
    }
}

#[async_trait::async_trait]
impl ObjectStore for LocalStore {
    #[tracing::instrument(skip(self, body), err(Display))]
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        body: ByteStream,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        // The content type is metadata the caller keeps; a folder has nowhere to put it.
        let path = self.path(key)?;
        self.write(&path, body, max_bytes).await
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn get(
        &self,
        key: &str,
        range: Option<RangeInclusive<u64>>,
    ) -> Result<ObjectReader, StorageError> {
        let path = self.path(key)?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => StorageError::NotFound {
                    key: key.to_owned(),
                },
                _ => io_error("opening", &path, err),
            })?;
        let metadata = file
            .metadata()
            .await
            .map_err(|err| io_error("reading the metadata of", &path, err))?;
        let total_size = metadata.len();
        let last = total_size.saturating_sub(1);
        let range = match range {
            Some(range) => *range.start()..=(*range.end()).min(last),
            None => 0..=last,
        };
        let length = if total_size == 0 {
            0
        } else {
            range.end().saturating_sub(*range.start()) + 1
        };
        file.seek(SeekFrom::Start(*range.start()))
            .await
            .map_err(|err| io_error("seeking in", &path, err))?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map(|since| since.as_nanos())
            .unwrap_or(0);
        Ok(ObjectReader {
            total_size,
            range,
            etag: Some(format!("\"{total_size:x}-{modified:x}\"")),
            body: ReaderStream::with_capacity(file.take(length), READ_CHUNK).boxed(),
        })
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(io_error("deleting", &path, err)),
        }
    }

    #[tracing::instrument(skip(self), err(Display))]
    async fn check(&self) -> Result<(), StorageError> {
        match tokio::fs::metadata(&self.root).await {
            Ok(metadata) if metadata.is_dir() => Ok(()),
            Ok(_) => Err(StorageError::Unavailable(format!(
                "the storage folder {} is not a folder",
                self.root.display()
            ))),
            Err(err) => Err(io_error("reading", &self.root, err)),
        }
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> StorageError {
    StorageError::Unavailable(format!("local storage: {what} {}: {err}", path.display()))
}

/// Removes a file when an upload fails or its future is dropped.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            // A blocking call in drop, but a single unlink; async drop does not exist.
            if let Err(err) = std::fs::remove_file(&path)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %err, "removing a failed upload failed");
            }
        }
    }
}
