//! Checks and observation of one parsed record, shared by the single-thread and the
//! parallel paths. Line numbers are those the record's parser reports: for a chunk parsed on
//! its own they count from the chunk's start, and the caller shifts them.

use csv::ByteRecord;

use crate::column::ColumnState;
use crate::error::ProfileError;
use crate::infer;

/// Line on which the record starts (1-based).
pub fn line(record: &ByteRecord) -> u64 {
    record.position().map_or(0, csv::Position::line)
}

/// The whole record as text, validated once rather than field by field.
pub fn text(record: &ByteRecord) -> Result<&str, ProfileError> {
    let bytes = record.as_slice();
    if let Some(at) = memchr::memchr(0, bytes) {
        return Err(ProfileError::Binary {
            line: line_at(record, at),
        });
    }
    std::str::from_utf8(bytes).map_err(|e| ProfileError::InvalidUtf8 {
        line: line_at(record, e.valid_up_to()),
        column: column_at(record, e.valid_up_to()),
    })
}

/// Line of byte `offset` of the record's fields: the record's first line plus the
/// newlines before it, which can only come from quoted fields spanning lines.
fn line_at(record: &ByteRecord, offset: usize) -> u64 {
    let before = &record.as_slice()[..offset.min(record.as_slice().len())];
    line(record) + memchr::memchr_iter(b'\n', before).count() as u64
}

/// 1-based column holding byte `offset` of the record's fields.
fn column_at(record: &ByteRecord, offset: usize) -> usize {
    (0..record.len())
        .find(|&i| record.range(i).is_some_and(|r| offset < r.end))
        .map_or(record.len(), |i| i + 1)
}

/// Field `i` of the validated record text. A field boundary inside a multi-byte
/// character means the field alone is not UTF-8 even though the record is.
fn field<'t>(record: &ByteRecord, text: &'t str, i: usize) -> Result<&'t str, ProfileError> {
    record
        .range(i)
        .and_then(|r| text.get(r))
        .ok_or(ProfileError::InvalidUtf8 {
            line: line(record),
            column: i + 1,
        })
}

/// Column states named after the first record (`has_header`) or by position.
pub fn column_states(
    first: &ByteRecord,
    has_header: bool,
    quantiles: bool,
) -> Result<Vec<ColumnState>, ProfileError> {
    if !has_header {
        return Ok((1..=first.len())
            .map(|i| ColumnState::new(format!("column_{i}"), quantiles))
            .collect());
    }
    let text = text(first)?;
    (0..first.len())
        .map(|i| {
            let name = infer::trim(field(first, text, i)?);
            // An unnamed column (e.g. a pandas index) still needs a usable name.
            let name = if name.is_empty() {
                format!("column_{}", i + 1)
            } else {
                name.to_owned()
            };
            Ok(ColumnState::new(name, quantiles))
        })
        .collect()
}

/// `first_line` is where the first record (which set the width) starts.
pub fn check_width(record: &ByteRecord, width: usize, first_line: u64) -> Result<(), ProfileError> {
    if record.len() == width {
        return Ok(());
    }
    Err(ProfileError::RaggedRow {
        line: line(record),
        expected: width,
        found: record.len(),
        first_line,
    })
}

/// Feeds every field of `record` (already checked to have `states.len()` fields) to its
/// column.
pub fn observe(
    record: &ByteRecord,
    states: &mut [ColumnState],
    max_field_bytes: usize,
) -> Result<(), ProfileError> {
    let text = text(record)?;
    let ascii = text.is_ascii();
    for (i, column) in states.iter_mut().enumerate() {
        let field = field(record, text, i)?;
        if field.len() > max_field_bytes {
            return Err(ProfileError::FieldTooLong {
                line: line(record),
                column: i + 1,
                max: max_field_bytes,
            });
        }
        column.observe(field, ascii);
    }
    Ok(())
}
