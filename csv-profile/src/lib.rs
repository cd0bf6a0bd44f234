//! Streaming CSV profiling: one pass over any `Read`, bounded memory, per-column types and
//! statistics.
//!
//! The input is read once. A bounded prefix is buffered to sniff the dialect (delimiter
//! among `,` `;` tab `|`, and whether the first row is a header) and then replayed into the
//! parser ahead of the rest of the stream. A UTF-8 byte order mark is skipped.
//!
//! Memory does not grow with the number of rows: each column keeps O(1) counters, the text
//! of its current min/max values (each at most `max_field_bytes`) and a 24 KiB HyperLogLog
//! sketch; the parser holds at most one record (`max_record_bytes`).
//!
//! Value rules (see [`ColumnType`] for the type order): values are trimmed of surrounding
//! spaces and tabs; a value is null when empty or one of [`NULL_TOKENS`] (any case).
//!
//! ```
//! use std::ops::ControlFlow;
//! use csv_profile::{ColumnType, ProfileOptions, profile};
//!
//! let csv = "id,price\n1,9.5\n2,10.5\n";
//! let p = profile(csv.as_bytes(), &ProfileOptions::default(), &mut |_bytes_read| {
//!     ControlFlow::Continue(())
//! })?;
//! assert_eq!((p.rows, p.delimiter.as_str(), p.has_header), (2, ",", true));
//! assert_eq!(p.column_profiles[1].column_type, ColumnType::Float);
//! assert_eq!(p.column_profiles[1].mean, Some(10.0));
//! # Ok::<(), csv_profile::ProfileError>(())
//! ```
//!
//! The work is CPU-bound and blocking: an async caller runs it on
//! `tokio::task::spawn_blocking` over `tokio_util::io::SyncIoBridge`, and lets `progress`
//! record the bytes read and return `Break` once the job is cancelled.

mod column;
mod error;
mod guard;
mod infer;
mod report;
mod sniff;
mod welford;

use std::io::{Cursor, Read};
use std::ops::ControlFlow;

use csv::{ByteRecord, ReaderBuilder};

use crate::column::ColumnState;
use crate::guard::{Guard, RecordTooLarge};

pub use crate::error::ProfileError;
pub use crate::infer::NULL_TOKENS;
pub use crate::report::{ColumnProfile, ColumnType, Profile, Scalar};
pub use crate::sniff::CANDIDATE_DELIMITERS;

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Large reads amortise the per-call cost of the S3 bridge and the parser's refills.
const READ_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct ProfileOptions {
    /// Use this delimiter instead of sniffing one.
    pub delimiter: Option<u8>,
    /// Say whether the first row is a header instead of sniffing it.
    pub has_header: Option<bool>,
    /// Bytes buffered from the start of the file to sniff the dialect.
    pub sniff_bytes: usize,
    /// Files with more columns are refused.
    pub max_columns: usize,
    /// A longer single field is refused.
    pub max_field_bytes: usize,
    /// A longer record (usually an unclosed quote) is refused before it fills memory.
    pub max_record_bytes: u64,
    /// The progress callback runs at most once per this many bytes (and once at the end).
    pub progress_interval_bytes: u64,
}

impl Default for ProfileOptions {
    fn default() -> Self {
        Self {
            delimiter: None,
            has_header: None,
            sniff_bytes: 64 * 1024,
            max_columns: 1_000,
            max_field_bytes: 1024 * 1024,
            max_record_bytes: 16 * 1024 * 1024,
            progress_interval_bytes: 1024 * 1024,
        }
    }
}

