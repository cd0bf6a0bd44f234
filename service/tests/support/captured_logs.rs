//! What the log tests share: a log writer that keeps what was written, and the configuration of
//! an app on a fresh database. Each log test is its own binary (it installs the process-wide
//! subscriber) and includes this file.

use std::io::Write;
use std::sync::{Arc, Mutex};

use clap::Parser;
use data_processor::configuration::{Cli, Config};
use serde_json::Value;

#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Every line written so far, each parsed as JSON.
    pub fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

/// The app's configuration on `database_url`, on a free port, over plain HTTP.
pub fn config_on(database_url: &str) -> Config {
    Cli::try_parse_from([
        "data-processor",
        "--listen-addr",
        "127.0.0.1:0",
        "--database-url",
        database_url,
        "--session-cookie-secure",
        "false",
    ])
    .unwrap()
    .config
}
