//! `/` (a redirect), the login and registration forms, and logout. The forms are plain posts
//! (they work without JavaScript); their handlers share the API's logic, rate limits and lockout.
//! A failed attempt shows the form again with the API's message and status.

use axum::Extension;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;
use tower_sessions::Session;

use super::error::{UiError, html as html_response};
use super::layout::page;
use crate::auth::{self, AuthenticatedUser};
use crate::error::ApiError;
use crate::middleware::client_ip::ClientIp;
use crate::routes::{session, users};
use crate::state::AppState;
use crate::telemetry::LoggedInUser;

/// The form of both pages.
#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    /// Set after a registration, to say so.
    #[serde(default)]
    registered: Option<String>,
}

/// To the files with a session, to the login page without.
#[tracing::instrument(skip_all)]
pub async fn root(user: Result<AuthenticatedUser, ApiError>) -> Result<Redirect, UiError> {
    match user {
        Ok(_) => Ok(Redirect::to("/files")),
        Err(ApiError::Unauthorized) => Ok(Redirect::to("/login")),
        Err(other) => Err(other.into()),
    }
}

/// The form; with a session already, the files instead.
#[tracing::instrument(skip_all)]
pub async fn login_page(
    user: Result<AuthenticatedUser, ApiError>,
    Query(query): Query<LoginQuery>,
) -> Response {
    if user.is_ok() {
        return Redirect::to("/files").into_response();
    }
    let notice = query
        .registered
        .is_some()
        .then_some("Your account is ready: log in.");
    html_response(StatusCode::OK, login_form("", notice, None))
}

#[tracing::instrument(skip_all)]
pub async fn log_in(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    session: Session,
    form: Result<Form<AccountForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return rejected_form(rejection, |m| login_form("", None, Some(m))),
    };
    match session::authenticate(&state, client, &session, &form.username, form.password).await {
        Ok(user) => (Extension(LoggedInUser(user.id)), Redirect::to("/files")).into_response(),
        Err(error) => {
            let message = match &error {
                ApiError::Unauthorized => "Wrong username or password.".to_string(),
                other => other.detail(),
            };
            failed(error, login_form(&form.username, None, Some(&message)))
        }
    }
}

#[tracing::instrument(skip_all)]
pub async fn register_page() -> Response {
    html_response(StatusCode::OK, register_form("", None))
}

#[tracing::instrument(skip_all)]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    form: Result<Form<AccountForm>, FormRejection>,
) -> Response {
    let Form(form) = match form {
        Ok(form) => form,
        Err(rejection) => return rejected_form(rejection, |m| register_form("", Some(m))),
    };
    match users::create_account(&state, client, &form.username, &form.password).await {
        Ok(_) => Redirect::to("/login?registered=1").into_response(),
        Err(error) => {
            let message = error.detail();
            failed(error, register_form(&form.username, Some(&message)))
        }
    }
}

/// Deletes the session (every replica stops accepting it) and goes to the login page.
#[tracing::instrument(skip_all)]
pub async fn log_out(session: Session) -> Result<Redirect, UiError> {
    auth::log_out(&session).await?;
    Ok(Redirect::to("/login"))
}

/// The form again, with the status and headers (Retry-After, the error report) the API's
/// error would have; a server-side failure shows only the API's generic detail.
fn failed(error: ApiError, form: Markup) -> Response {
    let (mut parts, _) = error.into_response().into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let page = html_response(parts.status, form);
    let (page_parts, body) = page.into_parts();
    parts.headers.extend(page_parts.headers);
    Response::from_parts(parts, body)
}

fn rejected_form(rejection: FormRejection, form: impl FnOnce(&str) -> Markup) -> Response {
    html_response(rejection.status(), form(&rejection.body_text()))
}

fn login_form(username: &str, notice: Option<&str>, error: Option<&str>) -> Markup {
    page(
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if let Some(notice) = notice { p.notice role="status" { (notice) } }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form.card method="post" action="/login" {
                label for="username" { "Username" }
                input #username name="username" type="text" autocomplete="username" required
                    value=(username);
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password"
                    required;
                button type="submit" { "Log in" }
            }
            p { "No account yet? " a href="/register" { "Register" } }
        },
    )
}

fn register_form(username: &str, error: Option<&str>) -> Markup {
    page(
        "Register",
        None,
        html! {
            h1 { "Register" }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form.card method="post" action="/register" {
                label for="username" { "Username" }
                input #username name="username" type="text" autocomplete="username" required
                    minlength="3" maxlength="32" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{2,31}"
                    aria-describedby="username-hint" value=(username);
                p #username-hint .hint {
                    "3 to 32 letters, digits, dots, underscores or hyphens, starting with a letter or digit."
                }
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="new-password"
                    required minlength="10" maxlength="256" aria-describedby="password-hint";
                p #password-hint .hint { "10 to 256 characters." }
                button type="submit" { "Create account" }
            }
            p { "Have an account? " a href="/login" { "Log in" } }
        },
    )
}
