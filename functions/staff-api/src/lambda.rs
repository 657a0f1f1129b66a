//! The Lambda side of the router: what `main` hands to `lambda_http::run` (the API Gateway
//! stage prefix stripped before routing, see [`shared::http_edge`]).
use std::sync::Arc;

pub use shared::http_edge::{LambdaService, strip_stage};

use crate::{StaffApp, router};

pub fn service(app: Arc<StaffApp>) -> LambdaService {
    shared::http_edge::service(router(app))
}
