// An in-memory object store for tests of everything but storage (S2 tests the real backends).
// Included by tests/api/helpers.rs and tests/logs.rs.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use data_processor::storage::{ByteStream, ObjectReader, ObjectStore, StorageError, StoredObject};
use futures::StreamExt;

/// An object store in memory, for tests of everything but storage (S2 tests the real backends).
/// `fail` makes every call answer `Unavailable`, to see how the service reports it.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<HashMap<String, Bytes>>,
    pub fail: AtomicBool,
}

impl MemoryStore {
    fn check_up(&self) -> Result<(), StorageError> {
        if self.fail.load(Ordering::Relaxed) {
            Err(StorageError::Unavailable("test store is down".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for MemoryStore {
    async fn put(
        &self,
        key: &str,
        _content_type: &str,
        mut body: ByteStream,
        max_bytes: u64,
    ) -> Result<StoredObject, StorageError> {
        self.check_up()?;
        let mut data = Vec::new();
        while let Some(chunk) = body.next().await {
            data.extend_from_slice(&chunk.map_err(StorageError::Body)?);
            if data.len() as u64 > max_bytes {
                return Err(StorageError::TooLarge { limit: max_bytes });
            }
        }
        let size = data.len() as u64;
        self.objects
            .lock()
            .unwrap()
            .insert(key.to_string(), Bytes::from(data));
        Ok(StoredObject {
            size,
            sha256: String::new(),
        })
    }

    async fn get(
        &self,
        key: &str,
        range: Option<RangeInclusive<u64>>,
    ) -> Result<ObjectReader, StorageError> {
        self.check_up()?;
        let data = self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| StorageError::NotFound { key: key.into() })?;
        let total = data.len() as u64;
        let range = range.unwrap_or(0..=total.saturating_sub(1));
        let slice = data.slice(*range.start() as usize..=*range.end() as usize);
        Ok(ObjectReader {
            total_size: total,
            range,
            etag: None,
            body: futures::stream::iter([Ok(slice)]).boxed(),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.check_up()?;
        self.objects.lock().unwrap().remove(key);
        Ok(())
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.check_up()
    }

    fn describe(&self) -> String {
        "memory://test".into()
    }
}
