//! Every error is application/problem+json with the right status, whoever produced it.

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/v1/nothing-here").await, 404).await;
}

#[tokio::test]
async fn wrong_method_is_a_405_problem_with_allow() {
    let app = spawn_app().await;
    let response = app
        .client
        .put(app.url("/api/v1/session"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("allow"));
    assert_problem(response, 405).await;
}

#[tokio::test]
async fn wrong_content_type_is_a_415_problem() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/users"))
        .header("content-type", "text/plain")
        .body("username=alice")
        .send()
        .await
        .unwrap();
    assert_problem(response, 415).await;
}

#[tokio::test]
async fn body_errors_are_400_and_422_problems() {
    let app = spawn_app().await;
    let malformed = app
        .client
        .post(app.url("/api/v1/users"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400).await;

    let missing_field = app
        .client
        .post(app.url("/api/v1/users"))
        .json(&serde_json::json!({"username": "alice"}))
        .send()
        .await
        .unwrap();
    let body = assert_problem(missing_field, 422).await;
    assert!(
        body["detail"].as_str().unwrap().contains("password"),
        "{body}"
    );
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem() {
    let app = spawn_app().await;
    let huge = format!(
        "{{\"username\":\"alice\",\"password\":\"{}\"}}",
        "x".repeat(3 * 1024 * 1024)
    );
    let response = app
        .client
        .post(app.url("/api/v1/users"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(response, 413).await;
}
