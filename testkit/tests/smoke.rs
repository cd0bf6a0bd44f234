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
        sqlx::PgPool::connect(&db.url).await.is_err(),
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
