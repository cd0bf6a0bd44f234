use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use loadtest::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadtest: {}", one_line(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // goose logs a warning per failed request; the summary counts them instead.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,goose=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(loadtest::run(cli)) {
        Ok(outcome) if outcome.failures == 0 => ExitCode::SUCCESS,
        Ok(outcome) => {
            eprintln!(
                "loadtest: {} of {} requests failed (see the errors above)",
                outcome.failures, outcome.requests
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("loadtest: {}", one_line(&e.to_string()));
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// clap's messages span lines (usage, a tip); the first paragraph, joined, says what is wrong.
fn one_line(message: &str) -> String {
    message
        .split("\n\n")
        .next()
        .unwrap_or(message)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}
