//! Accounts: `POST /api/v1/users` registers one.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::db::{DbError, users};
use crate::domain::{Password, Username};
use crate::error::{ApiError, ApiJson};
use crate::limits::AuthRoute;
use crate::middleware::client_ip::ClientIp;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, PayloadTooLarge, TooManyRequests, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(register))
}

/// The rules are `domain::Username` and `domain::Password`; the schema states them so that
/// clients can check before sending.
#[derive(Deserialize, ToSchema)]
pub struct Registration {
    /// 3-32 ASCII letters, digits, `.`, `_`, `-`, starting with a letter or digit; unique
    /// case-insensitively.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$", example = "ada")]
    username: String,
    /// 10-256 characters.
    #[schema(
        min_length = 10,
        max_length = 256,
        example = "correct horse battery staple"
    )]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub id: Uuid,
    pub username: String,
}

/// Registers an account.
#[utoipa::path(
    operation_id = "register",
    post,
    path = "/api/v1/users",
    tag = "users",
    request_body = Registration,
    responses(
        (status = 201, description = "Registered", body = UserBody),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(username = %form.username))]
async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiJson(form): ApiJson<Registration>,
) -> Result<(StatusCode, ApiJson<UserBody>), ApiError> {
    let user = create_account(&state, client, &form.username, &form.password).await?;
    Ok((StatusCode::CREATED, ApiJson(user)))
}

/// Checks the registration rules and creates the account. Shared by the API and the UI's
/// registration form, so both are rate limited alike.
pub(crate) async fn create_account(
    state: &AppState,
    client: std::net::IpAddr,
    username: &str,
    password: &str,
) -> Result<UserBody, ApiError> {
    state.limits.check_rate(AuthRoute::Register, client)?;
    let username = Username::parse(username)?;
    let password = Password::parse(password)?;
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
    Ok(UserBody {
        id,
        username: username.to_string(),
    })
}
