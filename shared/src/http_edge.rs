//! HTTP edge for functions behind API Gateway's HTTP API.
//!
//! An HTTP API served from a named stage (`prod`) sends `rawPath = "/prod/…"`, and
//! `lambda_http` keeps that prefix: `AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH` only stops it from
//! *adding* the stage, it does not remove one API Gateway already put there
//! (aws/aws-lambda-rust-runtime#919). Our routes are stage-independent, so the prefix is
//! stripped before routing. The local runner serves the routers directly.
use lambda_http::request::RequestContext;
use lambda_http::tower::util::MapRequest;
use lambda_http::{Request, RequestExt};

pub type LambdaService = MapRequest<axum::Router, fn(Request) -> Request>;

/// `router` behind [`strip_stage`]: what a function's `main` hands to `lambda_http::run`.
pub fn service(router: axum::Router) -> LambdaService {
    MapRequest::new(router, strip_stage as fn(Request) -> Request)
}

/// Removes a leading `/{stage}` segment of an API Gateway v2 request (not `$default`).
pub fn strip_stage(mut req: Request) -> Request {
    let stage = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.stage.clone(),
        _ => None,
    };
    let Some(stage) = stage.filter(|s| !s.is_empty() && s != "$default") else {
        return req;
    };
    let uri = req.uri();
    let Some(rest) = uri
        .path()
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(stage.as_str()))
    else {
        return req;
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return req;
    }
    let path = if rest.is_empty() { "/" } else { rest };
    let path_and_query = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    match path_and_query.parse() {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return req,
    }
    if let Ok(new_uri) = lambda_http::http::Uri::from_parts(parts) {
        *req.uri_mut() = new_uri;
    }
    req
}

/// One log line per request of a router it is a `route_layer` of: method, the matched route
/// (`/api/v1/conversations/{id}`: ids, query strings and headers stay out of the log), status
/// and latency; a 5xx is a warning. Unmatched paths (the fallback) are not logged.
pub async fn access_log(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let start = std::time::Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let ms = (start.elapsed().as_secs_f64() * 1000.0 * 10.0).round() / 10.0;
    if status >= 500 {
        tracing::warn!(method = %method, route, status, ms, "request");
    } else {
        tracing::info!(method = %method, route, status, ms, "request");
    }
    res
}
