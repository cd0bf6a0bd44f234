//! Who is calling: the session holds the user, and `AuthenticatedUser` is the extractor every
//! protected route takes (`401` without a valid session).
//!
//! Timeouts, both enforced on the server: the session row's expiry is
//! `min(last refresh + idle timeout, login + absolute timeout)`, and the store never loads an
//! expired row. The expiry is refreshed (the session written back) at most once per refresh
//! interval, so an active session costs one SELECT per request, not a write.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::{Expiry, Session};
use uuid::Uuid;

use crate::error::ApiError;
use crate::sessions::to_time;
use crate::state::AppState;

const USER_KEY: &str = "user";

/// What the session stores about its user.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SessionUser {
    id: Uuid,
    username: String,
    /// Unix seconds of the login (for the absolute timeout).
    authenticated_at: i64,
    /// Unix seconds of the last expiry refresh.
    refreshed_at: i64,
}

/// The user behind the request's session. Handlers that take it answer 401 without one.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser {
    pub id: Uuid,
    pub username: String,
}

/// Starts an authenticated session for `user` on `session`, under a new session id (the old one
/// is deleted, so an id planted before login is worthless).
pub async fn log_in(
    session: &Session,
    state: &AppState,
    id: Uuid,
    username: &str,
) -> Result<(), ApiError> {
    session.cycle_id().await?;
    let now = OffsetDateTime::now_utc();
    session.set_expiry(Some(expiry(state, now, now)));
    let user = SessionUser {
        id,
        username: username.to_string(),
        authenticated_at: now.unix_timestamp(),
        refreshed_at: now.unix_timestamp(),
    };
    session.insert(USER_KEY, user).await?;
    Ok(())
}

/// Deletes the session from the store (every replica stops accepting its cookie) and clears
/// the cookie.
pub async fn log_out(session: &Session) -> Result<(), ApiError> {
    session.flush().await?;
    Ok(())
}

fn expiry(state: &AppState, now: OffsetDateTime, authenticated_at: OffsetDateTime) -> Expiry {
    let idle_end = now + to_time(state.sessions.idle_timeout);
    let absolute_end = authenticated_at + to_time(state.sessions.absolute_timeout);
    Expiry::AtDateTime(idle_end.min(absolute_end))
}

impl<S> FromRequestParts<S> for AuthenticatedUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let session = Session::from_request_parts(parts, &state)
            .await
            .map_err(|(_, msg)| ApiError::internal(format!("no session layer: {msg}")))?;
        let user = match session.get::<SessionUser>(USER_KEY).await {
            Ok(user) => user,
            // The record decoded but its user entry does not (written by an incompatible
            // release): the session is dropped and its owner logs in again.
            Err(tower_sessions::session::Error::SerdeJson(error)) => {
                tracing::warn!(error = %error, "a session's user entry does not decode; dropping the session");
                session.flush().await?;
                return Err(ApiError::Unauthorized);
            }
            Err(error) => return Err(error.into()),
        };
        let Some(mut user) = user else {
            return Err(ApiError::Unauthorized);
        };
        let now = OffsetDateTime::now_utc();
        let Ok(authenticated_at) = OffsetDateTime::from_unix_timestamp(user.authenticated_at)
        else {
            session.flush().await?;
            return Err(ApiError::Unauthorized);
        };
        if now >= authenticated_at + to_time(state.sessions.absolute_timeout) {
            session.flush().await?;
            return Err(ApiError::Unauthorized);
        }
        let refresh_every = to_time(state.sessions.refresh_interval());
        if now.unix_timestamp() - user.refreshed_at >= refresh_every.whole_seconds().max(1) {
            user.refreshed_at = now.unix_timestamp();
            session.set_expiry(Some(expiry(&state, now, authenticated_at)));
            session.insert(USER_KEY, &user).await?;
        }
        crate::telemetry::record_user(&parts.extensions, user.id);
        Ok(AuthenticatedUser {
            id: user.id,
            username: user.username,
        })
    }
}
