//! Profiling one input on several threads.
//!
//! The calling thread reads the input (it needs no `Send`), cuts it into chunks at record
//! boundaries found by [`Boundaries`] and hands them to `threads` workers over a bounded
//! channel. Each worker parses its chunks with the same parser settings as the
//! single-thread path, into column states of its own, and at the end the states are merged
//! (every statistic merges exactly, in any order; see `ColumnState::merge`).
//!
//! Memory is bounded by a fixed pool of chunk buffers (`2 * threads + 1`, each about
//! `chunk_bytes`): the reader waits for a buffer to come back before reading on.
//!
//! Errors are those of the single-thread path: a worker reports the first error of its
//! chunk with chunk-relative line numbers, and the error of the earliest chunk wins,
//! shifted by the newlines of the chunks before it (which were all profiled in full).
//! The parser places a record at the end of the record before it, blank lines between
//! them not counted; the shift does the same across chunks (see [`LineCount`]).

use std::io::Read;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};

use csv::ByteRecord;

use crate::column::ColumnState;
use crate::guard::Guard;
use crate::split::Boundaries;
use crate::{Columns, Dialect, ProfileError, ProfileOptions, check_column_count, records};

/// A slice of the input holding whole records: `buf[start..end]` is parsed (`start` is
/// past the header in the chunk that holds it).
struct Chunk {
    index: usize,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// What the workers share.
struct Shared<'a> {
    options: &'a ProfileOptions,
    dialect: &'a Dialect,
    width: usize,
    first_line: u64,
    /// Index of the earliest chunk known to fail: later chunks need not be profiled.
    first_failure: AtomicUsize,
    cancelled: AtomicBool,
}

impl Shared<'_> {
    fn stopped(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
            || self.first_failure.load(Ordering::Relaxed) != usize::MAX
    }
}

/// Newlines in a chunk's parsed bytes: all of them, and those up to the end of its last
/// record (`None` without records), after which only blank lines follow.
#[derive(Debug, Clone, Copy, Default)]
struct LineCount {
    total: u64,
    to_last_record: Option<u64>,
}

struct WorkerResult {
    states: Vec<ColumnState>,
    rows: u64,
    /// `(chunk index, lines)` of every chunk profiled in full.
    lines: Vec<(usize, LineCount)>,
    failure: Option<Failure>,
}

/// The first error in a chunk, with line numbers as its own parser counts them.
struct Failure {
    index: usize,
    error: ProfileError,
    /// The record at fault was the chunk's first, which the parser places at the chunk's
    /// start (rather than after the blank lines there).
    first_record: bool,
}

