//! The CSV files virtual users upload: small, well-formed, with one column of each type the
//! profiler infers, and different bytes for every upload (so a mixed-up download shows).

use csv::Writer;

/// `rows` data rows plus a header; the content depends on run, user and upload number.
pub fn generate(run_id: &str, user: usize, upload: u64, rows: usize) -> Vec<u8> {
    let mut out = Writer::from_writer(Vec::with_capacity(rows * 48 + 64));
    let seed = (user as u64)
        .wrapping_mul(7919)
        .wrapping_add(upload.wrapping_mul(104_729));
    // Writing into a Vec cannot fail, so the results are ignored.
    let _ = out.write_record(["id", "name", "amount", "active", "day"]);
    for i in 0..rows as u64 {
        let n = i.wrapping_mul(2_654_435_761).wrapping_add(seed);
        let _ = out.write_record([
            i.to_string(),
            format!("{run_id}-{user}-{upload}-{i}"),
            format!("{}.{:02}", n % 100_000, n % 100),
            (n % 2 == 0).to_string(),
            format!("2026-{:02}-{:02}", n % 12 + 1, n % 28 + 1),
        ]);
    }
    out.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_upload_differs_and_parses_back() {
        let a = generate("r", 1, 0, 50);
        let b = generate("r", 1, 1, 50);
        assert_ne!(a, b);
        let mut reader = csv::Reader::from_reader(a.as_slice());
        let records: Vec<_> = reader.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), 50);
        assert!(records.iter().all(|r| r.len() == 5));
    }
}
