//! The OpenAPI 3.1 document of the staff API (`GET /api/v1/openapi.json`), generated from the
//! handlers themselves: each module registers its routes with `utoipa_axum::routes!`, so a
//! route cannot exist without its documented path, parameters, request and response types.
//!
//! Who may call an operation is its security requirement: `bearer` with the permissions it
//! needs (OpenAPI 3.1 role names), `["admin"]` for admin-only routes, none for public ones. The
//! permission-matrix test reads it from this document and checks the code enforces exactly it.
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Doc, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error answer: `{"error":{"code","message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`bad_request`, `not_found`, `window_closed`, …).
    #[schema(example = "bad_request")]
    pub code: String,
    /// What went wrong, for people (names the offending field).
    pub message: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "WhatsApp ↔ CRM staff API",
        description = "Inbox, replies, settings and audiences. Every error is `{\"error\":{\"code\",\"message\"}}`; page cursors are opaque and signed. Each operation's `bearer` security requirement lists the permissions it needs (`admin`: admin staff only)."
    ),
    servers((url = "/")),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Conventions)
)]
pub struct ApiDoc;

/// The bearer scheme, the error answers every operation may give, and `x-access`.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut Doc) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (EdDSA or RS256, signed by the CRM)")
                    .build(),
            ),
        );
    }
}

/// Who may call an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token needed (the document itself).
    Public,
    /// Admin staff only.
    Admin,
    /// Every listed permission (admins have all).
    Perms(Vec<String>),
}

/// One documented operation.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    pub method: String,
    pub path: String,
    pub access: Access,
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn access_of(op: &Operation) -> Access {
    let Some(reqs) = op.security.as_ref() else {
        return Access::Public;
    };
    let v = serde_json::to_value(reqs).unwrap_or(Value::Null);
    let scopes: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("bearer"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if v.as_array()
        .is_none_or(|a| a.iter().all(|r| r.get("bearer").is_none()))
    {
        Access::Public
    } else if scopes.iter().any(|s| s == "admin") {
        Access::Admin
    } else {
        Access::Perms(scopes)
    }
}

/// Completes every operation: the documented error answers (401/403 only where a token is
/// needed), a description naming who may call it and the `x-access` extension.
fn complete(doc: &mut Doc) {
    for item in doc.paths.paths.values_mut() {
        for op in [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            let access = access_of(op);
            let mut errors = vec![
                ("400", "Invalid input (the message names the field)"),
                ("404", "Not found"),
                ("409", "Conflicts with the current state"),
                ("422", "Understood but refused (the message says why)"),
                ("429", "Too many requests; retry later"),
                ("503", "A dependency is unavailable; retry"),
            ];
            let who = match &access {
                Access::Public => "No authentication.".to_string(),
                Access::Admin => "Admin only.".to_string(),
                Access::Perms(p) => format!("Requires {}.", p.join(" and ")),
            };
            if access != Access::Public {
                errors.push(("401", "Missing or invalid token"));
                errors.push((
                    "403",
                    "Missing permission, or the conversation is not visible",
                ));
            }
            for (status, description) in errors {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert_with(|| error_response(description).into());
            }
            // Anything else (413, 502, …) is the same error shape.
            op.responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| error_response("Error").into());
            let description = match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{who}"),
                _ => who,
            };
            op.description = Some(description);
            let access_json = match &access {
                Access::Public => serde_json::json!("public"),
                Access::Admin => serde_json::json!("admin"),
                Access::Perms(p) => serde_json::json!(p),
            };
            let ext = op.extensions.get_or_insert_with(Default::default);
            ext.insert("x-access".to_string(), access_json);
        }
    }
}

/// The OpenAPI 3.1 document of the staff API.
pub fn openapi() -> Doc {
    let (_, mut doc) = crate::api_router().split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    complete(&mut doc);
    doc
}

/// The document as JSON (what `GET /api/v1/openapi.json` answers).
pub fn document() -> Value {
    serde_json::to_value(openapi()).expect("the OpenAPI document serializes")
}

/// Every documented operation with who may call it (the permission matrix walks these).
pub fn operations() -> Vec<RouteDoc> {
    let doc = openapi();
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", item.get.as_ref()),
            ("PUT", item.put.as_ref()),
            ("POST", item.post.as_ref()),
            ("DELETE", item.delete.as_ref()),
            ("PATCH", item.patch.as_ref()),
        ] {
            if let Some(op) = op {
                out.push(RouteDoc {
                    method: method.to_string(),
                    path: path.clone(),
                    access: access_of(op),
                });
            }
        }
    }
    out
}