/// Profiles the CSV in `reader`, reading it once.
///
/// `progress` receives the number of bytes read so far, at least every
/// `progress_interval_bytes` and once at the end; returning `ControlFlow::Break` stops the
/// work with [`ProfileError::Cancelled`].
pub fn profile<R: Read>(
    mut reader: R,
    options: &ProfileOptions,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
) -> Result<Profile, ProfileError> {
    // At least a BOM and one byte, so that a BOM is never split by the sniff boundary.
    let sniff_bytes = options.sniff_bytes.max(BOM.len() + 1);
    let mut prefix = Vec::with_capacity(sniff_bytes);
    (&mut reader)
        .take(sniff_bytes as u64)
        .read_to_end(&mut prefix)
        .map_err(|e| ProfileError::Io {
            bytes: 0,
            message: e.to_string(),
        })?;
    let complete = prefix.len() < sniff_bytes;
    let bom = prefix.starts_with(BOM);
    let bom_len = if bom { BOM.len() } else { 0 };
    let body = &prefix[bom_len..];
    if body.is_empty() && complete {
        return Err(ProfileError::Empty);
    }
    // Checked before sniffing so that binary input is named as such rather than as
    // whatever parse error its bytes happen to produce first.
    if let Some(at) = memchr::memchr(0, body) {
        return Err(ProfileError::Binary {
            line: 1 + memchr::memchr_iter(b'\n', &body[..at]).count() as u64,
        });
    }
    let delimiter = options
        .delimiter
        .unwrap_or_else(|| sniff::delimiter(body, complete));
    let has_header = options
        .has_header
        .unwrap_or_else(|| sniff::has_header(body, delimiter, complete));

    let mut replay = Cursor::new(prefix);
    replay.set_position(bom_len as u64);
    let csv = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(READ_BUFFER)
        .from_reader(Guard::new(replay.chain(reader)));
    let mut run = Run {
        csv,
        options,
        bom_len: bom_len as u64,
        record: ByteRecord::new(),
    };
    let columns = run.profile_records(has_header, progress)?;
    let bytes = run.bytes_read();
    if progress(bytes).is_break() {
        return Err(ProfileError::Cancelled { bytes });
    }
    let rows = columns.rows;
    Ok(Profile {
        rows,
        columns: columns.states.len(),
        bytes,
        delimiter: char::from(delimiter).to_string(),
        has_header,
        bom,
        column_profiles: columns
            .states
            .into_iter()
            .map(ColumnState::finish)
            .collect(),
    })
}

struct Run<'o, R> {
    csv: csv::Reader<Guard<R>>,
    options: &'o ProfileOptions,
    bom_len: u64,
    record: ByteRecord,
}

struct Columns {
    states: Vec<ColumnState>,
    rows: u64,
}