pub(crate) fn profile<R: Read>(
    mut input: Guard<R>,
    options: &ProfileOptions,
    dialect: &Dialect,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
) -> Result<(Columns, u64), ProfileError> {
    let threads = options.threads.max(1);
    let mut reader = ChunkReader::new(options, dialect, 2 * threads + 1);
    let first = loop {
        let next = reader
            .next_chunk(&mut input, progress)
            .map_err(|stop| match stop {
                Stop::Error(e) => e,
                // Nothing before it but blank lines.
                Stop::TooLarge { max, .. } => ProfileError::RecordTooLarge { line: 1, max },
            })?;
        match next {
            None => return Err(ProfileError::Empty),
            Some(chunk) if is_blank(&chunk.buf[..chunk.end]) => {
                let total = newlines(&chunk.buf[..chunk.end]);
                reader.blank_lines.push((chunk.index, total));
                reader.recycle(chunk.buf);
            }
            Some(chunk) => break chunk,
        }
    };
    // Only blank lines precede the first record, and the parser places a record at the
    // start of the blank lines before it: line numbers here need no shift.
    let header = FirstRecord::read(&first, dialect)?;
    let first_line = records::line(&header.record);
    check_column_count(header.record.len(), first_line, options)?;
    let mut states = records::column_states(&header.record, dialect.has_header, options.quantiles)?;
    let first_index = first.index;
    let mut first = first;
    let mut header_lines = 0;
    if dialect.has_header {
        first.start = header.end;
        header_lines = header.newlines;
    }
    let shared = Shared {
        options,
        dialect,
        width: header.record.len(),
        first_line,
        first_failure: AtomicUsize::new(usize::MAX),
        cancelled: AtomicBool::new(false),
    };
    let (task_tx, task_rx) = mpsc::sync_channel::<Chunk>(reader.pool);
    let task_rx = Mutex::new(task_rx);
    let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
    let (produced, results) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let free_tx = free_tx.clone();
                let (shared, task_rx) = (&shared, &task_rx);
                scope.spawn(move || work(shared, task_rx, &free_tx))
            })
            .collect();
        drop(free_tx);
        reader.free = Some(free_rx);
        let produced = produce(&mut reader, &mut input, first, &task_tx, &shared, progress);
        // Other early stops let the workers finish the chunks already out: an error in
        // one of them comes first, and a later error needs their line counts.
        if let Err(Stop::Error(ProfileError::Cancelled { .. })) = produced {
            shared.cancelled.store(true, Ordering::Relaxed);
        }
        drop(task_tx);
        let results: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        (produced, results)
    });
    let mut lines = vec![LineCount::default(); reader.next_index];
    let mut failure: Option<Failure> = None;
    let mut rows = 0;
    for result in results {
        // A worker panic is a bug; re-raise it on the caller's thread like the
        // single-thread path would.
        let result = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        for (index, count) in result.lines {
            lines[index] = count;
        }
        if let Some(theirs) = result.failure
            && failure.as_ref().is_none_or(|f| theirs.index < f.index)
        {
            failure = Some(theirs);
        }
        for (mine, theirs) in states.iter_mut().zip(result.states) {
            mine.merge(theirs);
        }
        rows += result.rows;
    }
    for (index, total) in reader.blank_lines.drain(..) {
        lines[index] = LineCount {
            total,
            to_last_record: None,
        };
    }
    // The header is a record of the chunk that holds it, parsed before the rest.
    let in_first = &mut lines[first_index];
    in_first.total += header_lines;
    in_first.to_last_record = Some(in_first.to_last_record.unwrap_or(0) + header_lines);
    // The parser numbers a record by where the previous one ended (blank lines between
    // them are not counted), and later lines of the same parse by counting every newline.
    // So a chunk's first record goes after the last record of an earlier chunk, and its
    // other lines go after all the newlines before the chunk. (The chunks before a failed
    // one were all profiled in full, so their counts are known.)
    let base = |index: usize| -> u64 { lines[..index].iter().map(|c| c.total).sum() };
    // The first chunk's parser starts after the header.
    let own = |index: usize| {
        if index == first_index {
            header_lines
        } else {
            0
        }
    };
    let all_before = |index: usize| base(index) + own(index);
    let after_last_record = |index: usize| -> u64 {
        if index == first_index {
            // After the header, or nothing before the very first record.
            return if dialect.has_header {
                all_before(index)
            } else {
                0
            };
        }
        match lines[..index]
            .iter()
            .rposition(|c| c.to_last_record.is_some())
        {
            Some(last) => base(last) + lines[last].to_last_record.unwrap_or(0),
            None => 0,
        }
    };
    if let Some(f) = failure {
        let by = if f.first_record {
            after_last_record(f.index)
        } else {
            all_before(f.index)
        };
        return Err(shift(f.error, by));
    }
    let bytes = match produced {
        Ok(bytes) => bytes,
        Err(Stop::Error(e)) => return Err(e),
        Err(Stop::TooLarge { chunk, max }) => {
            return Err(ProfileError::RecordTooLarge {
                line: after_last_record(chunk) + 1,
                max,
            });
        }
    };
    Ok((Columns { states, rows }, bytes))
}

/// Why the reading stopped early.
enum Stop {
    Error(ProfileError),
    /// No record boundary within `max` bytes from the start of the chunk that would have
    /// had this index.
    TooLarge {
        chunk: usize,
        max: u64,
    },
}

/// Hands out chunks until the input ends; returns the bytes read (BOM included).
fn produce<R: Read>(
    reader: &mut ChunkReader,
    input: &mut Guard<R>,
    first: Chunk,
    tasks: &mpsc::SyncSender<Chunk>,
    shared: &Shared<'_>,
    progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
) -> Result<u64, Stop> {
    let mut next = Some(first);
    while let Some(chunk) = next.take() {
        if shared.stopped() {
            break;
        }
        // Blank chunks have no records; only their lines count.
        if is_blank(&chunk.buf[chunk.start..chunk.end]) {
            reader
                .blank_lines
                .push((chunk.index, newlines(&chunk.buf[chunk.start..chunk.end])));
            reader.recycle(chunk.buf);
        } else if tasks.send(chunk).is_err() {
            // Every worker is gone, which only a panic does; joining them reports it.
            break;
        }
        next = reader.next_chunk(input, progress)?;
    }
    Ok(input.consumed() + shared.dialect.bom_len)
}

