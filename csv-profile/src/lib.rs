//! Streaming CSV profiling: one pass over any `Read`, bounded memory, per-column types and
//! statistics.
//!
//! The input is read once. A bounded prefix is buffered to sniff the dialect (delimiter
//! among `,` `;` tab `|`, and whether the first row is a header) and then replayed into the
//! parser ahead of the rest of the stream. A UTF-8 byte order mark is skipped.
//!
//! Memory does not grow with the number of rows: each column keeps O(1) counters, the text
//! of its current min/max values (each at most `max_field_bytes`), a 24 KiB HyperLogLog
//! sketch and, for numeric columns, a quantile sketch of at most 32 KiB; the parser holds
//! at most one record (`max_record_bytes`).
//!
//! With `threads > 1` the calling thread reads the input and cuts it into chunks at record
//! boundaries, worker threads profile the chunks, and their column states are merged (see
//! the `parallel` module). The result is the single-thread one: exactly for counts, types,
//! min/max and quantiles, up to float rounding for mean and standard deviation, and within
//! the HyperLogLog error for distinct counts.
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
mod parallel;
mod quantile;
mod records;
mod report;
mod sniff;
mod split;
mod welford;

use std::io::{Cursor, Read};
use std::ops::ControlFlow;

use csv::{ByteRecord, ReaderBuilder};

use crate::column::ColumnState;
use crate::guard::{Guard, RecordTooLarge};

pub use crate::error::ProfileError;
pub use crate::infer::NULL_TOKENS;
pub use crate::report::{ColumnProfile, ColumnType, Profile, Quantiles, Scalar};
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
    /// Compute [`ColumnProfile::quantiles`] for numeric columns (a few percent of the
    /// throughput).
    pub quantiles: bool,
    /// Threads that parse and profile. 0 or 1 profiles on the calling thread. More: the
    /// calling thread reads and splits the input, and this many workers profile chunks.
    pub threads: usize,
    /// With `threads > 1`, the input is handed to workers in chunks of about this many
    /// bytes (cut at record boundaries, so a longer record makes a longer chunk). At most
    /// `2 * threads + 1` chunks are in memory at once.
    pub chunk_bytes: usize,
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
            quantiles: true,
            threads: 1,
            chunk_bytes: 1024 * 1024,
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
    let input = Guard::new(replay.chain(reader));
    let dialect = Dialect {
        delimiter,
        has_header,
        bom_len: bom_len as u64,
    };
    let (columns, bytes) = if options.threads > 1 {
        parallel::profile(input, options, &dialect, progress)?
    } else {
        let mut run = Run {
            csv: dialect.reader_builder().from_reader(input),
            options,
            bom_len: dialect.bom_len,
            record: ByteRecord::new(),
        };
        let columns = run.profile_records(has_header, progress)?;
        (columns, run.bytes_read())
    };
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

/// What sniffing (or the options) decided about the input.
struct Dialect {
    delimiter: u8,
    has_header: bool,
    bom_len: u64,
}

impl Dialect {
    /// Every parser of the input, whole or in chunks, must be built alike for the chunks to
    /// parse as the whole does.
    fn reader_builder(&self) -> ReaderBuilder {
        let mut builder = ReaderBuilder::new();
        builder
            .delimiter(self.delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(READ_BUFFER);
        builder
    }
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
        let first_line = records::line(&self.record);
        let width = self.record.len();
        check_column_count(width, first_line, self.options)?;
        let mut columns = Columns {
            states: records::column_states(&self.record, has_header, self.options.quantiles)?,
            rows: 0,
        };
        let max_field = self.options.max_field_bytes;
        if !has_header {
            records::observe(&self.record, &mut columns.states, max_field)?;
            columns.rows += 1;
        }
        let interval = self.options.progress_interval_bytes.max(1);
        let mut next_progress = interval;
        while self.next_record()? {
            records::check_width(&self.record, width, first_line)?;
            records::observe(&self.record, &mut columns.states, max_field)?;
            columns.rows += 1;
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
}

fn check_column_count(
    width: usize,
    line: u64,
    options: &ProfileOptions,
) -> Result<(), ProfileError> {
    if width > options.max_columns {
        return Err(ProfileError::TooManyColumns {
            line,
            found: width,
            max: options.max_columns,
        });
    }
    Ok(())
}