impl<R: Read> Run<'_, R> {
    fn bytes_read(&self) -> u64 {
        self.csv.get_ref().consumed() + self.bom_len
    }

    fn profile_records(
        &mut self,
        has_header: bool,
        progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
    ) -> Result<Columns, ProfileError> {
        if !self.next_record()? {
            return Err(ProfileError::Empty);
        }
        let first_line = self.line();
        let width = self.record.len();
        if width > self.options.max_columns {
            return Err(ProfileError::TooManyColumns {
                line: first_line,
                found: width,
                max: self.options.max_columns,
            });
        }
        let mut columns = Columns {
            states: self.column_states(has_header)?,
            rows: 0,
        };
        if !has_header {
            self.observe_record(&mut columns)?;
        }
        let interval = self.options.progress_interval_bytes.max(1);
        let mut next_progress = interval;
        while self.next_record()? {
            if self.record.len() != width {
                return Err(ProfileError::RaggedRow {
                    line: self.line(),
                    expected: width,
                    found: self.record.len(),
                    first_line,
                });
            }
            self.observe_record(&mut columns)?;
            let bytes = self.bytes_read();
            if bytes >= next_progress {
                if progress(bytes).is_break() {
                    return Err(ProfileError::Cancelled { bytes });
                }
                next_progress = bytes.saturating_add(interval);
            }
        }
        Ok(columns)
    }

    fn column_states(&self, has_header: bool) -> Result<Vec<ColumnState>, ProfileError> {
        if !has_header {
            return Ok((1..=self.record.len())
                .map(|i| ColumnState::new(format!("column_{i}")))
                .collect());
        }
        let text = self.record_text()?;
        (0..self.record.len())
            .map(|i| {
                let name = infer::trim(self.field(text, i)?);
                // An unnamed column (e.g. a pandas index) still needs a usable name.
                Ok(if name.is_empty() {
                    ColumnState::new(format!("column_{}", i + 1))
                } else {
                    ColumnState::new(name.to_owned())
                })
            })
            .collect()
    }

    fn next_record(&mut self) -> Result<bool, ProfileError> {
        let start = self.csv.position().clone();
        let max = self.options.max_record_bytes;
        self.csv.get_mut().limit_record(start.byte(), max);
        self.csv
            .read_byte_record(&mut self.record)
            .map_err(|e| match e.into_kind() {
                csv::ErrorKind::Io(io)
                    if io.get_ref().is_some_and(|e| e.is::<RecordTooLarge>()) =>
                {
                    ProfileError::RecordTooLarge {
                        line: start.line(),
                        max,
                    }
                }
                csv::ErrorKind::Io(io) => ProfileError::Io {
                    bytes: self.csv.get_ref().consumed() + self.bom_len,
                    message: io.to_string(),
                },
                // Unreachable with flexible ByteRecords; reported rather than trusted.
                other => ProfileError::Io {
                    bytes: self.csv.get_ref().consumed() + self.bom_len,
                    message: format!("{other:?}"),
                },
            })
    }

    /// Line on which the current record starts (1-based).
    fn line(&self) -> u64 {
        self.record.position().map_or(0, csv::Position::line)
    }

    /// The whole record as text, validated once rather than field by field.
    fn record_text(&self) -> Result<&str, ProfileError> {
        let bytes = self.record.as_slice();
        if let Some(at) = memchr::memchr(0, bytes) {
            return Err(ProfileError::Binary {
                line: self.line_at(at),
            });
        }
        std::str::from_utf8(bytes).map_err(|e| ProfileError::InvalidUtf8 {
            line: self.line_at(e.valid_up_to()),
            column: self.column_at(e.valid_up_to()),
        })
    }

    /// Line of byte `offset` of the record's fields: the record's first line plus the
    /// newlines before it, which can only come from quoted fields spanning lines.
    fn line_at(&self, offset: usize) -> u64 {
        let before = &self.record.as_slice()[..offset.min(self.record.as_slice().len())];
        self.line() + memchr::memchr_iter(b'\n', before).count() as u64
    }

    /// 1-based column holding byte `offset` of the record's fields.
    fn column_at(&self, offset: usize) -> usize {
        (0..self.record.len())
            .find(|&i| self.record.range(i).is_some_and(|r| offset < r.end))
            .map_or(self.record.len(), |i| i + 1)
    }

    /// Field `i` of the validated record text. A field boundary inside a multi-byte
    /// character means the field alone is not UTF-8 even though the record is.
    fn field<'t>(&self, text: &'t str, i: usize) -> Result<&'t str, ProfileError> {
        self.record
            .range(i)
            .and_then(|r| text.get(r))
            .ok_or(ProfileError::InvalidUtf8 {
                line: self.line(),
                column: i + 1,
            })
    }

    fn observe_record(&self, columns: &mut Columns) -> Result<(), ProfileError> {
        let text = self.record_text()?;
        let ascii = text.is_ascii();
        let max_field = self.options.max_field_bytes;
        for (i, column) in columns.states.iter_mut().enumerate() {
            let field = self.field(text, i)?;
            if field.len() > max_field {
                return Err(ProfileError::FieldTooLong {
                    line: self.line(),
                    column: i + 1,
                    max: max_field,
                });
            }
            column.observe(field, ascii);
        }
        columns.rows += 1;
        Ok(())
    }
}
