//! The reader under the CSV parser: counts bytes and caps the size of one record.
//!
//! The csv crate grows its record buffer without limit, so an unclosed quote (or a binary
//! file without newlines) would otherwise read the whole input into memory.

use std::io::{self, Read};

/// Marker inside the `io::Error` returned when the current record is over the cap.
#[derive(Debug)]
pub struct RecordTooLarge;

impl std::fmt::Display for RecordTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record too large")
    }
}

impl std::error::Error for RecordTooLarge {}

pub struct Guard<R> {
    inner: R,
    consumed: u64,
    limit: u64,
}

impl<R: Read> Guard<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            consumed: 0,
            limit: u64::MAX,
        }
    }

    /// Bytes handed to the parser so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The parser only asks for more input once its buffer is used up, so every consumed
    /// byte belongs to records already parsed or to the current one: reading past
    /// `record_start + max` means the current record alone is longer than `max`.
    pub fn limit_record(&mut self, record_start: u64, max: u64) {
        self.limit = record_start.saturating_add(max);
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.consumed > self.limit {
            return Err(io::Error::other(RecordTooLarge));
        }
        // The parser's buffered reader gives up on `Interrupted`; a retry is what it means.
        let n = loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => break result?,
            }
        };
        self.consumed += n as u64;
        Ok(n)
    }
}
