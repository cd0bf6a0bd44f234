use clap::Parser;
use deployer::cli::{Cli, run};
use deployer::release::NoPublisher;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr and stay quiet unless RUST_LOG asks; stdout carries the result.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let code = run(Cli::parse(), &NoPublisher).await;
    std::process::exit(code);
}
