//! The caller's session: log in (`POST`), who am I (`GET`), log out (`DELETE`).
//!
//! Against password guessing (OWASP Authentication Cheat Sheet, "Protect against automated
//! attacks" and "Account lockout"), without letting an attacker lock a chosen user out:
//! - per client address, logins are rate limited (`AUTH_RATE_LIMIT_*`, in memory per replica);
//! - per username *and* client address, failures are counted in the database (so across
//!   replicas): past `LOGIN_MAX_FAILURES` in `LOGIN_FAILURE_WINDOW` that client gets 429 for the
//!   rest of the window. Another address is not affected, so a correct password from a client
//!   that has not failed itself is never refused;
//! - per username from every address together, past `LOGIN_USER_SLOWDOWN_AFTER` failures each
//!   further attempt on that username is delayed (up to 5 s) instead of refused: a distributed
//!   guess is slowed down, and the user can still log in.
//!
//! The same 401 answers an unknown user and a wrong password, after the same work.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::Session;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::users::UserBody;
use crate::auth::{self, AuthenticatedUser};
use crate::db::{login_throttle, users};
use crate::domain::{password, username::login_key};
use crate::error::{ApiError, ApiJson};
use crate::limits::AuthRoute;
use crate::middleware::client_ip::ClientIp;
use crate::openapi::{
    BadRequest, Forbidden, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
    Unprocessable, UnsupportedMediaType,
};
use crate::state::AppState;
use crate::telemetry::LoggedInUser;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(log_in, current, log_out))
}

/// Unconstrained on purpose: a login that breaks the registration rules is a wrong password
/// (401), not a hint about what the rules are.
#[derive(Deserialize, ToSchema)]
pub struct Credentials {
    #[schema(example = "ada")]
    username: String,
    #[schema(example = "correct horse battery staple")]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    user: UserBody,
}

/// Longest delay of an attempt on a username under a distributed guessing attack.
const MAX_SLOWDOWN: Duration = Duration::from_secs(5);

/// Checks the credentials and starts a session (see the module notes for the lockout rules).
#[utoipa::path(
    operation_id = "log_in",
    post,
    path = "/api/v1/session",
    tag = "session",
    request_body = Credentials,
    responses(
        (status = 200, description = "Logged in; the session cookie is set (under a new id)", body = SessionBody,
         headers(("Set-Cookie" = String, description = "the dp_session cookie"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn log_in(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<(Extension<LoggedInUser>, ApiJson<SessionBody>), ApiError> {
    let user = authenticate(
        &state,
        client,
        &session,
        &credentials.username,
        credentials.password,
    )
    .await?;
    Ok((
        Extension(LoggedInUser(user.id)),
        ApiJson(SessionBody {
            user: UserBody {
                id: user.id,
                username: user.username,
            },
        }),
    ))
}

/// Checks `username` and `password` under the lockout rules (see the module notes) and, when
/// they match, starts an authenticated session on `session`. Shared by the API's login and the
/// UI's login form, so both are throttled and counted alike.
pub(crate) async fn authenticate(
    state: &AppState,
    client: std::net::IpAddr,
    session: &Session,
    username: &str,
    password: String,
) -> Result<users::UserRow, ApiError> {
    state.limits.check_rate(AuthRoute::LogIn, client)?;
    let key = login_key(username);
    let client_key = format!("client:{client}:user:{key}");
    let user_key = format!("user:{key}");
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let window = i64::try_from(state.config.login_failure_window.as_secs()).unwrap_or(i64::MAX);
    // Counted before the check, in one statement, so concurrent attempts from this client on
    // several replicas cannot exceed the limit; cleared again on success.
    let (attempts, window_started_at) =
        login_throttle::count_attempt(&state.db, &client_key, now, window).await?;
    if attempts > i64::from(state.config.login_max_failures) {
        let retry_after_secs = u64::try_from(window_started_at + window - now)
            .unwrap_or(1)
            .max(1);
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let failures_of_user = login_throttle::attempts(&state.db, &user_key, now, window).await?;
    let slowdown_after = i64::from(state.config.login_user_slowdown_after);
    if failures_of_user >= slowdown_after {
        let excess = u32::try_from(failures_of_user - slowdown_after + 1).unwrap_or(u32::MAX);
        tokio::time::sleep((Duration::from_millis(500) * excess.min(10)).min(MAX_SLOWDOWN)).await;
    }
    let user = users::find_by_username(&state.db, &key).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let permit = state.limits.hash_permit().await?;
    let valid = password::verify(password, stored_hash, permit).await?;
    let Some(user) = user.filter(|_| valid) else {
        // Counted after the check: only failures slow the username down for everyone.
        login_throttle::count_attempt(&state.db, &user_key, now, window).await?;
        return Err(ApiError::Unauthorized);
    };
    // The username-wide count is left to expire: a success must not let a guesser resume at
    // full speed.
    login_throttle::clear(&state.db, &client_key).await?;
    auth::log_in(session, state, user.id, &user.username).await?;
    Ok(user)
}

/// Who the session belongs to.
#[utoipa::path(
    operation_id = "show_session",
    get,
    path = "/api/v1/session",
    tag = "session",
    security(("dp_session" = [])),
    responses(
        (status = 200, description = "The session's user", body = SessionBody),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn current(user: AuthenticatedUser) -> ApiJson<SessionBody> {
    ApiJson(SessionBody {
        user: UserBody {
            id: user.id,
            username: user.username,
        },
    })
}

/// Deletes the session server-side. Idempotent: without a session it answers 204 too.
#[utoipa::path(
    operation_id = "log_out",
    delete,
    path = "/api/v1/session",
    tag = "session",
    security((), ("dp_session" = [])),
    responses(
        (status = 204, description = "Logged out (or there was no session)"),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
async fn log_out(session: Session) -> Result<StatusCode, ApiError> {
    auth::log_out(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}
