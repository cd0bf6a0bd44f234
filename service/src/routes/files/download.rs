//! The response that streams a file's bytes back.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::range::{self, Requested};
use crate::db::files::FileRow;
use crate::error::{ApiError, problem_response};
use crate::storage::{SharedStore, StorageError};
use crate::telemetry::storage_read_span;

pub async fn respond(
    store: &SharedStore,
    file: &FileRow,
    headers: &axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let size = u64::try_from(file.size).unwrap_or(0);
    // The content's SHA-256: strong, and the same whichever replica or backend answers.
    let etag = format!("\"{}\"", file.sha256);
    let range = match range::requested(headers, size, &etag) {
        Requested::Whole => None,
        Requested::Part(range) => Some(range),
        Requested::Unsatisfiable => return Ok(unsatisfiable(size)),
    };
    // A read served by the storage fallback is logged with the request id.
    let object = storage_read_span(headers, store.get(&file.object_key, range.clone()))
        .await
        .map_err(|error| match error {
            StorageError::NotFound { key } => {
                ApiError::internal(format!("file {} has a row but no object at {key}", file.id))
            }
            other => other.into(),
        })?;
    if object.total_size != size {
        return Err(ApiError::internal(format!(
            "file {} has {size} bytes in its row but {} in storage",
            file.id, object.total_size
        )));
    }
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, content_type(&file.content_type))
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_DISPOSITION, attachment(&file.name))
        // Uploaded content never runs as a page of this origin.
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CACHE_CONTROL, "private, no-cache");
    response = match &range {
        Some(range) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_LENGTH, range.end() - range.start() + 1)
            .header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", range.start(), range.end()),
            ),
        None => response
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, size),
    };
    response
        .body(Body::from_stream(object.body))
        .map_err(ApiError::internal)
}

fn unsatisfiable(size: u64) -> Response {
    let mut response = problem_response(
        StatusCode::RANGE_NOT_SATISFIABLE,
        format!("the range is outside the file's {size} bytes"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

fn content_type(stored: &str) -> HeaderValue {
    HeaderValue::from_str(stored)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

/// `attachment` with the name twice: an ASCII fallback and the exact UTF-8 name (RFC 6266).
fn attachment(name: &str) -> HeaderValue {
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = utf8_percent_encode(name, NON_ALPHANUMERIC);
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_survive_quotes_and_unicode() {
        assert_eq!(
            attachment("a \"b\" ü.txt"),
            "attachment; filename=\"a _b_ _.txt\"; filename*=UTF-8''a%20%22b%22%20%C3%BC%2Etxt"
        );
    }
}
