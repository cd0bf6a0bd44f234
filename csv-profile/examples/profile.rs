//! Profiles one CSV file on one thread and prints the result as JSON.
//!
//! `cargo run --release -p csv-profile --example profile -- FILE`

use std::fs::File;
use std::io::Write;
use std::ops::ControlFlow;
use std::process::ExitCode;

use csv_profile::{ProfileOptions, profile};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: profile FILE.csv");
        return ExitCode::from(2);
    };
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("cannot open {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = profile(file, &ProfileOptions::default(), &mut |_| {
        ControlFlow::Continue(())
    });
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
