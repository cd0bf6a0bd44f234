//! One release or rollback of a service at a time: a lock held in the service's own tags, where
//! the ledger lives (same permissions, no table or bucket to create first).
//!
//! ECS tags have no conditional write, so two writers of one `deployer:lock` tag could both
//! read back their own value (A writes, A reads, B writes, B reads). Each contender therefore
//! writes a claim under its own key (`deployer:lock:OWNER`) and then reads every claim: it goes
//! ahead only when it sees no other live claim. Writes are never lost that way, and of two
//! contenders at least one reads after both have written, so at most one sees itself alone.
//! When both see each other, both withdraw and try again after a random pause. A claim carries
//! an expiry, so a lock left by a killed process is taken over (with a warning) once it expires.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::Tag;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::aws::{AwsError, aws_err};
use crate::config::Config;
use crate::progress::Progress;

pub const PREFIX: &str = "deployer:lock:";
/// How long claims that are still being decided (a contender between writing and confirming)
/// are waited out before giving up; a decision takes two calls.
const CONTENTION: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Held(Box<HeldBy>),
}

/// Who holds the lock this process could not take.
#[derive(Debug, thiserror::Error)]
#[error(
    "another {command} of {cluster}/{service} is in progress (owner {owner}, since {since}, lock expires {expires}){waited}; retry after it ends or pass --wait-for-lock to wait for it"
)]
pub struct HeldBy {
    pub command: String,
    pub cluster: String,
    pub service: String,
    pub owner: String,
    pub since: String,
    pub expires: String,
    /// ` after waiting 30m`, or empty.
    pub waited: String,
}

/// One contender's claim, as its tag says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub owner: String,
    /// `release` or `rollback`.
    pub command: String,
    pub since: OffsetDateTime,
    pub expires: OffsetDateTime,
    /// Confirmed: its owner saw no other claim and went ahead. Otherwise still being decided.
    pub held: bool,
}

impl Claim {
    fn key(&self) -> String {
        format!("{PREFIX}{}", self.owner)
    }

    fn tag_value(&self) -> String {
        format!(
            "command={} since={} expires={} state={}",
            self.command,
            rfc3339(self.since),
            rfc3339(self.expires),
            if self.held { "held" } else { "pending" }
        )
    }

    fn parse(key: &str, value: &str) -> Option<Self> {
        let owner = key.strip_prefix(PREFIX)?.to_string();
        let field = |name: &str| {
            value
                .split(' ')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v)
        };
        let time = |name: &str| OffsetDateTime::parse(field(name)?, &Rfc3339).ok();
        Some(Self {
            owner,
            command: field("command").unwrap_or("release").to_string(),
            since: time("since")?,
            expires: time("expires")?,
            held: field("state") == Some("held"),
        })
    }

    fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires <= now
    }

    /// How `status` shows it.
    pub fn view(&self, now: OffsetDateTime) -> ClaimView {
        ClaimView {
            owner: self.owner.clone(),
            command: self.command.clone(),
            since: rfc3339(self.since),
            expires: rfc3339(self.expires),
            state: if self.expired(now) {
                "expired"
            } else if self.held {
                "held"
            } else {
                "pending"
            },
        }
    }
}

/// A claim as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClaimView {
    pub owner: String,
    pub command: String,
    pub since: String,
    pub expires: String,
    /// `held` (its release is running), `pending` (being decided) or `expired` (left by a
    /// process that died; the next release takes it over).
    pub state: &'static str,
}

impl ClaimView {
    pub fn render(&self) -> String {
        format!(
            "{} by {} since {}, expires {} ({})",
            self.command, self.owner, self.since, self.expires, self.state
        )
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `HOST:PID:RANDOM`: names the machine and process to a person reading the refusal, and
/// stays unique when one machine runs two releases. Only characters tag keys allow.
pub fn owner_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(60)
        .collect();
    format!(
        "{}:{}:{:08x}",
        if host.is_empty() { "unknown" } else { &host },
        std::process::id(),
        random() as u32
    )
}

/// What to lock and how long to wait for it.
pub struct Request<'a> {
    pub cluster: &'a str,
    pub service: &'a str,
    pub service_arn: &'a str,
    /// `release` or `rollback`, for the refusal message of whoever comes second.
    pub command: &'static str,
    /// How long the claim stays valid if this process dies without releasing it.
    pub ttl: Duration,
    /// `--wait-for-lock`: how long to wait for a held lock; `None` refuses at once.
    pub wait: Option<Duration>,
    /// Time between two looks at a held lock while waiting.
    pub poll_interval: Duration,
}