fn work(
    shared: &Shared<'_>,
    tasks: &Mutex<mpsc::Receiver<Chunk>>,
    free: &mpsc::Sender<Vec<u8>>,
) -> WorkerResult {
    let mut result = WorkerResult {
        states: (0..shared.width)
            .map(|_| ColumnState::new(String::new(), shared.options.quantiles))
            .collect(),
        rows: 0,
        lines: Vec::new(),
        failure: None,
    };
    let mut record = ByteRecord::new();
    loop {
        // The lock is held only while waiting for the next chunk, never while profiling.
        let next = match tasks.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(chunk) = next else {
            return result;
        };
        let skip = shared.cancelled.load(Ordering::Relaxed)
            || chunk.index > shared.first_failure.load(Ordering::Relaxed);
        if !skip {
            match profile_chunk(shared, &chunk, &mut record, &mut result) {
                Ok(count) => result.lines.push((chunk.index, count)),
                Err(error) => {
                    shared
                        .first_failure
                        .fetch_min(chunk.index, Ordering::Relaxed);
                    let (error, first_record) = error;
                    if result
                        .failure
                        .as_ref()
                        .is_none_or(|f| chunk.index < f.index)
                    {
                        result.failure = Some(Failure {
                            index: chunk.index,
                            error,
                            first_record,
                        });
                    }
                }
            }
        }
        // The reader may be gone (it stopped early); the buffer is then simply dropped.
        let _ = free.send(chunk.buf);
    }
}

/// Profiles every record of the chunk; returns its line count.
fn profile_chunk(
    shared: &Shared<'_>,
    chunk: &Chunk,
    record: &mut ByteRecord,
    result: &mut WorkerResult,
) -> Result<LineCount, (ProfileError, bool)> {
    let mut csv = shared
        .dialect
        .reader_builder()
        .buffer_capacity(64 * 1024)
        .from_reader(&chunk.buf[chunk.start..chunk.end]);
    let max_field = shared.options.max_field_bytes;
    let mut to_last_record = None;
    loop {
        let first_record = to_last_record.is_none();
        let found = csv.read_byte_record(record).map_err(|e| {
            let error = ProfileError::Io {
                bytes: 0,
                message: e.to_string(),
            };
            (error, first_record)
        })?;
        if !found {
            break;
        }
        records::check_width(record, shared.width, shared.first_line)
            .and_then(|()| records::observe(record, &mut result.states, max_field))
            .map_err(|e| (e, first_record))?;
        result.rows += 1;
        to_last_record = Some(csv.position().line() - 1);
    }
    // csv-core counts every `\n` it consumes, inside quotes or not.
    Ok(LineCount {
        total: csv.position().line() - 1,
        to_last_record,
    })
}

/// The record that fixes the width (and, with a header, the names), parsed on its own.
struct FirstRecord {
    record: ByteRecord,
    /// Offset in the chunk where the next record starts.
    end: usize,
    newlines: u64,
}

impl FirstRecord {
    fn read(chunk: &Chunk, dialect: &Dialect) -> Result<Self, ProfileError> {
        let mut csv = dialect
            .reader_builder()
            .buffer_capacity(64 * 1024)
            .from_reader(&chunk.buf[chunk.start..chunk.end]);
        let mut record = ByteRecord::new();
        let found = csv
            .read_byte_record(&mut record)
            .map_err(|e| ProfileError::Io {
                bytes: 0,
                message: e.to_string(),
            })?;
        if !found {
            // The caller passes a chunk that is not blank, which holds a record.
            return Err(ProfileError::Empty);
        }
        let position = csv.position();
        Ok(Self {
            end: chunk.start + position.byte() as usize,
            newlines: position.line() - 1,
            record,
        })
    }
}

/// Reads the input into pooled buffers and cuts them after the last record boundary.
struct ChunkReader {
    chunk_bytes: usize,
    max_record_bytes: u64,
    bom_len: u64,
    progress_interval: u64,
    next_progress: u64,
    pool: usize,
    allocated: usize,
    free: Option<mpsc::Receiver<Vec<u8>>>,
    spare: Vec<Vec<u8>>,
    boundaries: Boundaries,
    /// Bytes read past the last cut, to start the next chunk with.
    carry: Vec<u8>,
    /// Consecutive blank chunks just before the carry, in bytes.
    blank_run: u64,
    next_index: usize,
    /// `(chunk index, newlines)` of blank chunks, which no worker sees.
    blank_lines: Vec<(usize, u64)>,
    eof: bool,
}

impl ChunkReader {
    fn new(options: &ProfileOptions, dialect: &Dialect, pool: usize) -> Self {
        let interval = options.progress_interval_bytes.max(1);
        Self {
            chunk_bytes: options.chunk_bytes.max(1),
            max_record_bytes: options.max_record_bytes,
            bom_len: dialect.bom_len,
            progress_interval: interval,
            next_progress: interval,
            pool,
            allocated: 0,
            free: None,
            spare: Vec::new(),
            boundaries: Boundaries::new(dialect.delimiter),
            carry: Vec::new(),
            blank_run: 0,
            next_index: 0,
            blank_lines: Vec::new(),
            eof: false,
        }
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.spare.push(buf);
    }

