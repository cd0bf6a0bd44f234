//! The API's OpenAPI 3.1 description, generated from the handlers' `#[utoipa::path]` attributes
//! (each resource module registers its routes through `utoipa_axum::routes!`, so a route and its
//! description are added together) and served at `GET /openapi.json` (`routes::spec`).
//!
//! Error answers are shared response components: every one is `application/problem+json` with
//! the `Problem` schema, which is what `ApiError` and the problem middleware send.

use crate::error::{PROBLEM_JSON, Problem};
use crate::sessions::COOKIE_NAME;
use axum::http::header;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi, ToResponse};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "data-processor",
        description = "Accounts, sessions, files and processing jobs. Errors are \
                       application/problem+json (RFC 9457)."
    ),
    modifiers(&SessionCookie),
    components(
        schemas(Problem),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            RequestTimeout,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            TooManyRequests,
            RangeNotSatisfiable,
            Unavailable
        )
    )
)]
pub struct ApiDoc;

/// The `dp_session` cookie that `POST /api/v1/session` sets.
struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        // Handlers name it `"dp_session"` in `security(...)` (the macro takes only literals).
        components.add_security_scheme(
            COOKIE_NAME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE_NAME,
                "the session cookie set by POST /api/v1/session",
            ))),
        );
    }
}

fn problem(description: &str, retry_after: bool) -> RefOr<utoipa::openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    );
    if retry_after {
        response = response.header(
            header::RETRY_AFTER.as_str(),
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("seconds to wait before retrying"))
                .build(),
        );
    }
    response.build().into()
}

/// One shared problem response per status: `name => description, whether it may carry
/// Retry-After`.
macro_rules! problem_responses {
    ($($name:ident => $description:literal, $retry_after:literal;)*) => {
        $(
            #[doc = $description]
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<utoipa::openapi::Response>) {
                    (stringify!($name), problem($description, $retry_after))
                }
            }
        )*
    };
}

problem_responses! {
    BadRequest => "The request is malformed (query, body or headers).", false;
    Unauthorized => "No valid session, or (at login) wrong credentials.", false;
    Forbidden => "A cross-site request that would change state.", false;
    NotFound => "No such resource (or it is another user's).", false;
    RequestTimeout => "The request body stalled longer than the upload idle timeout.", false;
    Conflict => "The request conflicts with the resource's state.", false;
    PayloadTooLarge => "The body is larger than the limit.", false;
    UnsupportedMediaType => "The body's Content-Type is not the one this operation takes.", false;
    Unprocessable => "The body parses but its values are invalid.", false;
    TooManyRequests => "Rate limited or locked out; see Retry-After.", true;
    RangeNotSatisfiable => "The Range lies outside the file; Content-Range gives its size.", false;
    Unavailable => "A dependency is unavailable, the replica is busy or the request timed out; retryable.", true;
}
