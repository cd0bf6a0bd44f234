//! A minimal in-memory stand-in of the data-processor API (users, cookie session, files,
//! profile jobs) with the status codes of issues 2 and 5. Only for testing loadtest itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

#[derive(Default)]
struct Db {
    /// Serve downloads with one byte changed (to test the SHA-256 check).
    corrupt_downloads: bool,
    users: HashMap<String, String>,
    sessions: HashMap<String, String>,
    files: HashMap<String, (String, Bytes)>,
    jobs: HashMap<String, u32>,
}

type Shared = Arc<Mutex<Db>>;

pub struct Stub {
    pub url: String,
    requests: Arc<Mutex<u64>>,
}

impl Stub {
    pub async fn start() -> Self {
        Self::start_with(false).await
    }

    /// A stand-in whose downloads differ from what was uploaded.
    pub async fn start_corrupting_downloads() -> Self {
        Self::start_with(true).await
    }

    async fn start_with(corrupt_downloads: bool) -> Self {
        let db: Shared = Arc::new(Mutex::new(Db {
            corrupt_downloads,
            ..Db::default()
        }));
        let requests = Arc::new(Mutex::new(0u64));
        let counter = Arc::clone(&requests);
        let app = Router::new()
            .route("/api/v1/users", post(register))
            .route("/api/v1/session", post(login).get(whoami))
            .route("/api/v1/files", post(upload).get(list))
            .route("/api/v1/files/{id}/content", get(content))
            .route("/api/v1/files/{id}/jobs", post(start_job))
            .route("/api/v1/jobs/{id}", get(job))
            .layer(axum::middleware::from_fn(
                move |req, next: axum::middleware::Next| {
                    *counter.lock().unwrap() += 1;
                    async move { next.run(req).await }
                },
            ))
            .with_state(db);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, requests }
    }

    pub fn requests(&self) -> u64 {
        *self.requests.lock().unwrap()
    }
}

fn problem(status: StatusCode, title: &str) -> Response {
    let body = json!({"type": "about:blank", "title": title, "status": status.as_u16()});
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn user_of(db: &Shared, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let sid = cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix("sid="))?;
    db.lock().unwrap().sessions.get(sid).cloned()
}

async fn register(State(db): State<Shared>, Json(body): Json<Value>) -> Response {
    let name = body["username"].as_str().unwrap_or_default().to_string();
    let password = body["password"].as_str().unwrap_or_default().to_string();
    let mut db = db.lock().unwrap();
    if db.users.contains_key(&name) {
        return problem(StatusCode::CONFLICT, "username taken");
    }
    db.users.insert(name.clone(), password);
    (
        StatusCode::CREATED,
        Json(json!({"id": uuid::Uuid::new_v4(), "username": name})),
    )
        .into_response()
}

async fn login(State(db): State<Shared>, Json(body): Json<Value>) -> Response {
    let name = body["username"].as_str().unwrap_or_default().to_string();
    let mut db = db.lock().unwrap();
    if db.users.get(&name).map(String::as_str) != body["password"].as_str() {
        return problem(StatusCode::UNAUTHORIZED, "bad credentials");
    }
    let sid = uuid::Uuid::new_v4().simple().to_string();
    db.sessions.insert(sid.clone(), name.clone());
    let cookie = format!("sid={sid}; HttpOnly; SameSite=Lax; Path=/");
    (
        [(header::SET_COOKIE, cookie)],
        Json(json!({"user": {"username": name}})),
    )
        .into_response()
}

async fn whoami(State(db): State<Shared>, headers: HeaderMap) -> Response {
    match user_of(&db, &headers) {
        Some(name) => Json(json!({"user": {"username": name}})).into_response(),
        None => problem(StatusCode::UNAUTHORIZED, "no session"),
    }
}

async fn upload(
    State(db): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let Some(owner) = user_of(&db, &headers) else {
        return problem(StatusCode::UNAUTHORIZED, "no session");
    };
    let id = uuid::Uuid::new_v4().to_string();
    let sha256 = hex::encode(Sha256::digest(&body));
    let size = body.len();
    db.lock().unwrap().files.insert(id.clone(), (owner, body));
    let name = q.get("name").cloned().unwrap_or_default();
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "name": name, "size": size, "sha256": sha256})),
    )
        .into_response()
}

async fn list(State(db): State<Shared>, headers: HeaderMap) -> Response {
    let Some(owner) = user_of(&db, &headers) else {
        return problem(StatusCode::UNAUTHORIZED, "no session");
    };
    let db = db.lock().unwrap();
    let files: Vec<_> = db
        .files
        .iter()
        .filter(|(_, (o, _))| *o == owner)
        .map(|(id, _)| json!({"id": id}))
        .collect();
    Json(json!({"files": files})).into_response()
}

async fn content(State(db): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(owner) = user_of(&db, &headers) else {
        return problem(StatusCode::UNAUTHORIZED, "no session");
    };
    let db = db.lock().unwrap();
    match db.files.get(&id) {
        Some((o, bytes)) if *o == owner => {
            let mut body = bytes.to_vec();
            if db.corrupt_downloads {
                body[0] ^= 1;
            }
            ([(header::CONTENT_TYPE, "text/csv")], body).into_response()
        }
        _ => problem(StatusCode::NOT_FOUND, "no such file"),
    }
}

async fn start_job(
    State(db): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if user_of(&db, &headers).is_none() {
        return problem(StatusCode::UNAUTHORIZED, "no session");
    }
    let mut db = db.lock().unwrap();
    if !db.files.contains_key(&id) {
        return problem(StatusCode::NOT_FOUND, "no such file");
    }
    let job = uuid::Uuid::new_v4().to_string();
    db.jobs.insert(job.clone(), 0);
    (
        StatusCode::ACCEPTED,
        Json(json!({"id": job, "status": "queued"})),
    )
        .into_response()
}

/// A job is "running" on its first poll and "succeeded" afterwards, so users really poll.
async fn job(State(db): State<Shared>, Path(id): Path<String>) -> Response {
    let mut db = db.lock().unwrap();
    let Some(polls) = db.jobs.get_mut(&id) else {
        return problem(StatusCode::NOT_FOUND, "no such job");
    };
    *polls += 1;
    let status = if *polls > 1 { "succeeded" } else { "running" };
    Json(json!({"id": id, "status": status})).into_response()
}
