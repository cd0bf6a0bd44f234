//! The few API calls the job tests make directly (outside the load): upload a CSV, start a
//! profile job, read a job.

use serde_json::{Value, json};

/// Uploads `body` as a CSV file and returns its id; panics unless the service answers 201.
pub async fn upload_csv(client: &reqwest::Client, base: &str, body: Vec<u8>) -> String {
    let res = client
        .post(format!("{base}/api/v1/files?name=data.csv"))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(
        res.status(),
        201,
        "upload: {}",
        res.text().await.unwrap_or_default()
    );
    let file: Value = res.json().await.expect("file json");
    file["id"].as_str().expect("file id").to_string()
}

/// Starts a profile job on `file_id` and returns the job's id; panics unless 202.
pub async fn start_profile_job(client: &reqwest::Client, base: &str, file_id: &str) -> String {
    let res = client
        .post(format!("{base}/api/v1/files/{file_id}/jobs"))
        .json(&json!({"kind": "profile"}))
        .send()
        .await
        .expect("start job");
    assert_eq!(
        res.status(),
        202,
        "start job: {}",
        res.text().await.unwrap_or_default()
    );
    let job: Value = res.json().await.expect("job json");
    job["id"].as_str().expect("job id").to_string()
}

/// The job as the API shows it, or None when the request failed: while a replica is being killed
/// or stopped, the load balancer answers 502/503 for the requests it still routes there (an ALB
/// does the same), and a polling client tries again.
pub async fn job(client: &reqwest::Client, base: &str, id: &str) -> Option<Value> {
    let res = client
        .get(format!("{base}/api/v1/jobs/{id}"))
        .send()
        .await
        .ok()?;
    if !res.status().is_success() {
        return None;
    }
    res.json().await.ok()
}

/// Whether a job in this state will not change any more.
pub fn has_ended(job: &Value) -> bool {
    ["succeeded", "failed", "cancelled"].contains(&job["status"].as_str().unwrap_or(""))
}

/// A CSV of about `bytes` bytes (numbers, text, booleans).
pub fn csv_of(bytes: usize) -> Vec<u8> {
    let mut out = b"id,amount,label,flag\n".to_vec();
    let mut i = 0u64;
    while out.len() < bytes {
        out.extend_from_slice(
            format!(
                "{i},{}.{},label-{},{}\n",
                i * 7 % 1000,
                i % 100,
                i % 5000,
                i.is_multiple_of(2)
            )
            .as_bytes(),
        );
        i += 1;
    }
    out
}
