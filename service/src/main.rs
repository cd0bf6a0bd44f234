use data_processor::configuration::{Command, Config};

fn main() {
    // Before the runtime starts its threads.
    data_processor::memory::return_large_buffers_to_the_os();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("data-processor: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    };
    // Exits from inside the runtime, as `#[tokio::main]` returning would not: dropping the
    // runtime would wait for blocking tasks still running.
    runtime.block_on(async { std::process::exit(start().await) })
}

async fn start() -> i32 {
    let cli = Config::parse_cli();
    let command = cli.command.unwrap_or(Command::Serve);
    if command != Command::Healthcheck {
        data_processor::telemetry::init(cli.config.log_format, &cli.config.log_filter);
    }
    data_processor::run(command, cli.config).await
}
