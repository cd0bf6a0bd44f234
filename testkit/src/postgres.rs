//! Postgres for tests: a fresh database per test on the shared server, or a private server
//! (its own data folder and port) for tests that stop, restart or freeze the database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

use crate::process::ChildGuard;

/// Where the shared server is; scripts/test sets it, and this default matches a stock machine.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database with a unique name, created empty on the server behind `admin_url`.
/// It is dropped (best effort) when the value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        Self::create_on(&admin_url()).await
    }

    pub async fn create_on(admin_url: &str) -> Self {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(admin_url).await.unwrap_or_else(|e| {
            panic!("cannot reach Postgres at {admin_url}: {e}; run scripts/test")
        });
        conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await
            .expect("create test database");
        let url = replace_database(admin_url, &name);
        Self {
            name,
            url,
            admin_url: admin_url.to_string(),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Best effort, off the test's runtime: a leftover test database is harmless.
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&admin).await {
                        let _ = conn
                            .execute(
                                format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)
                                    .as_str(),
                            )
                            .await;
                    }
                });
            }
        })
        .join()
        .ok();
    }
}

/// `postgres://u@h:p/db?x` -> `postgres://u@h:p/{name}?x`
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// A Postgres server of the test's own, on a free port, that the test may stop, restart or
/// SIGSTOP without disturbing other tests.
pub struct PrivatePostgres {
    pub port: u16,
    data: tempfile::TempDir,
    bin: PathBuf,
    server: Option<ChildGuard>,
    /// Checked on TCP when set.
    password: Option<String>,
}

impl PrivatePostgres {
    pub async fn start() -> Self {
        Self::start_with_auth(None).await
    }

    /// A server that checks passwords on TCP (SCRAM-SHA-256): user `postgres`, `password`.
    pub async fn start_with_password(password: &str) -> Self {
        Self::start_with_auth(Some(password)).await
    }

    async fn start_with_auth(password: Option<&str>) -> Self {
        let bin = postgres_bin_dir();
        let data = tempfile::Builder::new()
            .prefix("pg-")
            .tempdir()
            .expect("temp dir");
        let pgdata = data.path().join("data");
        std::fs::create_dir(&pgdata).expect("create pgdata");
        if crate::running_as_root() {
            chown_postgres(data.path());
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb.args([
            "-D",
            pgdata.to_str().expect("utf-8 path"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        if let Some(password) = password {
            let file = data.path().join("pwfile");
            std::fs::write(&file, password).expect("write pwfile");
            if crate::running_as_root() {
                chown_postgres(&file);
            }
            initdb
                .arg("--auth-host=scram-sha-256")
                .arg(format!("--pwfile={}", file.display()));
        }
        let status = as_postgres_user(&mut initdb).output().expect("run initdb");
        assert!(
            status.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let mut pg = Self {
            port: crate::free_port(),
            data,
            bin,
            server: None,
            password: password.map(str::to_string),
        };
        pg.start_server().await;
        pg
    }

    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The postmaster's pid, for SIGSTOP/SIGCONT.
    pub fn pid(&self) -> u32 {
        self.server.as_ref().map(|s| s.pid()).unwrap_or(0)
    }

    /// Stops the server (fast shutdown: connections are closed, as in a failover).
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.signal(libc::SIGINT);
            server.wait();
        }
    }

    /// Starts the server again on the same port and data, and waits until it accepts connections.
    pub async fn start_server(&mut self) {
        let pgdata = self.data.path().join("data");
        let socket_dir = self.data.path();
        let log = self
            .data
            .path()
            .join(format!("postgres-{}.log", uuid::Uuid::new_v4().simple()));
        let mut cmd = Command::new(self.bin.join("postgres"));
        cmd.args(["-D", pgdata.to_str().expect("utf-8 path")])
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                &format!("unix_socket_directories={}", socket_dir.display()),
            ])
            .args(["-c", "fsync=off", "-c", "max_connections=200"]);
        as_postgres_user(&mut cmd);
        self.server = Some(ChildGuard::spawn("postgres", &mut cmd, &log));
        let url = match &self.password {
            Some(p) => self
                .admin_url()
                .replacen("postgres@", &format!("postgres:{p}@"), 1),
            None => self.admin_url(),
        };
        crate::wait_until(
            "private postgres to accept connections",
            Duration::from_secs(30),
            || {
                let url = url.clone();
                async move { PgConnection::connect(&url).await.ok().map(|_| ()) }
            },
        )
        .await;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.signal(libc::SIGCONT);
        }
        self.stop();
    }
}

fn as_postgres_user(cmd: &mut Command) -> &mut Command {
    if crate::running_as_root() {
        use std::os::unix::process::CommandExt;
        let (uid, gid) = postgres_ids();
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn postgres_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .expect("id -u postgres");
    let uid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a postgres user exists");
    let out = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .expect("id -g postgres");
    let gid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a postgres group exists");
    (uid, gid)
}

fn chown_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success(), "chown {path:?} to postgres failed");
}

/// The newest `/usr/lib/postgresql/<version>/bin`, or `PG_BIN_DIR`.
pub fn postgres_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let newest = versions
        .last()
        .expect("a PostgreSQL version under /usr/lib/postgresql");
    PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            replace_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            replace_database("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
        assert_eq!(
            replace_database("postgres://u@h:1", "x"),
            "postgres://u@h:1/x"
        );
    }
}
