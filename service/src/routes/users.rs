//! Accounts: `POST /api/v1/users` registers one.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{DbError, users};
use crate::domain::{Password, Username};
use crate::error::{ApiError, ApiJson};
use crate::limits::AuthRoute;
use crate::middleware::client_ip::ClientIp;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/users", post(register))
}

#[derive(Deserialize)]
pub struct Registration {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub struct UserBody {
    pub id: Uuid,
    pub username: String,
}

#[tracing::instrument(skip_all, fields(username = %form.username))]
async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(form): ApiJson<Registration>,
) -> Result<(StatusCode, ApiJson<UserBody>), ApiError> {
    state.limits.check_rate(AuthRoute::Register, client)?;
    let username = Username::parse(&form.username)?;
    let password = Password::parse(&form.password)?;
    let permit = state.limits.hash_permit().await?;
    let password_hash = password.hash(permit).await?;
    let id = Uuid::new_v4();
    match users::insert(
        &state.db,
        id,
        &username,
        &password_hash,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(()) => {}
        Err(DbError::Conflict) => {
            return Err(ApiError::Conflict(format!(
                "the username {username} is taken"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    Ok((
        StatusCode::CREATED,
        ApiJson(UserBody {
            id,
            username: username.to_string(),
        }),
    ))
}
