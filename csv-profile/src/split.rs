//! Finding record boundaries in a byte stream without parsing it, so that chunks cut there
//! parse on their own exactly as they would inside the whole.
//!
//! A record ends at a `\n` or `\r` outside quotes. "Outside quotes" follows the csv
//! parser's own rules (csv-core with `"` quoting, doubled quotes as escapes, no escape
//! byte): a `"` opens a quoted field only at the start of a field, i.e. after the
//! delimiter, a line terminator or at the start of the input; anywhere else in an unquoted
//! field it is a literal byte. Inside a quoted field `""` is a quote and a lone `"` closes
//! the quoting. Only quote bytes need looking at one by one; the rest is skipped with
//! `memchr`, so the scan runs at memory speed on typical data.

/// Scanner state carried from one block of input to the next.
pub struct Boundaries {
    delimiter: u8,
    quoted: bool,
    /// Inside quotes, the last byte seen was a `"`: the next byte decides whether it was
    /// an escaped quote or the end of the quoting.
    quote_pending: bool,
    /// Outside quotes, the last byte seen ends a field (or nothing was seen yet).
    at_field_start: bool,
}

impl Boundaries {
    pub fn new(delimiter: u8) -> Self {
        Self {
            delimiter,
            quoted: false,
            quote_pending: false,
            at_field_start: true,
        }
    }

    fn ends_field(&self, byte: u8) -> bool {
        byte == self.delimiter || byte == b'\n' || byte == b'\r'
    }

    /// Scans the next block of the input; returns the offset just past the last record
    /// terminator in it that lies outside quotes.
    pub fn scan(&mut self, block: &[u8]) -> Option<usize> {
        let mut last = None;
        let mut at = 0;
        if self.quote_pending {
            let &next = block.first()?;
            self.quote_pending = false;
            if next == b'"' {
                at = 1;
            } else {
                self.quoted = false;
                self.at_field_start = false;
            }
        }
        loop {
            let rest = &block[at..];
            if self.quoted {
                let Some(q) = memchr::memchr(b'"', rest).map(|i| at + i) else {
                    return last;
                };
                match block.get(q + 1) {
                    None => {
                        self.quote_pending = true;
                        return last;
                    }
                    Some(b'"') => at = q + 2,
                    Some(_) => {
                        self.quoted = false;
                        self.at_field_start = false;
                        at = q + 1;
                    }
                }
                continue;
            }
            let quote = memchr::memchr(b'"', rest).map(|i| at + i);
            let span = &block[at..quote.unwrap_or(block.len())];
            if let Some(end) = memchr::memrchr2(b'\n', b'\r', span) {
                last = Some(at + end + 1);
            }
            let Some(q) = quote else {
                if let Some(&byte) = span.last() {
                    self.at_field_start = self.ends_field(byte);
                }
                return last;
            };
            let opens = if q == at {
                self.at_field_start
            } else {
                self.ends_field(block[q - 1])
            };
            self.quoted = opens;
            self.at_field_start = false;
            at = q + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets where csv-core starts a record, to compare the scanner against.
    fn boundaries_in_blocks(input: &[u8], block: usize) -> Vec<usize> {
        let mut scanner = Boundaries::new(b',');
        let mut found = Vec::new();
        for (i, chunk) in input.chunks(block.max(1)).enumerate() {
            if let Some(end) = scanner.scan(chunk) {
                found.push(i * block + end);
            }
        }
        found
    }

    #[test]
    fn quoted_newlines_are_not_boundaries() {
        let input = b"a,\"x\ny\"\nb,c\n";
        assert_eq!(boundaries_in_blocks(input, input.len()), [input.len()]);
        // Cut just before the closing quote: the newline inside is still quoted.
        assert_eq!(boundaries_in_blocks(input, 5), [8, 12]);
    }

    #[test]
    fn doubled_quotes_stay_quoted_across_a_block_edge() {
        // `"a""\nb"` is one field holding `a"`, a newline and `b`.
        let input = b"\"a\"\"\nb\"\nc\n";
        for block in 1..input.len() {
            let found = boundaries_in_blocks(input, block);
            assert!(!found.contains(&5), "block {block}: {found:?}");
            assert_eq!(found.last(), Some(&input.len()), "block {block}");
        }
    }

    #[test]
    fn a_quote_inside_an_unquoted_field_is_literal() {
        let input = b"a\"b,c\nd,e\n";
        assert_eq!(boundaries_in_blocks(input, 6), [6, 10]);
    }

    #[test]
    fn text_after_a_closing_quote_is_unquoted() {
        let input = b"\"a\"b\"\nc\n";
        assert_eq!(boundaries_in_blocks(input, 6), [6, 8]);
    }

    #[test]
    fn carriage_returns_end_records() {
        let input = b"a,b\rc,\"d\"\r\ne\n";
        assert_eq!(boundaries_in_blocks(input, 4), [4, 11, 13]);
    }
}
