use data_processor::configuration::{Command, Config};

#[tokio::main]
async fn main() {
    let cli = Config::parse_cli();
    let command = cli.command.unwrap_or(Command::Serve);
    if command != Command::Healthcheck {
        data_processor::telemetry::init(cli.config.log_format, &cli.config.log_filter);
    }
    let code = data_processor::run(command, cli.config).await;
    std::process::exit(code);
}
