//! A capability's routes, declared once with [`api_routes!`]: its handlers are routed when the
//! function starts, their OpenAPI description (path items, parameters, every request and
//! response schema) is built only when the document is asked for. `utoipa_axum::routes!` builds
//! both at once, and building every schema of the API on each cold start was a third of the
//! staff API's init.
//!
//! Both halves come from the same list of handlers and from each handler's own
//! `#[utoipa::path]` (its path and methods), so a route cannot exist undocumented nor a
//! documented operation go unrouted.
use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;
use utoipa_axum::PathItemExt;
use utoipa_axum::router::OpenApiRouter;

use crate::StaffApp;

pub type State = Arc<StaffApp>;

/// Routed handlers and how to describe them.
pub struct Routes {
    router: Router<State>,
    describe: Vec<fn() -> OpenApiRouter<State>>,
}

impl Routes {
    #[doc(hidden)]
    pub fn new(router: Router<State>, describe: fn() -> OpenApiRouter<State>) -> Self {
        Self {
            router,
            describe: vec![describe],
        }
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.describe.extend(other.describe);
        self
    }

    /// The handlers, routed (nothing of the OpenAPI description is built).
    pub fn into_router(self) -> Router<State> {
        self.router
    }

    /// The handlers with their OpenAPI description, added to `base`.
    pub fn describe(self, base: OpenApiRouter<State>) -> OpenApiRouter<State> {
        self.describe.iter().fold(base, |r, d| r.merge(d()))
    }
}

/// Routes `handler` at the path and methods of its `#[utoipa::path]` (`P`), as
/// `utoipa_axum::routes!` would, without building its operation.
#[doc(hidden)]
pub fn route<P, H, T>(router: Router<State>, handler: H) -> Router<State>
where
    P: utoipa::Path,
    H: Handler<T, State>,
    T: 'static,
{
    let methods = P::methods().iter().fold(MethodRouter::new(), |m, method| {
        m.on(method.to_method_filter(), handler.clone())
    });
    router.route(&P::path(), methods)
}

/// `api_routes![handler, …]`: the [`Routes`] of these handlers (each with its
/// `#[utoipa::path]`, in the calling module).
#[macro_export]
macro_rules! api_routes {
    ($($handler:ident),+ $(,)?) => {
        $crate::routing::Routes::new(
            {
                let router = ::axum::Router::new();
                $(let router = ::utoipa_axum::paste! {
                    $crate::routing::route::<[<__path_ $handler>], _, _>(router, $handler)
                };)+
                router
            },
            || ::utoipa_axum::router::OpenApiRouter::new()
                $(.routes(::utoipa_axum::routes!($handler)))+,
        )
    };
}
