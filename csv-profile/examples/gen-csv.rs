//! Writes a deterministic CSV of mixed column types, for benchmarks.
//!
//! `cargo run --release -p csv-profile --example gen-csv -- SIZE_MIB OUT.csv [SEED]`
//!
//! Columns: integer id, integer with 10% nulls, two floats, a category (20 values), a
//! boolean, a date-time, a free-text name (some with commas and quotes, so quoted) and a
//! 2-letter country code. About 80 bytes a row.

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

const CATEGORIES: [&str; 20] = [
    "books", "music", "garden", "toys", "tools", "food", "drink", "sports", "travel", "health",
    "beauty", "office", "pets", "baby", "auto", "games", "movies", "phones", "shoes", "home",
];
const COUNTRIES: [&str; 12] = [
    "FR", "DE", "ES", "IT", "GB", "US", "CA", "JP", "BR", "IN", "NL", "SE",
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(size), Some(path)) = (args.get(1).and_then(|s| s.parse::<u64>().ok()), args.get(2))
    else {
        eprintln!("usage: gen-csv SIZE_MIB OUT.csv [SEED]");
        return ExitCode::from(2);
    };
    let seed = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(42);
    match generate(size * 1024 * 1024, path, seed) {
        Ok(rows) => {
            eprintln!("wrote {rows} rows to {path}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot write {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(target_bytes: u64, path: &str, seed: u64) -> std::io::Result<u64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, File::create(path)?));
    out.write_record([
        "id",
        "customer_id",
        "amount",
        "score",
        "category",
        "active",
        "created_at",
        "name",
        "country",
    ])?;
    let mut rows = 0u64;
    let mut name = String::new();
    let mut fields: [String; 9] = Default::default();
    while out.get_ref().get_ref().metadata()?.len() < target_bytes {
        // Check the file size only every so often; metadata is a syscall.
        for _ in 0..10_000 {
            rows += 1;
            fields[0] = rows.to_string();
            fields[1] = if rng.u8(0..10) == 0 {
                String::new()
            } else {
                rng.u32(0..1_000_000).to_string()
            };
            fields[2] = format!("{}.{:02}", rng.u32(0..100_000), rng.u8(0..100));
            fields[3] = format!("{:.6}", rng.f64() * 200.0 - 100.0);
            fields[4] = CATEGORIES[rng.usize(0..CATEGORIES.len())].to_owned();
            fields[5] = if rng.bool() { "true" } else { "false" }.to_owned();
            fields[6] = format!(
                "2024-{:02}-{:02} {:02}:{:02}:{:02}",
                rng.u8(1..=12),
                rng.u8(1..=28),
                rng.u8(0..24),
                rng.u8(0..60),
                rng.u8(0..60)
            );
            name.clear();
            for _ in 0..rng.usize(5..=14) {
                name.push(rng.lowercase());
            }
            match rng.u8(0..20) {
                0 => name.push_str(", jr"),
                1 => name.push_str(" \"the\" great"),
                _ => {}
            }
            fields[7].clone_from(&name);
            fields[8] = COUNTRIES[rng.usize(0..COUNTRIES.len())].to_owned();
            out.write_record(&fields)?;
        }
        out.flush()?;
    }
    out.flush()?;
    Ok(rows)
}