/// The request for `command` on the configured service. A claim outlives the longest the
/// command can take under it (the deployment timeout) with room for the calls around it.
pub fn request<'a>(
    config: &'a Config,
    service_arn: &'a str,
    command: &'static str,
    wait: Option<Duration>,
) -> Request<'a> {
    Request {
        cluster: &config.cluster,
        service: &config.service.name,
        service_arn,
        command,
        ttl: config.deployment.timeout + Duration::from_secs(10 * 60),
        wait,
        poll_interval: config.deployment.poll_interval,
    }
}

/// A lock this process holds; [`Lock::release`] gives it up.
#[derive(Debug)]
pub struct Lock {
    ecs: aws_sdk_ecs::Client,
    service_arn: String,
    pub claim: Claim,
}

impl Lock {
    /// Removes the claim. A failure only warns: the work is done either way, and the claim
    /// expires by itself.
    pub async fn release(self) {
        let key = self.claim.key();
        if let Err(e) = self
            .ecs
            .untag_resource()
            .resource_arn(&self.service_arn)
            .tag_keys(&key)
            .send()
            .await
            .map_err(aws_err("ecs:UntagResource"))
        {
            tracing::warn!(
                "could not release the lock ({e}); it expires at {}, or remove tag {key} from the service",
                rfc3339(self.claim.expires)
            );
        }
    }
}

/// Takes the lock, waiting for it if `--wait-for-lock` asks to.
#[tracing::instrument(skip_all, fields(service = %req.service))]
pub async fn acquire(
    ecs: &aws_sdk_ecs::Client,
    req: &Request<'_>,
    progress: &Progress,
) -> Result<Lock, LockError> {
    let owner = owner_id();
    let started = Instant::now();
    let mut announced: Option<String> = None;
    loop {
        let live = others(ecs, req, &owner).await?;
        let blocker = match pick_blocker(&live) {
            None => {
                let now = OffsetDateTime::now_utc();
                let mut claim = Claim {
                    owner: owner.clone(),
                    command: req.command.to_string(),
                    since: now,
                    expires: now + req.ttl,
                    held: false,
                };
                write(ecs, req.service_arn, &claim).await?;
                // From here on a failed call must not leave our claim to block everyone until
                // it expires.
                let rivals = match others(ecs, req, &owner).await {
                    Ok(rivals) => rivals,
                    Err(e) => return Err(withdraw_after(ecs, req.service_arn, &claim, e).await),
                };
                if rivals.is_empty() {
                    claim.held = true;
                    if let Err(e) = write(ecs, req.service_arn, &claim).await {
                        return Err(withdraw_after(ecs, req.service_arn, &claim, e).await);
                    }
                    return Ok(Lock {
                        ecs: ecs.clone(),
                        service_arn: req.service_arn.to_string(),
                        claim,
                    });
                }
                // Someone wrote at the same moment: withdraw, so that one of us gets through.
                untag(ecs, req.service_arn, &claim.key()).await?;
                match pick_blocker(&rivals) {
                    Some(c) => c.clone(),
                    None => continue,
                }
            }
            Some(c) => c.clone(),
        };
        let waited = started.elapsed();
        let deadline = if blocker.held {
            req.wait
        } else {
            Some(req.wait.unwrap_or_default().max(CONTENTION))
        };
        match deadline {
            Some(limit) if waited < limit => {
                if blocker.held && announced.as_deref() != Some(&blocker.owner) {
                    progress.step(format!(
                        "waiting for the lock of {}/{}: {} {} since {}",
                        req.cluster,
                        req.service,
                        blocker.command,
                        blocker.owner,
                        rfc3339(blocker.since)
                    ));
                    announced = Some(blocker.owner.clone());
                }
                let pause = if blocker.held {
                    req.poll_interval
                } else {
                    jitter()
                };
                tokio::time::sleep(pause.min(limit - waited)).await;
            }
            _ => {
                return Err(LockError::Held(Box::new(HeldBy {
                    command: blocker.command,
                    cluster: req.cluster.to_string(),
                    service: req.service.to_string(),
                    owner: blocker.owner,
                    since: rfc3339(blocker.since),
                    expires: rfc3339(blocker.expires),
                    waited: match req.wait {
                        Some(_) => format!(
                            " after waiting {}",
                            humantime::format_duration(Duration::from_secs(waited.as_secs()))
                        ),
                        None => String::new(),
                    },
                })));
            }
        }
    }
}

