//! A TCP proxy on loopback that can cut some of its connections off *silently*: while they are
//! frozen nothing crosses in either direction (no data, no FIN, no RST) and both sockets stay
//! open, as across a network partition or a NAT that forgot the flow. Which connections freeze is
//! chosen by a marker in the first bytes the client sent (for Postgres, the startup message with
//! its `application_name`; the client must use `sslmode=disable` for that to be readable).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How much of a connection's opening the marker is looked for in.
const OPENING: usize = 1024;

pub struct PartitionProxy {
    addr: SocketAddr,
    frozen: watch::Sender<Option<Vec<u8>>>,
    accept: JoinHandle<()>,
}

impl PartitionProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the partition proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (frozen, marker) = watch::channel(None);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, upstream, marker.clone()));
            }
        });
        Self {
            addr,
            frozen,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, every connection (open or future) whose opening bytes contain `marker`
    /// forwards nothing until `thaw`.
    pub fn freeze(&self, marker: &[u8]) {
        self.frozen.send_replace(Some(marker.to_vec()));
    }

    /// Lets everything through again, including what was held back.
    pub fn thaw(&self) {
        self.frozen.send_replace(None);
    }
}

impl Drop for PartitionProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    frozen: watch::Receiver<Option<Vec<u8>>>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let opening = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let up = tokio::spawn(copy(
        client_read,
        server_write,
        frozen.clone(),
        opening.clone(),
        true,
    ));
    let down = tokio::spawn(copy(server_read, client_write, frozen, opening, false));
    let _ = tokio::join!(up, down);
}

/// Copies until EOF; before writing each chunk, and before passing the EOF on, waits while
/// this connection is frozen.
async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<Option<Vec<u8>>>,
    opening: Arc<std::sync::Mutex<Vec<u8>>>,
    records_opening: bool,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        let read = from.read(&mut buffer).await.unwrap_or(0);
        if records_opening {
            let mut seen = opening.lock().expect("opening lock");
            let room = OPENING.saturating_sub(seen.len());
            seen.extend_from_slice(&buffer[..read.min(room)]);
        }
        if frozen
            .wait_for(|marker| !matches(marker, &opening))
            .await
            .is_err()
        {
            // The proxy is gone: so is the partition.
            return;
        }
        if read == 0 || to.write_all(&buffer[..read]).await.is_err() {
            let _ = to.shutdown().await;
            return;
        }
    }
}

fn matches(marker: &Option<Vec<u8>>, opening: &std::sync::Mutex<Vec<u8>>) -> bool {
    let seen = opening.lock().expect("opening lock");
    marker.as_ref().is_some_and(|m| {
        !m.is_empty() && seen.windows(m.len()).any(|window| window == m.as_slice())
    })
}
