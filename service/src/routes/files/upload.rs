//! Where an upload's bytes come from: the raw request body, or the file field of a
//! `multipart/form-data` form (browsers). Either way the body streams; nothing is buffered here.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use futures::{StreamExt, TryStreamExt};
use tower_http::timeout::{TimeoutBody, TimeoutError};

use crate::domain::{FileName, FileNameError};
use crate::error::ApiError;
use crate::report::caused_by;
use crate::storage::ByteStream;

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// What a form may carry besides the file (boundaries, headers, small fields) before its
/// declared length alone shows it is over the limit.
const FORM_OVERHEAD: u64 = 1024 * 1024;

pub struct Incoming {
    pub name: FileName,
    pub content_type: String,
    pub body: ByteStream,
}

impl Incoming {
    /// Reads the upload's metadata; the body is left to stream. `name` is the `?name=` parameter.
    /// A body that sends nothing for `idle_timeout` ends in an error (the upload is aborted and
    /// answered 408), so a stalled client cannot hold an upload slot and its buffer forever.
    pub async fn from_request(
        request: Request,
        name: Option<String>,
        max_bytes: u64,
        idle_timeout: Duration,
    ) -> Result<Self, ApiError> {
        let request = request.map(|body| Body::new(TimeoutBody::new(idle_timeout, body)));
        let content_type = media_type(request.headers())?;
        let is_form = content_type
            .as_ref()
            .is_some_and(|m| m.essence_str() == mime::MULTIPART_FORM_DATA.essence_str());
        // A declared length over the limit is refused before a byte goes to storage.
        let overhead = if is_form { FORM_OVERHEAD } else { 0 };
        if content_length(request.headers()).is_some_and(|len| len > max_bytes + overhead) {
            return Err(too_large(max_bytes));
        }
        if is_form {
            let boundary = content_type
                .as_ref()
                .and_then(|m| m.get_param(mime::BOUNDARY))
                .map(|b| b.as_str().to_owned())
                .ok_or_else(|| ApiError::BadRequest("the form has no boundary".into()))?;
            return from_form(request, boundary, name).await;
        }
        let name = name.ok_or_else(|| {
            ApiError::BadRequest(
                "the file name is missing: pass it as ?name=, or upload a multipart form".into(),
            )
        })?;
        Ok(Self {
            name: FileName::parse(&name).map_err(invalid_name)?,
            content_type: content_type
                .map(|m| m.to_string())
                .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
            body: request
                .into_body()
                .into_data_stream()
                .map_err(std::io::Error::other)
                .boxed(),
        })
    }
}

/// The first field of the form that carries a file; fields before it are skipped.
async fn from_form(
    request: Request,
    boundary: String,
    name: Option<String>,
) -> Result<Incoming, ApiError> {
    let mut form = multer::Multipart::new(request.into_body().into_data_stream(), boundary);
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| {
                if caused_by::<TimeoutError>(&e) {
                    ApiError::stalled_body()
                } else {
                    ApiError::BadRequest(format!("the form does not parse: {e}"))
                }
            })?
            .ok_or_else(|| ApiError::BadRequest("the form has no file field".into()))?;
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            continue;
        };
        let name = match name {
            Some(name) => FileName::parse(&name).map_err(invalid_name)?,
            None => FileName::from_client_path(&file_name).map_err(invalid_name)?,
        };
        let content_type = field
            .content_type()
            .map(|m| m.to_string())
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
        return Ok(Incoming {
            name,
            content_type,
            // The field streams from the request body; the form's state lives on inside it.
            body: field.map_err(std::io::Error::other).boxed(),
        });
    }
}

fn media_type(headers: &HeaderMap) -> Result<Option<mime::Mime>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|v| v.len() <= 255)
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::BadRequest("the Content-Type is not a media type".into()))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the body is larger than the limit of {limit} bytes"
    ))
}

fn invalid_name(error: FileNameError) -> ApiError {
    ApiError::Validation(error.to_string())
}