    /// A buffer from the pool; waits for a worker to return one when all are out.
    fn buffer(&mut self) -> Option<Vec<u8>> {
        let buf = if let Some(buf) = self.spare.pop() {
            buf
        } else if self.allocated < self.pool {
            self.allocated += 1;
            Vec::new()
        } else {
            self.free.as_ref()?.recv().ok()?
        };
        // A buffer that grew for one long record goes back to the usual size, so that a
        // few long records do not keep the whole pool large.
        if buf.len() > 4 * self.chunk_bytes {
            return Some(Vec::new());
        }
        Some(buf)
    }

    fn next_chunk<R: Read>(
        &mut self,
        input: &mut Guard<R>,
        progress: &mut dyn FnMut(u64) -> ControlFlow<()>,
    ) -> Result<Option<Chunk>, Stop> {
        if self.eof && self.carry.is_empty() {
            return Ok(None);
        }
        let Some(mut buf) = self.buffer() else {
            return Ok(None);
        };
        let want = self.chunk_bytes.max(2 * self.carry.len());
        if buf.len() < want {
            // Buffers keep their length between uses, so this zeroes each one once.
            buf.resize(want, 0);
        }
        let mut filled = self.carry.len();
        buf[..filled].copy_from_slice(&self.carry);
        self.carry.clear();
        let mut cut = None;
        while !self.eof && (filled < self.chunk_bytes || cut.is_none()) {
            if filled == buf.len() {
                buf.resize(2 * buf.len(), 0);
            }
            let n = input.read(&mut buf[filled..]).map_err(|e| {
                Stop::Error(ProfileError::Io {
                    bytes: input.consumed() + self.bom_len,
                    message: e.to_string(),
                })
            })?;
            if n == 0 {
                self.eof = true;
                break;
            }
            if let Some(end) = self.boundaries.scan(&buf[filled..filled + n]) {
                cut = Some(filled + end);
            }
            filled += n;
            // Bytes of the record still open, i.e. past the last boundary.
            if (filled - cut.unwrap_or(0)) as u64 > self.max_record_bytes {
                return Err(Stop::TooLarge {
                    chunk: self.next_index,
                    max: self.max_record_bytes,
                });
            }
            let bytes = input.consumed() + self.bom_len;
            if bytes >= self.next_progress {
                if progress(bytes).is_break() {
                    return Err(Stop::Error(ProfileError::Cancelled { bytes }));
                }
                self.next_progress = bytes.saturating_add(self.progress_interval);
            }
        }
        let end = if self.eof {
            filled
        } else {
            cut.unwrap_or(filled)
        };
        self.carry.extend_from_slice(&buf[end..filled]);
        // The parser reads blank lines as part of the next record, so a run of them
        // counts against the record limit too (else endless blank lines never end).
        if is_blank(&buf[..end]) {
            self.blank_run += end as u64;
            if self.blank_run > self.max_record_bytes {
                return Err(Stop::TooLarge {
                    chunk: self.next_index,
                    max: self.max_record_bytes,
                });
            }
        } else {
            self.blank_run = 0;
        }
        let index = self.next_index;
        self.next_index += 1;
        Ok(Some(Chunk {
            index,
            buf,
            start: 0,
            end,
        }))
    }
}

/// Only line terminators: no record, however long.
fn is_blank(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == b'\n' || b == b'\r')
}

fn newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// The error with its line numbers moved down by `lines` (a chunk's offset in the input).
fn shift(error: ProfileError, lines: u64) -> ProfileError {
    match error {
        ProfileError::Binary { line } => ProfileError::Binary { line: line + lines },
        ProfileError::InvalidUtf8 { line, column } => ProfileError::InvalidUtf8 {
            line: line + lines,
            column,
        },
        ProfileError::RaggedRow {
            line,
            expected,
            found,
            first_line,
        } => ProfileError::RaggedRow {
            line: line + lines,
            expected,
            found,
            first_line,
        },
        ProfileError::TooManyColumns { line, found, max } => ProfileError::TooManyColumns {
            line: line + lines,
            found,
            max,
        },
        ProfileError::FieldTooLong { line, column, max } => ProfileError::FieldTooLong {
            line: line + lines,
            column,
            max,
        },
        ProfileError::RecordTooLarge { line, max } => ProfileError::RecordTooLarge {
            line: line + lines,
            max,
        },
        other
        @ (ProfileError::Empty | ProfileError::Io { .. } | ProfileError::Cancelled { .. }) => other,
    }
}
