use crate::helpers::{PASSWORD, assert_problem, json, spawn_app, unique_name};

#[tokio::test]
async fn registering_returns_201_with_id_and_username() {
    let app = spawn_app().await;
    let response = app.register("Alice.Example", PASSWORD).await;
    assert_eq!(response.status(), 201);
    let body = json(response).await;
    assert_eq!(body["username"], "Alice.Example");
    assert!(uuid::Uuid::parse_str(body["id"].as_str().unwrap()).is_ok());
    assert!(body.get("password_hash").is_none());
}

#[tokio::test]
async fn a_taken_username_in_any_case_is_a_409() {
    let app = spawn_app().await;
    let name = unique_name("bob");
    assert_eq!(app.register(&name, PASSWORD).await.status(), 201);
    assert_problem(app.register(&name.to_uppercase(), PASSWORD).await, 409).await;
}

#[tokio::test]
async fn weak_or_absurd_passwords_and_bad_usernames_are_422() {
    let app = spawn_app().await;
    assert_problem(app.register("carol", "short").await, 422).await;
    assert_problem(app.register("carol", &"x".repeat(257)).await, 422).await;
    assert_problem(app.register("c", PASSWORD).await, 422).await;
    assert_problem(app.register("carol smith", PASSWORD).await, 422).await;
    // Nothing was created by the failures.
    assert_eq!(app.register("carol", PASSWORD).await.status(), 201);
}

#[tokio::test]
async fn the_password_is_stored_as_an_argon2id_hash() {
    let app = spawn_app().await;
    assert_eq!(app.register("dave", PASSWORD).await.status(), 201);
    let data_processor::db::Pool::Postgres(pool) = &app.state.db.pool else {
        panic!("tests run on Postgres")
    };
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'dave'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}
