//! `/openapi.json`: the description the handlers generate, checked against what the router serves.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, json, spawn_app, unique_name};

/// Every route of the service (README's API table), with its methods.
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/v1/_ping-db", &["get"]),
    ("/api/v1/files", &["get", "post"]),
    ("/api/v1/files/{id}", &["get", "delete"]),
    ("/api/v1/files/{id}/content", &["get"]),
    ("/api/v1/files/{id}/jobs", &["post"]),
    ("/api/v1/jobs", &["get"]),
    ("/api/v1/jobs/{id}", &["get", "delete"]),
    ("/api/v1/jobs/{id}/result", &["get"]),
    ("/api/v1/session", &["get", "post", "delete"]),
    ("/api/v1/users", &["post"]),
    ("/healthz", &["get"]),
    ("/metrics", &["get"]),
    ("/openapi.json", &["get"]),
    ("/readyz", &["get"]),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn spec(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{:?}",
        response.headers()
    );
    json(response).await
}

/// `(path, method, operation)` of every documented operation.
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut all = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                all.push((path.clone(), method.clone(), operation.clone()));
            }
        }
    }
    all
}

/// A response object, through its `$ref` when it is a shared one.
fn resolve<'a>(spec: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("a response reference: {reference}"));
            &spec["components"]["responses"][name]
        }
        None => response,
    }
}

#[tokio::test]
async fn openapi_json_is_an_openapi_3_1_document_without_a_session() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let version = spec["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(spec["info"]["title"], "data-processor");
    assert_eq!(
        spec["components"]["securitySchemes"]["dp_session"],
        json!({
            "type": "apiKey",
            "in": "cookie",
            "name": "dp_session",
            "description": "the session cookie set by POST /api/v1/session",
        })
    );
    let all = operations(&spec);
    let mut ids: Vec<&str> = all
        .iter()
        .map(|(path, method, operation)| {
            operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
        })
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique: {ids:?}");
}

#[tokio::test]
async fn the_description_lists_exactly_the_served_routes_and_methods() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let mut documented: Vec<(String, Vec<String>)> = spec["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let mut methods: Vec<String> = item
                .as_object()
                .expect("a path item")
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .cloned()
                .collect();
            methods.sort();
            (path.clone(), methods)
        })
        .collect();
    documented.sort();
    let expected: Vec<(String, Vec<String>)> = ROUTES
        .iter()
        .map(|(path, methods)| {
            let mut methods: Vec<String> = methods.iter().map(|m| m.to_string()).collect();
            methods.sort();
            (path.to_string(), methods)
        })
        .collect();
    assert_eq!(documented, expected);

    // The router serves no other method on a documented path (HEAD comes with every GET).
    for (path, methods) in &documented {
        let url = app.url(&path.replace("{id}", &uuid::Uuid::nil().to_string()));
        for method in ["get", "put", "post", "delete", "patch"] {
            if methods.iter().any(|m| m == method) {
                continue;
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let response = app
                .client
                .request(method.clone(), &url)
                .send()
                .await
                .expect("a response");
            assert_eq!(response.status(), 405, "{method} {path}");
        }
    }
}

/// Every documented operation, called on resources that exist (so a 404 can only come from the
/// fallback), answers one of its documented statuses.
#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_a_documented_status() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let cookie = app.signed_in(&unique_name("spec")).await;
    let file = app
        .client
        .post(app.url("/api/v1/files"))
        .query(&[("name", "spec.csv")])
        .header("cookie", &cookie)
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .await
        .expect("upload");
    assert_eq!(file.status(), 201);
    let file_id = json(file).await["id"].as_str().expect("an id").to_string();
    let job = app
        .post_json_as(
            &cookie,
            &format!("/api/v1/files/{file_id}/jobs"),
            &json!({"kind": "profile"}),
        )
        .await;
    assert_eq!(job.status(), 202);
    let job_id = json(job).await["id"].as_str().expect("an id").to_string();

    let mut all = operations(&spec);
    // Deletions last, the file's after its job's and the session's very last: the others need
    // what they delete.
    all.sort_by_key(|(path, method, _)| {
        (
            method == "delete",
            path == "/api/v1/files/{id}",
            path == "/api/v1/session",
        )
    });
    for (path, method, operation) in &all {
        let id = if path.starts_with("/api/v1/jobs/") {
            &job_id
        } else {
            &file_id
        };
        let url = app.url(&path.replace("{id}", id));
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
        let mut request = app
            .client
            .request(method.clone(), &url)
            .header("cookie", &cookie);
        request = match (method.as_str(), path.as_str()) {
            ("POST", "/api/v1/files") => request.query(&[("name", "second.txt")]).body("x"),
            ("POST", "/api/v1/users" | "/api/v1/session") => request.json(&json!({
                "username": unique_name("other"),
                "password": crate::helpers::PASSWORD,
            })),
            ("POST", _) => request.json(&json!({"kind": "profile"})),
            _ => request,
        };
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        assert_ne!(status, 404, "{method} {path} is not routed");
        let documented = operation["responses"]
            .as_object()
            .expect("responses")
            .contains_key(&status.to_string());
        assert!(
            documented,
            "{method} {path} answered {status}, undocumented"
        );
    }
}

#[tokio::test]
async fn every_documented_error_status_is_problem_json() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let problem = &spec["components"]["schemas"]["Problem"];
    let mut required: Vec<&str> = problem["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["detail", "status", "title", "type"]);

    let mut errors = 0;
    for (path, method, operation) in operations(&spec) {
        for (status, response) in operation["responses"].as_object().expect("responses") {
            if status.as_str() < "400" {
                continue;
            }
            errors += 1;
            let content = resolve(&spec, response)["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {status}: no content"));
            let types: Vec<&String> = content.keys().collect();
            assert_eq!(
                types,
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            let schema = content["application/problem+json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_default();
            // `/readyz` says which checks failed, in a Problem with more members.
            assert!(
                schema == "#/components/schemas/Problem"
                    || (path == "/readyz" && schema == "#/components/schemas/NotReady"),
                "{method} {path} {status}: {schema}"
            );
        }
    }
    assert!(errors > 50, "only {errors} error responses documented");
}

#[tokio::test]
async fn the_documented_job_kinds_are_the_known_kinds() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let documented: Vec<&str> = spec["components"]["schemas"]["JobKindName"]["enum"]
        .as_array()
        .expect("an enum")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(documented, data_processor::jobs::kind_names());
}
