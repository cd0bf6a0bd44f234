//! HAProxy in front of service replicas: the stand-in for an ALB and its target group
//! (round robin, an HTTP health check on `/healthz` every second, 2 failures mark a target down).
//! The runtime API (admin socket) lets a test drain, disable or re-point a server, as ECS does
//! when it deregisters a task from the target group.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::ChildGuard;

pub const BACKEND: &str = "replicas";
const FRONTEND: &str = "front";

/// How HAProxy behaves; the defaults are ALB-like.
#[derive(Debug, Clone)]
pub struct HaProxyOptions {
    /// Health check interval in milliseconds (`inter`).
    pub check_interval_ms: u64,
    /// Consecutive failed checks that mark a server down (`fall`).
    pub fall: u32,
    /// Consecutive passed checks that mark it up again (`rise`).
    pub rise: u32,
    /// Retry a request on another server when the connection failed before anything was sent
    /// (safe for every method). An ALB does not retry; the harsh tests turn this on to show what
    /// the service's drain must carry without it. Requests are buffered so that a POST with a
    /// body can be retried too (HAProxy retries only what it still holds).
    pub retry_on_connection_failure: bool,
    /// Server timeout (a hung replica holds a request this long before HAProxy gives up).
    pub server_timeout_ms: u64,
}

impl Default for HaProxyOptions {
    fn default() -> Self {
        Self {
            check_interval_ms: 1000,
            fall: 2,
            rise: 2,
            retry_on_connection_failure: false,
            server_timeout_ms: 65_000,
        }
    }
}

pub struct HaProxy {
    pub port: u16,
    dir: tempfile::TempDir,
    _process: ChildGuard,
}

/// One row of `show stat` for a server.
#[derive(Debug, Clone)]
pub struct ServerStat {
    pub name: String,
    /// `UP`, `DOWN`, `DRAIN`, `MAINT`, `UP 1/2`, `DOWN 1/2`, `no check`...
    pub status: String,
    /// Connections open to the server now.
    pub current_sessions: u64,
    /// Requests/sessions sent to it so far.
    pub total_sessions: u64,
}

