//! While the replica drains, every response says `Connection: close`: keep-alive clients (the
//! load balancer among them) open their next request on a new connection, which lands on another
//! replica, instead of racing the listener's close on a connection that is about to go away.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

pub async fn close_connections_while_draining(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if state.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
