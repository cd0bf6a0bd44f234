//! What a virtual user does, as goose scenarios: on start it registers and logs in (and, for
//! the read and jobs scenarios, uploads one file to work on); then it loops over its steps.

use std::sync::Arc;
use std::time::Duration;

use goose::prelude::*;

use crate::api::{self, StepResult, Uploaded};
use crate::cli::{ScenarioKind, ThinkTime};
use crate::csvgen;
use crate::progress::Progress;

/// Everything the steps share, handed to each transaction closure.
pub struct Plan {
    pub progress: Arc<Progress>,
    /// Makes usernames unique across runs against the same deployment.
    pub run_id: String,
    pub csv_rows: usize,
    pub job_timeout: Duration,
    pub poll_every: Duration,
}

/// Per-user state between steps (goose session data).
#[derive(Clone, Default)]
struct UserState {
    number: usize,
    uploads: u64,
    /// Uploaded at start (read, jobs); read steps download it, jobs profile it.
    seed: Option<Uploaded>,
    /// The latest upload of this loop (mixed, upload).
    current: Option<Uploaded>,
    job: Option<String>,
}

impl UserState {
    fn target(&self) -> Option<Uploaded> {
        self.current.clone().or_else(|| self.seed.clone())
    }
}

/// Wraps an `async fn(&mut GooseUser, &Plan) -> StepResult<()>` as a named goose transaction.
macro_rules! step {
    ($plan:expr, $name:expr, $f:path) => {{
        let plan = Arc::clone(&$plan);
        let function: TransactionFunction = Arc::new(move |user| {
            let plan = Arc::clone(&plan);
            Box::pin(async move { $f(user, &plan).await })
        });
        Transaction::new(function).set_name($name)
    }};
}

pub fn build(
    kind: ScenarioKind,
    plan: Arc<Plan>,
    think: ThinkTime,
) -> Result<Scenario, GooseError> {
    let mut scenario = Scenario::new(kind.name()).register_transaction(
        step!(plan, "register and log in", begin)
            .set_on_start()
            .set_sequence(1),
    );
    if matches!(kind, ScenarioKind::Read | ScenarioKind::Jobs) {
        scenario = scenario.register_transaction(
            step!(plan, "upload seed file", seed)
                .set_on_start()
                .set_sequence(2),
        );
    }
    let steps = match kind {
        ScenarioKind::Mixed => vec![
            step!(plan, "upload", upload),
            step!(plan, "start job", start_job),
            step!(plan, "await job", await_job),
            step!(plan, "download", download),
            step!(plan, "list", list),
            step!(plan, "session", session),
        ],
        ScenarioKind::Upload => vec![
            step!(plan, "upload", upload),
            step!(plan, "download", download),
            step!(plan, "list", list),
        ],
        ScenarioKind::Jobs => vec![
            step!(plan, "start job", start_job),
            step!(plan, "await job", await_job),
        ],
        // Reads weighted towards the cheap endpoints: a download also costs an S3 GET, and
        // this scenario is meant to measure the service (see bench/lb-vs-single.sh).
        ScenarioKind::Read => vec![
            step!(plan, "session", session).set_weight(2)?,
            step!(plan, "list", list).set_weight(2)?,
            step!(plan, "download", download),
        ],
    };
    let sequenced = kind != ScenarioKind::Read;
    for (i, transaction) in steps.into_iter().enumerate() {
        let transaction = if sequenced {
            transaction.set_sequence(i + 1)
        } else {
            transaction
        };
        scenario = scenario.register_transaction(transaction);
    }
    if !think.max.is_zero() {
        scenario = scenario.set_wait_time(think.min, think.max)?;
    }
    Ok(scenario)
}

fn state(user: &GooseUser) -> UserState {
    user.get_session_data::<UserState>()
        .cloned()
        .unwrap_or_default()
}

fn update(user: &mut GooseUser, change: impl FnOnce(&mut UserState)) {
    if let Some(state) = user.get_session_data_mut::<UserState>() {
        change(state);
    }
}

async fn begin(user: &mut GooseUser, plan: &Plan) -> StepResult<()> {
    let number = plan.progress.user_started();
    user.set_session_data(UserState {
        number,
        ..UserState::default()
    });
    let username = format!("lt{}u{number}", plan.run_id);
    // Unique per user and never printed or logged.
    let password = uuid::Uuid::new_v4().simple().to_string();
    api::register(user, &plan.progress, &username, &password).await?;
    api::login(user, &plan.progress, &username, &password).await
}

async fn upload_one(user: &mut GooseUser, plan: &Plan) -> StepResult<Uploaded> {
    let st = state(user);
    let csv = csvgen::generate(&plan.run_id, st.number, st.uploads, plan.csv_rows);
    let name = format!("lt-{}-{}-{}.csv", plan.run_id, st.number, st.uploads);
    update(user, |s| s.uploads += 1);
    api::upload(user, &plan.progress, &name, csv).await
}

async fn seed(user: &mut GooseUser, plan: &Plan) -> StepResult<()> {
    let file = upload_one(user, plan).await?;
    update(user, |s| s.seed = Some(file));
    Ok(())
}

async fn upload(user: &mut GooseUser, plan: &Plan) -> StepResult<()> {
    // A failed upload must not leave the previous file as "current" for the next steps.
    update(user, |s| s.current = None);
    let file = upload_one(user, plan).await?;
    update(user, |s| s.current = Some(file));
    Ok(())
}

async fn start_job(user: &mut GooseUser, plan: &Plan) -> StepResult<()> {
    update(user, |s| s.job = None);
    let Some(file) = state(user).target() else {
        return Ok(());
    };
    let job = api::start_profile(user, &plan.progress, &file).await?;
    update(user, |s| s.job = Some(job));
    Ok(())
}

async fn await_job(user: &mut GooseUser, plan: &Plan) -> StepResult<()> {
    let Some(job) = state(user).job else {
        return Ok(());
    };
    update(user, |s| s.job = None);
    api::await_job(
        user,
        &plan.progress,
        &job,
        plan.job_timeout,
        plan.poll_every,
    )
    .await
}

async fn download(user: &mut GooseUser, plan: &Plan) -> StepResult<()> {
    let Some(file) = state(user).target() else {
        return Ok(());
    };
    api::download(user, &plan.progress, &file).await
}

async fn list(user: &mut GooseUser, plan: &Plan) -> StepResult<()> {
    api::list_files(user, &plan.progress).await
}

async fn session(user: &mut GooseUser, plan: &Plan) -> StepResult<()> {
    api::session(user, &plan.progress).await
}
