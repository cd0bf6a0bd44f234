//! Profiles one CSV file and prints the result as JSON.
//!
//! `cargo run --release -p csv-profile --example profile -- [--threads N] [--chunk-kib N] [--no-quantiles] FILE`
//!
//! One thread and quantiles on by default, as `ProfileOptions::default()`.

use std::fs::File;
use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

use csv_profile::{ProfileOptions, profile};

fn main() -> ExitCode {
    let mut options = ProfileOptions::default();
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-quantiles" => options.quantiles = false,
            "--threads" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => options.threads = n,
                None => return usage(),
            },
            "--chunk-kib" => match args.next().and_then(|n| n.parse::<usize>().ok()) {
                Some(n) => options.chunk_bytes = n * 1024,
                None => return usage(),
            },
            _ if path.is_none() && !arg.starts_with("--") => path = Some(arg),
            _ => return usage(),
        }
    }
    let Some(path) = path else {
        return usage();
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("cannot open {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = profile(file, &options, &mut |_| ControlFlow::Continue(()));
    let (json, code) = match &result {
        Ok(p) => (serde_json::to_string_pretty(p), ExitCode::SUCCESS),
        Err(e) => (serde_json::to_string_pretty(e), ExitCode::FAILURE),
    };
    match json {
        Ok(text) => {
            // A closed stdout (e.g. `| head`) is not worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            code
        }
        Err(e) => {
            eprintln!("cannot serialise the result: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: profile [--threads N] [--chunk-kib N] [--no-quantiles] FILE.csv");
    ExitCode::from(2)
}