impl HaProxy {
    /// Starts HAProxy on a free port with one server per backend port, named `r0`, `r1`, ...
    pub async fn start(backend_ports: &[u16], options: HaProxyOptions) -> Self {
        let servers: String = backend_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("  server r{i} 127.0.0.1:{p} check\n"))
            .collect();
        let retry = if options.retry_on_connection_failure {
            "  retries 3\n  option redispatch 1\n  retry-on conn-failure\n  option http-buffer-request\n"
        } else {
            "  retries 0\n"
        };
        Self::launch(|port| {
            format!(
                "defaults\n  mode http\n  timeout connect 2s\n  timeout client 70s\n  timeout server {server_timeout}ms\n  timeout http-keep-alive 60s\n{retry}\
                 frontend {FRONTEND}\n  bind 127.0.0.1:{port}\n  default_backend {BACKEND}\n\
                 backend {BACKEND}\n  balance roundrobin\n  option httpchk GET /healthz\n  http-check expect status 200\n  \
                 default-server inter {inter}ms fall {fall} rise {rise}\n{servers}",
                server_timeout = options.server_timeout_ms,
                inter = options.check_interval_ms,
                fall = options.fall,
                rise = options.rise,
            )
        })
        .await
    }

    /// A plain TCP forwarder to `target_port` (one server, `r0`), whose listener a test can close
    /// and reopen with [`HaProxy::close`] and [`HaProxy::open`]: a dependency that goes away and
    /// comes back (connections refused meanwhile) while the process behind it keeps its state.
    pub async fn tcp_forward(target_port: u16) -> Self {
        Self::launch(|port| {
            format!(
                "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 70s\n  timeout server 70s\n\
                 frontend {FRONTEND}\n  bind 127.0.0.1:{port}\n  default_backend {BACKEND}\n\
                 backend {BACKEND}\n  server r0 127.0.0.1:{target_port}\n"
            )
        })
        .await
    }

    /// Stops listening (new connections are refused) and cuts the connections open through it.
    pub async fn close(&self) {
        let out = self.command(&format!("disable frontend {FRONTEND}")).await;
        assert!(out.trim().is_empty(), "disable frontend: {out}");
        for server in self.stats().await {
            let out = self
                .command(&format!(
                    "shutdown sessions server {BACKEND}/{}",
                    server.name
                ))
                .await;
            assert!(out.trim().is_empty(), "shutdown sessions: {out}");
        }
        crate::wait_until(
            "the frontend to refuse connections",
            Duration::from_secs(10),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_err()
                    .then_some(())
            },
        )
        .await;
    }

    /// Listens again after [`HaProxy::close`].
    pub async fn open(&self) {
        let out = self.command(&format!("enable frontend {FRONTEND}")).await;
        assert!(out.trim().is_empty(), "enable frontend: {out}");
        crate::wait_until(
            "the frontend to accept connections",
            Duration::from_secs(10),
            || async {
                tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .ok()
                    .map(|_| ())
            },
        )
        .await;
    }

    /// Writes the `global` section (admin socket) plus `rest(port)` and starts HAProxy on a free port.
    async fn launch(rest: impl FnOnce(u16) -> String) -> Self {
        let port = crate::free_port();
        let dir = tempfile::Builder::new()
            .prefix("haproxy-")
            .tempdir()
            .expect("temp dir");
        let socket = dir.path().join("admin.sock");
        let config = format!(
            "global\n  stats socket {socket} mode 600 level admin\n  maxconn 4096\n{rest}",
            socket = socket.display(),
            rest = rest(port),
        );
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, config).expect("write haproxy config");
        let binary = std::env::var("HAPROXY").unwrap_or_else(|_| {
            if std::path::Path::new("/usr/sbin/haproxy").exists() {
                "/usr/sbin/haproxy".into()
            } else {
                "haproxy".into()
            }
        });
        let mut cmd = Command::new(binary);
        cmd.arg("-db").arg("-f").arg(&config_path);
        let process = ChildGuard::spawn("haproxy", &mut cmd, &dir.path().join("haproxy.log"));
        let haproxy = Self {
            port,
            dir,
            _process: process,
        };
        crate::wait_until("haproxy admin socket", Duration::from_secs(10), || async {
            tokio::net::UnixStream::connect(haproxy.socket())
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        haproxy
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    /// Sends one runtime API command and returns HAProxy's answer.
    pub async fn command(&self, command: &str) -> String {
        let mut stream = tokio::net::UnixStream::connect(self.socket())
            .await
            .expect("haproxy admin socket");
        stream
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("write admin command");
        let mut out = String::new();
        stream
            .read_to_string(&mut out)
            .await
            .expect("read admin answer");
        out
    }

    /// `ready`, `drain` or `maint` (ECS deregistration = drain, then the task is stopped).
    pub async fn set_state(&self, server: &str, state: &str) {
        let out = self
            .command(&format!("set server {BACKEND}/{server} state {state}"))
            .await;
        assert!(out.trim().is_empty(), "set state {server} {state}: {out}");
    }

    /// Points a server at another port (a replacement replica), as a target group registration.
    pub async fn set_port(&self, server: &str, port: u16) {
        let out = self
            .command(&format!(
                "set server {BACKEND}/{server} addr 127.0.0.1 port {port}"
            ))
            .await;
        assert!(
            !out.contains("No such") && !out.contains("ermission"),
            "set addr {server}: {out}"
        );
    }

    pub async fn stats(&self) -> Vec<ServerStat> {
        let csv = self.command("show stat").await;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |name: &str| header.iter().position(|h| *h == name).expect("stat column");
        let (px, sv, status, scur, stot) = (
            col("pxname"),
            col("svname"),
            col("status"),
            col("scur"),
            col("stot"),
        );
        lines
            .filter_map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                (f.len() > stot && f[px] == BACKEND && f[sv] != "BACKEND").then(|| ServerStat {
                    name: f[sv].to_string(),
                    status: f[status].to_string(),
                    current_sessions: f[scur].parse().unwrap_or(0),
                    total_sessions: f[stot].parse().unwrap_or(0),
                })
            })
            .collect()
    }

    pub async fn server(&self, name: &str) -> ServerStat {
        self.stats()
            .await
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no server {name}"))
    }

    /// Waits until `server`'s status starts with `status` (e.g. "UP", "DOWN", "DRAIN").
    pub async fn wait_status(&self, server: &str, status: &str, deadline: Duration) {
        crate::wait_until(
            &format!("haproxy server {server} to be {status}"),
            deadline,
            || async {
                self.server(server)
                    .await
                    .status
                    .starts_with(status)
                    .then_some(())
            },
        )
        .await
    }

    /// Waits until no connection is open to `server` (a drained target has no requests left).
    pub async fn wait_idle(&self, server: &str, deadline: Duration) {
        crate::wait_until(
            &format!("haproxy server {server} to have no connections"),
            deadline,
            || async { (self.server(server).await.current_sessions == 0).then_some(()) },
        )
        .await
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}
