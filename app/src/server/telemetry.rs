//! Logs: a request id on every line written while a request is served, and one line per request.
//!
//! Every request gets an `x-request-id` (the caller's, when it is a short plain token such as a
//! proxy's, else a fresh UUID), echoed in the response. A `request` span carries it with the method
//! and the matched route — never the query string, and never a header, so no cookie reaches a log.
//! Leptos runs page data loaders as tasks of their own; they are spawned inside the span too.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, Response};
use axum::middleware::Next;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::{Instrument, Span};

use super::metrics::UNMATCHED_ROUTE;

/// The header carrying the request id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id accepted from a caller.
const MAX_REQUEST_ID: usize = 64;

/// Middleware, outside [`tower_http::request_id::SetRequestIdLayer`]: drops a caller's request id
/// that is not a short plain token, so that a fresh one is made instead. An id goes on every log
/// line of the request; free text there could forge lines or flood them.
pub async fn drop_unsafe_request_id(mut request: Request, next: Next) -> Response<Body> {
    let acceptable = request.headers().get(&REQUEST_ID).is_none_or(|value| {
        let bytes = value.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    });
    if !acceptable {
        request.headers_mut().remove(&REQUEST_ID);
    }
    next.run(request).await
}

/// The span of one request: its id, method, matched route and path. Logged on every line written
/// while it is served.
fn request_span(request: &Request<Body>) -> Span {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = %route,
        path = %request.uri().path(),
    )
}

/// One line per answered request: status and milliseconds, in the request's span. Server errors
/// are warnings; everything else is information.
fn log_response(response: &Response<Body>, latency: Duration, _span: &Span) {
    let status = response.status().as_u16();
    let ms = latency.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::warn!(status, ms, "request answered with a server error");
    } else {
        tracing::info!(status, ms, "request answered");
    }
}

/// The tracing layer [`trace_layer`] builds.
pub type RequestTraceLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request<Body>) -> Span,
    (),
    fn(&Response<Body>, Duration, &Span),
    (),
    (),
    (),
>;

/// The tracing layer: [`request_span`] around each request, [`log_response`] at its end. Failures
/// are already logged where they happen (and by [`log_response`]), so none are logged again here.
pub fn trace_layer() -> RequestTraceLayer {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request<Body>) -> Span)
        .on_request(())
        .on_response(log_response as fn(&Response<Body>, Duration, &Span))
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// Leptos' task spawner on tokio, keeping the spawning task's span: page data is loaded in tasks of
/// their own, and their log lines must carry the request id too.
struct SpanKeepingExecutor;

impl any_spawner::CustomExecutor for SpanKeepingExecutor {
    fn spawn(&self, future: any_spawner::PinnedFuture<()>) {
        tokio::spawn(future.in_current_span());
    }

    fn spawn_local(&self, future: any_spawner::PinnedLocalFuture<()>) {
        tokio::task::spawn_local(future.in_current_span());
    }

    fn poll_local(&self) {}
}

/// Makes [`SpanKeepingExecutor`] Leptos' spawner. Call it before Leptos spawns anything; the first
/// spawner set stays (Leptos sets plain tokio otherwise), so later calls change nothing.
pub fn init_executor() {
    if any_spawner::Executor::init_custom_executor(SpanKeepingExecutor).is_err() {
        tracing::debug!(
            "Leptos' task spawner was already set; log lines of page data may lack the request id"
        );
    }
}
