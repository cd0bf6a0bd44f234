//! A steady mixed load of virtual users (login, session reads, uploads with their SHA-256
//! recorded, downloads checked against it, listings), bounded in time and count, that records
//! every request's outcome so a scenario can count failures and prove nothing acknowledged is lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Login,
    SessionRead,
    Upload,
    Download,
    List,
    /// `POST /api/v1/files/{id}/jobs` (a profile of one of the user's uploads; database only).
    StartJob,
}

impl Op {
    pub fn touches_storage(self) -> bool {
        matches!(self, Op::Upload | Op::Download)
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub op: Op,
    /// When the request started, from the start of the load.
    pub at: Duration,
    pub latency: Duration,
    pub status: Option<u16>,
    /// Why it counts as failed (transport error, unexpected status, wrong bytes); None = success.
    pub error: Option<String>,
    pub replica: Option<String>,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// A job the service accepted with 202: it must end `succeeded` later, whatever happened meanwhile.
#[derive(Debug, Clone)]
pub struct AcceptedJob {
    pub id: String,
}

/// An upload the service acknowledged with 201: it must download with the same SHA-256 later.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    pub id: String,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub users: usize,
    pub upload_bytes: usize,
    /// Pause between one user's requests.
    pub think: Duration,
    pub request_timeout: Duration,
    /// Hard stop, whatever the scenario does.
    pub max_duration: Duration,
    /// Hard cap on requests per user.
    pub max_requests_per_user: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            users: 6,
            upload_bytes: 16 * 1024,
            think: Duration::from_millis(20),
            request_timeout: Duration::from_secs(10),
            max_duration: Duration::from_secs(180),
            max_requests_per_user: 20_000,
        }
    }
}

pub struct VirtualUser {
    pub username: String,
    pub client: reqwest::Client,
    pub outcomes: Vec<Outcome>,
    pub acknowledged: Vec<Acknowledged>,
    pub jobs: Vec<AcceptedJob>,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    tasks: Vec<tokio::task::JoinHandle<VirtualUser>>,
}

pub const PASSWORD: &str = "correct horse battery staple";

/// A client with its own cookie jar.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(timeout)
        .build()
        .expect("http client")
}

