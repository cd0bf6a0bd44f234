//! The caller's session: log in (`POST`), who am I (`GET`), log out (`DELETE`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::Session;

use super::users::UserBody;
use crate::auth::{self, AuthenticatedUser};
use crate::db::{login_throttle, users};
use crate::domain::{password, username::login_key};
use crate::error::{ApiError, ApiJson};
use crate::state::AppState;
use crate::telemetry::LoggedInUser;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/session", post(log_in).get(current).delete(log_out))
}

#[derive(Deserialize)]
pub struct Credentials {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub struct SessionBody {
    user: UserBody,
}

/// Checks the credentials and starts a session. Unknown user and wrong password answer the
/// same 401 after the same work (a hash verification either way). Attempts per username are
/// counted in the database before the check, so the limit holds across replicas.
#[tracing::instrument(skip_all)]
async fn log_in(
    State(state): State<AppState>,
    session: Session,
    ApiJson(credentials): ApiJson<Credentials>,
) -> Result<(Extension<LoggedInUser>, ApiJson<SessionBody>), ApiError> {
    let key = login_key(&credentials.username);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let window = i64::try_from(state.config.login_failure_window.as_secs()).unwrap_or(i64::MAX);
    let (attempts, window_started_at) =
        login_throttle::count_attempt(&state.db, &key, now, window).await?;
    if attempts > i64::from(state.config.login_max_failures) {
        let retry_after_secs = u64::try_from(window_started_at + window - now)
            .unwrap_or(1)
            .max(1);
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let user = users::find_by_username(&state.db, &key).await?;
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let valid = password::verify(credentials.password, stored_hash).await?;
    let Some(user) = user.filter(|_| valid) else {
        return Err(ApiError::Unauthorized);
    };
    login_throttle::clear(&state.db, &key).await?;
    auth::log_in(&session, &state, user.id, &user.username).await?;
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
#[tracing::instrument(skip_all)]
async fn log_out(session: Session) -> Result<StatusCode, ApiError> {
    auth::log_out(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}