/// Removes our claim after `error`, which is what the caller gets; a failure to remove it is
/// only logged (the claim expires by itself).
async fn withdraw_after(
    ecs: &aws_sdk_ecs::Client,
    service_arn: &str,
    claim: &Claim,
    error: AwsError,
) -> LockError {
    if let Err(e) = untag(ecs, service_arn, &claim.key()).await {
        tracing::warn!(
            "could not withdraw the lock claim ({e}); it expires at {}, or remove tag {} from the service",
            rfc3339(claim.expires),
            claim.key()
        );
    }
    LockError::Aws(error)
}

/// A held claim before one still being decided: it is the one that will stay.
fn pick_blocker(claims: &[Claim]) -> Option<&Claim> {
    claims.iter().find(|c| c.held).or_else(|| claims.first())
}

/// 50-500 ms, different in each process, so that two contenders that withdrew together do not
/// come back together.
fn jitter() -> Duration {
    Duration::from_millis(50 + random() % 450)
}

/// A random number from the standard library's per-process, per-call hash keys: enough to
/// tell contenders apart and spread their retries, without a dependency for it.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Live claims of other owners; expired ones are removed, with a warning.
async fn others(
    ecs: &aws_sdk_ecs::Client,
    req: &Request<'_>,
    owner: &str,
) -> Result<Vec<Claim>, AwsError> {
    let now = OffsetDateTime::now_utc();
    let mut live = vec![];
    for claim in read(ecs, req.service_arn).await? {
        if claim.owner == owner {
            continue;
        }
        if claim.expired(now) {
            tracing::warn!(
                "taking over the lock of {}/{}: {} by {} since {} expired at {} (a process that died without releasing it?)",
                req.cluster,
                req.service,
                claim.command,
                claim.owner,
                rfc3339(claim.since),
                rfc3339(claim.expires)
            );
            untag(ecs, req.service_arn, &claim.key()).await?;
        } else {
            live.push(claim);
        }
    }
    Ok(live)
}

/// Every claim on the service, oldest first.
pub async fn read(ecs: &aws_sdk_ecs::Client, service_arn: &str) -> Result<Vec<Claim>, AwsError> {
    Ok(from_tags(&crate::tags::read(ecs, service_arn).await?))
}

/// The claims among a service's tags, oldest first.
pub fn from_tags(tags: &[(String, String)]) -> Vec<Claim> {
    let mut claims: Vec<Claim> = tags
        .iter()
        .filter_map(|(key, value)| Claim::parse(key, value))
        .collect();
    claims.sort_by_key(|c| c.since);
    claims
}

async fn write(
    ecs: &aws_sdk_ecs::Client,
    service_arn: &str,
    claim: &Claim,
) -> Result<(), AwsError> {
    ecs.tag_resource()
        .resource_arn(service_arn)
        .tags(
            Tag::builder()
                .key(claim.key())
                .value(claim.tag_value())
                .build(),
        )
        .send()
        .await
        .map_err(aws_err("ecs:TagResource"))?;
    Ok(())
}

async fn untag(ecs: &aws_sdk_ecs::Client, service_arn: &str, key: &str) -> Result<(), AwsError> {
    ecs.untag_resource()
        .resource_arn(service_arn)
        .tag_keys(key)
        .send()
        .await
        .map_err(aws_err("ecs:UntagResource"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_through_tags() {
        let since = OffsetDateTime::parse("2026-12-04T01:00:00Z", &Rfc3339).unwrap();
        let claim = Claim {
            owner: owner_id(),
            command: "rollback".into(),
            since,
            expires: since + Duration::from_secs(1800),
            held: true,
        };
        let key = claim.key();
        assert!(key.len() <= 128, "ECS tag keys hold at most 128 characters");
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || ":._-".contains(c)),
            "{key}"
        );
        let value = claim.tag_value();
        assert_eq!(
            value,
            "command=rollback since=2026-12-04T01:00:00Z expires=2026-12-04T01:30:00Z state=held"
        );
        assert_eq!(Claim::parse(&key, &value), Some(claim));
        assert_eq!(Claim::parse("deployer:release:000001", &value), None);
    }

    #[test]
    fn a_held_claim_blocks_before_a_pending_one() {
        let since = OffsetDateTime::now_utc();
        let claim = |owner: &str, held| Claim {
            owner: owner.into(),
            command: "release".into(),
            since,
            expires: since + Duration::from_secs(60),
            held,
        };
        let claims = [claim("a", false), claim("b", true)];
        assert_eq!(pick_blocker(&claims).map(|c| c.owner.as_str()), Some("b"));
        assert_eq!(
            pick_blocker(&claims[..1]).map(|c| c.owner.as_str()),
            Some("a")
        );
        assert!(claim("a", true).expired(since + Duration::from_secs(60)));
    }
}
