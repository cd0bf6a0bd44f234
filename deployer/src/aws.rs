//! AWS clients built once from the standard credential chain (profiles, env, instance/task
//! roles); `AWS_ENDPOINT_URL` points them at an emulator.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;

use crate::config::{AwsSection, Config};

/// The clients `deployer` needs. Tests build this from mocked clients.
#[derive(Clone, Debug)]
pub struct Aws {
    pub ecr: aws_sdk_ecr::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub scaling: aws_sdk_applicationautoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    /// The tasks' log lines (`run`, `logs`, failure reports).
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Aws {
    #[tracing::instrument(skip_all)]
    pub async fn from_env(config: &Config) -> Self {
        Self::from_shared(&shared_config(&config.aws).await)
    }

    pub fn from_shared(shared: &SdkConfig) -> Self {
        Self {
            ecr: aws_sdk_ecr::Client::new(shared),
            ecs: aws_sdk_ecs::Client::new(shared),
            scaling: aws_sdk_applicationautoscaling::Client::new(shared),
            cloudwatch: aws_sdk_cloudwatch::Client::new(shared),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(shared),
            logs: aws_sdk_cloudwatchlogs::Client::new(shared),
        }
    }
}

/// Credentials, region, retries and timeouts from the standard chain and `[aws]`; `[aws]` alone
/// is known before the stack outputs the rest of the config refers to.
#[tracing::instrument(skip_all)]
pub async fn shared_config(aws: &AwsSection) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(aws.max_attempts))
        .timeout_config(timeout_config(aws));
    if let Some(region) = &aws.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    loader.load().await
}

/// Standard retry mode: throttling, transient and 5xx errors are retried with jittered
/// exponential backoff, up to `max_attempts` attempts per call.
pub fn retry_config(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard().with_max_attempts(max_attempts.max(1))
}

/// Without these the SDK waits for an answer as long as the connection stays open: a stalled
/// endpoint or proxy would hold a release (and the lock it took) until someone kills it.
pub fn timeout_config(aws: &AwsSection) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(aws.operation_timeout)
        .operation_attempt_timeout(aws.attempt_timeout)
        .connect_timeout(aws.connect_timeout)
        .build()
}

/// A failed AWS call: which operation, and the service's own error code and message.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn new<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (code, message) = match &err {
            SdkError::ServiceError(e) => {
                let inner = e.err();
                let code = inner.code().map(str::to_string);
                let msg = inner.message().map(str::to_string).unwrap_or_else(|| {
                    // No code and no message: an answer that is not an AWS error document
                    // (e.g. a proxy's or an emulator's 500 page); its status says the most.
                    format!(
                        "HTTP {} without an AWS error in the body ({inner})",
                        e.raw().status().as_u16()
                    )
                });
                (
                    code.clone(),
                    match code {
                        Some(c) => format!("{c}: {msg}"),
                        None => msg,
                    },
                )
            }
            // The SDK's text names the timeout that fired and its length; the hint names the
            // setting, since the fix is either the endpoint or `[aws]`.
            SdkError::TimeoutError(_) => (
                None,
                format!(
                    "{}; no answer in time (raise [aws] operation_timeout / attempt_timeout if the service is just slow, else check the endpoint and network)",
                    explain(&err)
                ),
            ),
            other => (None, explain(other)),
        };
        Self {
            operation,
            code,
            message,
        }
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// Transport failures are nested several levels deep; the innermost source says what happened
/// ("connection refused", "no credentials").
fn explain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// `.map_err(aws_err("ecs:DescribeServices"))`
pub fn aws_err<E>(operation: &'static str) -> impl FnOnce(SdkError<E, HttpResponse>) -> AwsError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    move |e| AwsError::new(operation, e)
}
