// An in-memory object store for tests of everything but storage (S2 tests the real backends).
// Included by tests/api/helpers.rs and tests/logs.rs.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use data_processor::storage::{ByteStream, ObjectReader, ObjectStore, StorageError, StoredObject};
use futures::StreamExt;

/// An object store in memory, for tests of everything but storage (S2 tests the real backends).
/// `fail` makes every call answer `Unavailable`, to see how the service reports it.
/// `hold_puts` makes writes of matching keys wait (after their body is read) until
/// `release_puts`, to stop a job in the middle of writing its result.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<HashMap<String, Bytes>>,
    pub fail: AtomicBool,
    hold: Mutex<Option<String>>,
    released: tokio::sync::Notify,
    held: AtomicUsize,
    deleted: Mutex<Vec<String>>,
}

#[allow(dead_code)] // Not every test binary that includes this file uses every helper.
impl MemoryStore {
    /// Writes of keys containing `pattern` wait until `release_puts`.
    pub fn hold_puts(&self, pattern: &str) {
        *self.hold.lock().unwrap() = Some(pattern.to_string());
    }

    pub fn release_puts(&self) {
        *self.hold.lock().unwrap() = None;
        self.released.notify_waiters();
    }

    /// Writes waiting in `hold_puts` now.
    pub fn held_puts(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    /// Every key deleted so far, in order.
    pub fn deleted_keys(&self) -> Vec<String> {
        self.deleted.lock().unwrap().clone()
    }

    pub fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    async fn wait_while_held(&self, key: &str) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            let held = self
                .hold
                .lock()
                .unwrap()
                .as_deref()
                .is_some_and(|pattern| key.contains(pattern));
            if !held {
                return;
            }
            self.held.fetch_add(1, Ordering::SeqCst);
            released.await;
            self.held.fetch_sub(1, Ordering::SeqCst);
        }
    }

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
        self.wait_while_held(key).await;
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
        self.deleted.lock().unwrap().push(key.to_string());
        Ok(())
    }

    async fn check(&self) -> Result<(), StorageError> {
        self.check_up()
    }

    fn describe(&self) -> String {
        "memory://test".into()
    }
}