/// `GET /api/v1/openapi.json`: this document (public).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    summary = "This document",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
pub(crate) async fn openapi_json() -> axum::Json<Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    axum::Json(DOC.get_or_init(document).clone())
}

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![openapi_json]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

    /// Every `$ref` of `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn no_route_is_registered_outside_the_document() {
        // Routes are registered only through `api_routes!` (`routing.rs`: each handler at the
        // path and methods of its own `#[utoipa::path]`, described from the same list): a plain
        // axum route anywhere else would serve an undocumented operation.
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if !p.ends_with("routing.rs") {
                    let src = std::fs::read_to_string(&p).unwrap();
                    assert!(
                        !src.contains(&[".", "route("].concat()),
                        "{} registers a route without its OpenAPI description",
                        p.display()
                    );
                }
            }
        }
    }

    #[test]
    fn every_operation_is_typed_and_names_who_may_call_it() {
        let d = document();
        assert_eq!(d["openapi"], "3.1.0");
        let schemas = d["components"]["schemas"].as_object().unwrap();
        let mut all_refs = Vec::new();
        refs(&d, &mut all_refs);
        for r in all_refs {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            assert!(schemas.contains_key(name), "dangling $ref {r}");
        }
        let mut operations = 0;
        for (path, item) in d["paths"].as_object().unwrap() {
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                operations += 1;
                let label = format!("{m} {path}");
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{label}: summary"
                );
                assert!(op["x-access"] != Value::Null, "{label}: x-access");
                // Each path parameter is declared.
                for seg in path.split('/').filter(|s| s.starts_with('{')) {
                    let name = seg.trim_matches(|c| c == '{' || c == '}');
                    assert!(
                        op["parameters"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|p| p["name"] == name && p["in"] == "path"),
                        "{label}: path parameter {name}"
                    );
                }
                // A success answer with a schema (204: none), and the error shape.
                let responses = op["responses"].as_object().unwrap();
                let ok: Vec<_> = responses.keys().filter(|k| k.starts_with('2')).collect();
                assert!(!ok.is_empty(), "{label}: no success response");
                for k in ok {
                    if k != "204" {
                        // JSON, or another documented media type (a CSV export).
                        assert!(
                            responses[k]["content"]
                                .as_object()
                                .is_some_and(|c| c.values().any(|m| m["schema"].is_object())),
                            "{label}: {k} has no schema"
                        );
                    }
                }
                assert_eq!(
                    responses["default"]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{label}"
                );
                if op["x-access"] != "public" {
                    assert!(responses.contains_key("401"), "{label}: 401");
                    assert!(responses.contains_key("403"), "{label}: 403");
                }
                // Request bodies are typed, not `{"type":"object"}`.
                if matches!(m, "post" | "put") && op.get("requestBody").is_some() {
                    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                    assert!(
                        schema.get("$ref").is_some() || schema.get("properties").is_some(),
                        "{label}: untyped request body {schema}"
                    );
                }
            }
        }
        assert!(operations >= 57, "{operations} operations");
    }

    #[test]
    fn access_is_the_security_requirement() {
        let d = document();
        let send = &d["paths"]["/api/v1/conversations/{id}/messages"]["post"];
        assert_eq!(send["x-access"], json!(["whatsapp_chat:view"]));
        assert_eq!(
            send["security"],
            json!([{"bearer": ["whatsapp_chat:view"]}])
        );
        assert_eq!(
            send["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/SendBody"
        );
        assert_eq!(
            d["paths"]["/api/v1/settings/connection"]["put"]["x-access"],
            "admin"
        );
        assert_eq!(
            d["paths"]["/api/v1/openapi.json"]["get"]["x-access"],
            "public"
        );
        let ops = operations();
        assert!(ops.iter().any(|o| o.method == "GET"
            && o.path == "/api/v1/openapi.json"
            && o.access == Access::Public));
        // The wire types are described field by field.
        let content = &d["components"]["schemas"]["OutboundContent"];
        assert!(
            content["oneOf"].as_array().is_some_and(|v| v.len() >= 8),
            "{content}"
        );
    }
}