/// Registers and logs in a fresh user; panics if the service cannot (the bed is not ready).
pub async fn signed_in_user(base: &str, timeout: Duration) -> (String, reqwest::Client) {
    let client = client(timeout);
    let username = format!("u{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let body = serde_json::json!({ "username": username, "password": PASSWORD });
    let res = client
        .post(format!("{base}/api/v1/users"))
        .json(&body)
        .send()
        .await
        .expect("register");
    assert_eq!(
        res.status(),
        201,
        "register: {}",
        res.text().await.unwrap_or_default()
    );
    let res = client
        .post(format!("{base}/api/v1/session"))
        .json(&body)
        .send()
        .await
        .expect("login");
    assert_eq!(
        res.status(),
        200,
        "login: {}",
        res.text().await.unwrap_or_default()
    );
    (username, client)
}

impl Load {
    /// Signs in `options.users` users (before the clock starts), then starts them.
    pub async fn start(base: &str, options: LoadOptions) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut users = Vec::new();
        for _ in 0..options.users {
            users.push(signed_in_user(base, options.request_timeout).await);
        }
        let started = Instant::now();
        let tasks = users
            .into_iter()
            .map(|(username, client)| {
                let user = VirtualUser {
                    username,
                    client,
                    outcomes: Vec::new(),
                    acknowledged: Vec::new(),
                    jobs: Vec::new(),
                };
                tokio::spawn(run_user(
                    base.to_string(),
                    user,
                    options.clone(),
                    started,
                    stop.clone(),
                ))
            })
            .collect();
        Self {
            stop,
            started,
            tasks,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Lets the load run until `at` (from its start) has passed.
    pub async fn run_until(&self, at: Duration) {
        if let Some(left) = at.checked_sub(self.started.elapsed()) {
            // The load itself is what runs meanwhile; this is a measurement window, not a wait
            // for a condition.
            tokio::time::sleep(left).await;
        }
    }

    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut users = Vec::new();
        for task in self.tasks {
            users.push(task.await.expect("virtual user task"));
        }
        LoadReport {
            users,
            duration: self.started.elapsed(),
        }
    }
}

async fn run_user(
    base: String,
    mut user: VirtualUser,
    options: LoadOptions,
    started: Instant,
    stop: Arc<AtomicBool>,
) -> VirtualUser {
    let mut step = 0usize;
    while !stop.load(Ordering::SeqCst)
        && started.elapsed() < options.max_duration
        && user.outcomes.len() < options.max_requests_per_user
    {
        let op = match step % 12 {
            0 if step > 0 => Op::Login,
            1 | 5 | 9 => Op::Upload,
            3 | 7 | 11 => Op::Download,
            6 => Op::List,
            10 => Op::StartJob,
            _ => Op::SessionRead,
        };
        step += 1;
        if matches!(op, Op::Download | Op::StartJob) && user.acknowledged.is_empty() {
            continue;
        }
        let outcome = perform(&base, &mut user, op, &options, started).await;
        user.outcomes.push(outcome);
        tokio::time::sleep(options.think).await;
    }
    user
}

fn replica_of(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn perform(
    base: &str,
    user: &mut VirtualUser,
    op: Op,
    options: &LoadOptions,
    started: Instant,
) -> Outcome {
    let at = started.elapsed();
    let begin = Instant::now();
    let client = user.client.clone();
    let (status, error, replica) = match op {
        Op::Login => {
            let body = serde_json::json!({ "username": user.username, "password": PASSWORD });
            check(
                client
                    .post(format!("{base}/api/v1/session"))
                    .json(&body)
                    .send()
                    .await,
                200,
            )
            .await
        }
        Op::SessionRead => {
            check(
                client.get(format!("{base}/api/v1/session")).send().await,
                200,
            )
            .await
        }
        Op::List => {
            check(
                client
                    .get(format!("{base}/api/v1/files?limit=10"))
                    .send()
                    .await,
                200,
            )
            .await
        }
        Op::Upload => {
            let bytes = random_csv(options.upload_bytes);
            let sha = hex::encode(Sha256::digest(&bytes));
            let res = client
                .post(format!("{base}/api/v1/files?name=load.csv"))
                .header("content-type", "text/csv")
                .body(bytes)
                .send()
                .await;
            match res {
                Ok(res) if res.status() == 201 => {
                    let replica = replica_of(&res);
                    match res.json::<serde_json::Value>().await {
                        Ok(file) if file["sha256"] == sha => {
                            let id = file["id"].as_str().unwrap_or_default().to_string();
                            user.acknowledged.push(Acknowledged { id, sha256: sha });
                            (Some(201), None, replica)
                        }
                        Ok(file) => (
                            Some(201),
                            Some(format!("sha256 mismatch in 201: {file}")),
                            replica,
                        ),
                        Err(e) => (
                            Some(201),
                            Some(format!("201 body unreadable: {e}")),
                            replica,
                        ),
                    }
                }
                other => check(other, 201).await,
            }
        }
        Op::StartJob => {
            let i = rand::rng().random_range(0..user.acknowledged.len());
            let file = &user.acknowledged[i].id;
            let res = client
                .post(format!("{base}/api/v1/files/{file}/jobs"))
                .json(&serde_json::json!({ "kind": "profile" }))
                .send()
                .await;
            match res {
                Ok(res) if res.status() == 202 => {
                    let replica = replica_of(&res);
                    match res.json::<serde_json::Value>().await {
                        Ok(job) if job["id"].is_string() => {
                            let id = job["id"].as_str().unwrap_or_default().to_string();
                            user.jobs.push(AcceptedJob { id });
                            (Some(202), None, replica)
                        }
                        Ok(job) => (Some(202), Some(format!("no job id in 202: {job}")), replica),
                        Err(e) => (
                            Some(202),
                            Some(format!("202 body unreadable: {e}")),
                            replica,
                        ),
                    }
                }
                other => check(other, 202).await,
            }
        }
        Op::Download => {
            let i = rand::rng().random_range(0..user.acknowledged.len());
            let file = user.acknowledged[i].clone();
            match client
                .get(format!("{base}/api/v1/files/{}/content", file.id))
                .send()
                .await
            {
                Ok(res) if res.status() == 200 => {
                    let replica = replica_of(&res);
                    match res.bytes().await {
                        Ok(bytes) if hex::encode(Sha256::digest(&bytes)) == file.sha256 => {
                            (Some(200), None, replica)
                        }
                        Ok(_) => (
                            Some(200),
                            Some("downloaded bytes differ from the upload".into()),
                            replica,
                        ),
                        Err(e) => (Some(200), Some(format!("body cut: {e}")), replica),
                    }
                }
                other => check(other, 200).await,
            }
        }
    };
    Outcome {
        op,
        at,
        latency: begin.elapsed(),
        status,
        error,
        replica,
    }
}

/// A CSV of random numbers and labels, about `bytes` long (so every upload can be profiled).
fn random_csv(bytes: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    let mut out = b"id,amount,label\n".to_vec();
    let mut row = 0u64;
    while out.len() < bytes {
        let amount: f64 = rng.random_range(-1000.0..1000.0);
        let label: u32 = rng.random();
        out.extend_from_slice(format!("{row},{amount:.3},l{label:x}\n").as_bytes());
        row += 1;
    }
    out
}

async fn check(
    res: Result<reqwest::Response, reqwest::Error>,
    expected: u16,
) -> (Option<u16>, Option<String>, Option<String>) {
    match res {
        Ok(res) => {
            let status = res.status().as_u16();
            let replica = replica_of(&res);
            let ok = status == expected;
            let body = res.text().await.unwrap_or_default();
            let error = (!ok).then(|| {
                format!(
                    "HTTP {status}: {}",
                    body.chars().take(200).collect::<String>()
                )
            });
            (Some(status), error, replica)
        }
        Err(e) => (None, Some(format!("transport: {e}")), None),
    }
}

pub struct LoadReport {
    pub users: Vec<VirtualUser>,
    pub duration: Duration,
}

impl LoadReport {
    pub fn outcomes(&self) -> impl Iterator<Item = &Outcome> {
        self.users.iter().flat_map(|u| u.outcomes.iter())
    }

    pub fn requests(&self) -> usize {
        self.outcomes().count()
    }

    pub fn failures(&self) -> Vec<&Outcome> {
        self.outcomes().filter(|o| o.failed()).collect()
    }

    /// Latency percentile (0..=100) over every request.
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(self.outcomes().map(|o| o.latency).collect(), p)
    }

    pub fn served_by(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for o in self.outcomes() {
            if let Some(r) = &o.replica {
                *counts.entry(r.clone()).or_insert(0) += 1;
            }
        }
        counts
    }

    pub fn acknowledged(&self) -> usize {
        self.users.iter().map(|u| u.acknowledged.len()).sum()
    }

    /// Downloads every acknowledged upload through `base` and returns those whose bytes are
    /// missing or differ: the data the service lost.
    pub async fn lost_uploads(&self, base: &str) -> Vec<String> {
        let mut lost = Vec::new();
        for user in &self.users {
            for file in &user.acknowledged {
                let url = format!("{base}/api/v1/files/{}/content", file.id);
                let ok = match user.client.get(&url).send().await {
                    Ok(res) if res.status() == 200 => match res.bytes().await {
                        Ok(bytes) => hex::encode(Sha256::digest(&bytes)) == file.sha256,
                        Err(_) => false,
                    },
                    _ => false,
                };
                if !ok {
                    lost.push(file.id.clone());
                }
            }
        }
        lost
    }

    pub fn accepted_jobs(&self) -> usize {
        self.users.iter().map(|u| u.jobs.len()).sum()
    }

    /// Waits (up to `deadline`) for every accepted job to end and returns those that did not end
    /// `succeeded` ("id: status/error"): the work the service lost or broke.
    pub async fn lost_jobs(&self, base: &str, deadline: Duration) -> Vec<String> {
        let until = Instant::now() + deadline;
        let mut lost = Vec::new();
        for user in &self.users {
            for job in &user.jobs {
                let last = loop {
                    let seen = crate::api::job(&user.client, base, &job.id).await;
                    if seen.as_ref().is_some_and(crate::api::has_ended) || Instant::now() >= until {
                        break seen;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                match last {
                    Some(j) if j["status"] == "succeeded" => {}
                    Some(j) => lost.push(format!("{}: {} {}", job.id, j["status"], j["error"])),
                    None => lost.push(format!("{}: not readable", job.id)),
                }
            }
        }
        lost
    }

    /// A few failures, for assertion messages.
    pub fn failure_sample(&self) -> String {
        self.failures()
            .iter()
            .take(5)
            .map(|o| {
                format!(
                    "{:?} at {:?} on {:?}: {}",
                    o.op,
                    o.at,
                    o.replica,
                    o.error.as_deref().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn percentile(mut samples: Vec<Duration>, p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}
