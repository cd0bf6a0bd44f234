//! The stand-ins start and answer: if these fail, every other test would fail for the same reason.

use std::time::Duration;

#[tokio::test]
async fn a_fresh_database_accepts_queries() {
    let db = testkit::postgres::TestDatabase::create().await;
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .expect("select");
    assert_eq!(one, 1);
}

#[tokio::test]
async fn moto_serves_s3_and_comes_back_after_a_restart() {
    let mut moto = testkit::moto::MotoServer::start().await;
    let bucket = moto.create_bucket().await;
    assert!(bucket.starts_with("test-"));
    moto.stop();
    assert!(
        reqwest::get(moto.endpoint()).await.is_err(),
        "moto still answers after stop"
    );
    moto.start_server().await;
    let res = reqwest::get(format!("{}/moto-api/", moto.endpoint()))
        .await
        .expect("moto answers");
    assert!(res.status().is_success());
}

#[tokio::test]
async fn the_registry_demands_credentials() {
    let registry = testkit::registry::Registry::start().await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/v2/", registry.host());
    let anonymous = client.get(&url).send().await.expect("registry answers");
    assert_eq!(anonymous.status(), 401);
    let authed = client
        .get(&url)
        .basic_auth(&registry.username, Some(&registry.password))
        .send()
        .await
        .expect("registry answers");
    assert_eq!(authed.status(), 200, "registry log: {}", registry.log());
}

#[tokio::test]
async fn a_private_postgres_can_be_stopped_and_started() {
    let mut pg = testkit::postgres::PrivatePostgres::start().await;
    let db = testkit::postgres::TestDatabase::create_on(&pg.admin_url()).await;
    pg.stop();
    assert!(
        <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .is_err(),
        "database answers while stopped"
    );
    pg.start_server().await;
    let pool = testkit::wait_until("database back", Duration::from_secs(10), || async {
        sqlx::PgPool::connect(&db.url).await.ok()
    })
    .await;
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .expect("select");
    assert_eq!(one, 1);
}

/// A tiny HTTP backend: answers every request with 200 and its own name.
async fn tiny_backend(name: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let body = name;
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn haproxy_spreads_requests_and_honours_drain() {
    use testkit::haproxy::{HaProxy, HaProxyOptions};
    let a = tiny_backend("a").await;
    let b = tiny_backend("b").await;
    let dead = testkit::free_port();
    let lb = HaProxy::start(&[a, b, dead], HaProxyOptions::default()).await;
    lb.wait_status("r0", "UP", Duration::from_secs(10)).await;
    lb.wait_status("r1", "UP", Duration::from_secs(10)).await;
    lb.wait_status("r2", "DOWN", Duration::from_secs(10)).await;
    let client = reqwest::Client::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let body = client
            .get(lb.url())
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        seen.insert(body);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["a", "b"]);
    lb.set_state("r1", "drain").await;
    lb.wait_status("r1", "DRAIN", Duration::from_secs(5)).await;
    for _ in 0..4 {
        let body = client
            .get(lb.url())
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "a", "a drained server got new traffic");
    }
}

#[tokio::test]
async fn a_tcp_forward_refuses_connections_while_closed_and_forwards_again_when_open() {
    use testkit::haproxy::HaProxy;
    let target = tiny_backend("t").await;
    let gate = HaProxy::tcp_forward(target).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let get = || {
        client
            .get(gate.url())
            .timeout(Duration::from_secs(5))
            .send()
    };
    assert_eq!(get().await.expect("open").text().await.expect("body"), "t");
    gate.close().await;
    let refused = get().await.expect_err("a closed gate answered");
    assert!(refused.is_connect(), "not a connection error: {refused:?}");
    gate.open().await;
    assert_eq!(
        get().await.expect("reopened").text().await.expect("body"),
        "t"
    );
}

#[test]
fn a_workspace_binary_can_be_built_and_found_from_a_test() {
    let path = testkit::bin::cargo_bin("data-processor", "data-processor");
    assert!(path.ends_with("data-processor"));
}
