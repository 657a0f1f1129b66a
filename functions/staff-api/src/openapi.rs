//! The staff API's route table, from which the OpenAPI document (`GET /api/v1/openapi.json`)
//! is generated, and which the permission-matrix test walks. A unit test checks it against
//! every `.route(…)` of this crate's sources, so a route cannot be added without its entry.
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::StaffApp;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (the document itself).
    Public,
    /// Admin staff only.
    Admin,
    /// Every listed permission (admins have all).
    Perms(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    /// An example request body (POST/PUT).
    pub example: Option<&'static str>,
    /// Success status.
    pub ok: u16,
}

const fn r(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        access,
        summary,
        example: None,
        ok: 200,
    }
}

const fn w(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    example: &'static str,
    ok: u16,
) -> RouteDoc {
    RouteDoc {
        method,
        path,
        access,
        summary,
        example: Some(example),
        ok,
    }
}

const CHAT: Access = Access::Perms(&["whatsapp_chat:view"]);
const ADMIN: Access = Access::Admin;

pub const ROUTES: &[RouteDoc] = &[
    r(
        "GET",
        "/api/v1/openapi.json",
        Access::Public,
        "This document",
    ),
    r(
        "GET",
        "/api/v1/conversations",
        CHAT,
        "Inbox: conversations newest activity first (?rel_type=leads|contacts|staff|general&assignee=ID|none&q=name or number&limit=&cursor=)",
    ),
    r(
        "GET",
        "/api/v1/conversations/unread",
        CHAT,
        "Unread messages and conversations per rel_type and in total",
    ),
    r(
        "GET",
        "/api/v1/conversations/{id}",
        CHAT,
        "One conversation (window state, assignee, tickets)",
    ),
    r(
        "GET",
        "/api/v1/conversations/{id}/messages",
        CHAT,
        "History in order, with delivery state (?limit=&cursor=)",
    ),
    w(
        "POST",
        "/api/v1/conversations/{id}/messages",
        CHAT,
        "Reply: text, media, interactive, template or a quick reply; `Idempotency-Key` header; free-form only inside the 24-hour window (409 window_closed)",
        r#"{"content":{"type":"text","body":"Hello!"}}"#,
        201,
    ),
    w(
        "POST",
        "/api/v1/messages",
        CHAT,
        "Business-initiated message to a number (a template unless a window is open), from `phone_number_id` or the default number",
        r#"{"to":"+1 650 555 1234","content":{"type":"template","name":"hello_world","language":"en_US"}}"#,
        201,
    ),
    w(
        "POST",
        "/api/v1/conversations/{id}/read",
        CHAT,
        "Mark read (and send Meta's read receipt)",
        "{}",
        200,
    ),
    w(
        "PUT",
        "/api/v1/conversations/{id}/assignee",
        CHAT,
        "Assign to a staff member (emits conversation.assigned)",
        r#"{"staff_id":"12"}"#,
        200,
    ),
    w(
        "POST",
        "/api/v1/conversations/{id}/tickets",
        CHAT,
        "Request a ticket from the conversation (emits ticket.requested)",
        r#"{"subject":"Broken zipper","description":"see chat","priority":"high"}"#,
        201,
    ),
    r(
        "GET",
        "/api/v1/settings/auto-lead",
        ADMIN,
        "Auto-lead settings",
    ),
    w(
        "PUT",
        "/api/v1/settings/auto-lead",
        ADMIN,
        "Change auto-lead settings",
        r#"{"enabled":true,"status":"1","source":"2","assignee":"3"}"#,
        200,
    ),
    w(
        "POST",
        "/api/v1/customers/{id}/forget",
        ADMIN,
        "Erase everything stored of a customer (id, or phone number); emits customer.forgotten",
        r#"{}"#,
        200,
    ),
    r(
        "GET",
        "/api/v1/settings/inbox-visibility",
        ADMIN,
        "Which conversations non-admin staff see: all, or those assigned to them or to no one",
    ),
    w(
        "PUT",
        "/api/v1/settings/inbox-visibility",
        ADMIN,
        "Change the inbox visibility (mode all | assigned)",
        r#"{"mode":"assigned"}"#,
        200,
    ),
    w(
        "POST",
        "/api/v1/directory/import",
        ADMIN,
        "Bulk import of leads / contacts / staff (≤ 1000 per call)",
        r#"{"records":[{"kind":"contact","id":"42","name":"Ana","phone":"+5511987654321","updated_at":"2026-01-01T00:00:00Z"}]}"#,
        200,
    ),
    r(
        "GET",
        "/api/v1/media/{media_id}",
        CHAT,
        "Short-lived link to a media object of a visible conversation",
    ),
    w(
        "POST",
        "/api/v1/media/uploads",
        CHAT,
        "Start an upload: presigned PUT URL",
        r#"{"conversation_id":"1065:abc","filename":"invoice.pdf","mime_type":"application/pdf","size":12345}"#,
        201,
    ),
    w(
        "POST",
        "/api/v1/media/uploads/{upload_id}/complete",
        CHAT,
        "Hand an uploaded file to Meta; returns its media id",
        "{}",
        201,
    ),
    r(
        "GET",
        "/api/v1/quick-replies",
        Access::Perms(&["quickreplies:view"]),
        "Quick replies",
    ),
    w(
        "POST",
        "/api/v1/quick-replies",
        Access::Perms(&["quickreplies:create"]),
        "Create a quick reply",
        r#"{"title":"Greeting","body":"Hello {{customer_first_name}}!","shortcut":"hi"}"#,
        201,
    ),
    r(
        "GET",
        "/api/v1/quick-replies/placeholders",
        Access::Perms(&["quickreplies:view"]),
        "Placeholders a quick reply may use",
    ),
    r(
        "GET",
        "/api/v1/quick-replies/{id}",
        Access::Perms(&["quickreplies:view"]),
        "One quick reply",
    ),
    w(
        "PUT",
        "/api/v1/quick-replies/{id}",
        Access::Perms(&["quickreplies:edit"]),
        "Change a quick reply",
        r#"{"title":"Hi"}"#,
        200,
    ),
    r(
        "DELETE",
        "/api/v1/quick-replies/{id}",
        Access::Perms(&["quickreplies:delete"]),
        "Delete a quick reply",
    ),
    r(
        "GET",
        "/api/v1/numbers",
        Access::Perms(&["whatsapp_numbers:view"]),
        "Business numbers",
    ),
    w(
        "POST",
        "/api/v1/numbers",
        Access::Perms(&["whatsapp_numbers:edit"]),
        "Add a number",
        r#"{"phone_number_id":"106540352242922","display_phone_number":"+1 555 078 3881","verified_name":"Acme"}"#,
        201,
    ),
    r(
        "GET",
        "/api/v1/numbers/{phone_number_id}",
        Access::Perms(&["whatsapp_numbers:view"]),
        "One number",
    ),
    w(
        "PUT",
        "/api/v1/numbers/{phone_number_id}",
        Access::Perms(&["whatsapp_numbers:edit"]),
        "Edit a number",
        r#"{"label":"Support"}"#,
        200,
    ),
    w(
        "POST",
        "/api/v1/numbers/{phone_number_id}/default",
        Access::Perms(&["whatsapp_numbers:edit"]),
        "Make it the default sender",
        "{}",
        200,
    ),
    r(
        "GET",
        "/api/v1/contacts",
        Access::Perms(&["whatsapp_contacts:view"]),
        "WhatsApp contacts (campaign audiences)",
    ),
    w(
        "POST",
        "/api/v1/contacts",
        Access::Perms(&["whatsapp_contacts:create"]),
        "Create a contact",
        r#"{"name":"Ana","phone":"+55 11 98765-4321","tags":["vip"],"opted_in":true}"#,
        201,
    ),
    r(
        "GET",
        "/api/v1/contacts/{id}",
        Access::Perms(&["whatsapp_contacts:view"]),
        "One contact",
    ),
    w(
        "PUT",
        "/api/v1/contacts/{id}",
        Access::Perms(&["whatsapp_contacts:edit"]),
        "Change a contact",
        r#"{"name":"Ana M."}"#,
        200,
    ),
    r(
        "DELETE",
        "/api/v1/contacts/{id}",
        Access::Perms(&["whatsapp_contacts:delete"]),
        "Delete a contact",
    ),
    r(
        "GET",
        "/api/v1/groups",
        Access::Perms(&["whatsapp_groups:view"]),
        "Groups",
    ),
    w(
        "POST",
        "/api/v1/groups",
        Access::Perms(&["whatsapp_groups:create"]),
        "Create a group",
        r#"{"name":"VIP","description":"best customers"}"#,
        201,
    ),
    r(
        "GET",
        "/api/v1/groups/{id}",
        Access::Perms(&["whatsapp_groups:view"]),
        "One group",
    ),
    w(
        "PUT",
        "/api/v1/groups/{id}",
        Access::Perms(&["whatsapp_groups:edit"]),
        "Change a group",
        r#"{"name":"VIP 2026"}"#,
        200,
    ),
    r(
        "DELETE",
        "/api/v1/groups/{id}",
        Access::Perms(&["whatsapp_groups:delete"]),
        "Delete a group",
    ),
    r(
        "GET",
        "/api/v1/groups/{id}/members",
        Access::Perms(&["whatsapp_groups:view", "whatsapp_contacts:view"]),
        "Members of a group",
    ),
    w(
        "PUT",
        "/api/v1/groups/{id}/members/{contact_id}",
        Access::Perms(&["whatsapp_groups:edit"]),
        "Add a contact to a group",
        "{}",
        200,
    ),
    r(
        "DELETE",
        "/api/v1/groups/{id}/members/{contact_id}",
        Access::Perms(&["whatsapp_groups:edit"]),
        "Remove a contact from a group",
    ),
    r(
        "GET",
        "/api/v1/templates",
        Access::Perms(&["whatsapp_template:view"]),
        "Message templates (?status=&language=&name=&category=&sendable=true)",
    ),
    w(
        "POST",
        "/api/v1/templates/load",
        Access::Perms(&["whatsapp_template:load_template"]),
        "Load every template from Meta now",
        "{}",
        200,
    ),
    r(
        "GET",
        "/api/v1/templates/{name}/{language}",
        Access::Perms(&["whatsapp_template:view"]),
        "One template",
    ),
    r(
        "GET",
        "/api/v1/activity-log",
        Access::Perms(&["whatsapp_log_activity:view"]),
        "Graph API calls (?kind=&number=&recipient=&status=&from=&to=&limit=&cursor=)",
    ),
    r(
        "DELETE",
        "/api/v1/activity-log",
        Access::Perms(&["whatsapp_log_activity:clear_log"]),
        "Clear the activity log",
    ),
    r(
        "GET",
        "/api/v1/settings/connection",
        ADMIN,
        "Meta connection (secrets masked)",
    ),
    w(
        "PUT",
        "/api/v1/settings/connection",
        ADMIN,
        "Store Meta credentials in Secrets Manager",
        r#"{"waba_id":"1022","access_token":"EAAG…","app_secret":"…","verify_token":"…"}"#,
        200,
    ),
    w(
        "POST",
        "/api/v1/settings/connection/test",
        ADMIN,
        "Call Meta and report what works",
        "{}",
        200,
    ),
    r(
        "GET",
        "/api/v1/settings/notifications-connection",
        ADMIN,
        "Event-notification credentials (masked)",
    ),
    w(
        "PUT",
        "/api/v1/settings/notifications-connection",
        ADMIN,
        "Store event-notification credentials",
        r#"{"access_token":"EAAG…"}"#,
        200,
    ),
    r(
        "GET",
        "/api/v1/settings/notifications-connection/effective",
        ADMIN,
        "Which credential set notifications use",
    ),
    w(
        "POST",
        "/api/v1/settings/notifications-connection/test",
        ADMIN,
        "Test the event-notification credentials",
        "{}",
        200,
    ),
    r(
        "GET",
        "/api/v1/settings/ai",
        ADMIN,
        "AI settings (key masked)",
    ),
    w(
        "PUT",
        "/api/v1/settings/ai",
        ADMIN,
        "Change AI settings",
        r#"{"enabled":true,"provider":"openai","model":"gpt-4o-mini","mode":"manual"}"#,
        200,
    ),
];

pub fn routes() -> Router<Arc<StaffApp>> {
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { axum::Json(document()) }),
    )
}

fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The OpenAPI 3.1 document of the staff API.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for d in ROUTES {
        let (security, who) = match d.access {
            Access::Public => (json!([]), "No authentication.".to_string()),
            Access::Admin => (json!([{"bearer": []}]), "Admin only.".to_string()),
            Access::Perms(p) => (
                json!([{"bearer": []}]),
                format!("Requires {}.", p.join(" and ")),
            ),
        };
        let err = |desc: &str| json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        let mut op = json!({
            "summary": d.summary,
            "description": who,
            "operationId": format!("{} {}", d.method.to_lowercase(), d.path),
            "security": security,
            "parameters": path_params(d.path),
            "responses": {
                d.ok.to_string(): {"description": "Success", "content": {"application/json": {}}},
                "400": err("Invalid input (the message names the field)"),
                "401": err("Missing or invalid token"),
                "403": err("Missing permission"),
                "404": err("Not found"),
                "503": err("A dependency is unavailable; retry"),
            },
            "x-access": match d.access { Access::Public => json!("public"), Access::Admin => json!("admin"), Access::Perms(p) => json!(p) },
        });
        if let Some(ex) = d.example {
            let example: Value = serde_json::from_str(ex).expect("route examples are JSON");
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}, "example": example}}});
        }
        paths
            .entry(d.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("path item")
            .insert(d.method.to_lowercase(), op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "WhatsApp ↔ CRM staff API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Inbox, replies, settings and audiences. Errors are {\"error\":{\"code\",\"message\"}}; page cursors are opaque and signed."},
        "servers": [{"url": "/"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA or RS256, signed by the CRM)"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}}
        },
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `(method, path)` the crate's routers declare, read from the sources.
    fn declared_routes() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let src = std::fs::read_to_string(&p).unwrap();
                let mut rest = src.as_str();
                while let Some(i) = rest.find(".route(") {
                    rest = &rest[i + 7..];
                    let Some(q) = rest.find('"') else { break };
                    let after = &rest[q + 1..];
                    let Some(end) = after.find('"') else { break };
                    let path = after[..end].to_string();
                    // The method chain runs to the matching close of `.route(`.
                    let mut depth = 1;
                    let mut chain_end = 0;
                    for (k, c) in rest.char_indices() {
                        match c {
                            '(' => depth += 1,
                            ')' => {
                                depth -= 1;
                                if depth == 0 {
                                    chain_end = k;
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    let chain = &rest[..chain_end];
                    for m in ["get", "post", "put", "delete", "patch"] {
                        let needle = format!("{m}(");
                        let found = chain.match_indices(&needle).any(|(at, _)| {
                            at == 0
                                || !chain.as_bytes()[at - 1].is_ascii_alphanumeric()
                                    && chain.as_bytes()[at - 1] != b'_'
                        });
                        if found {
                            out.insert((m.to_uppercase(), path.clone()));
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_table_lists_exactly_the_routes_of_the_code() {
        let documented: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|d| (d.method.to_string(), d.path.to_string()))
            .collect();
        assert_eq!(documented.len(), ROUTES.len(), "a route is listed twice");
        let declared = declared_routes();
        let missing: Vec<_> = declared.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&declared).collect();
        assert!(
            missing.is_empty(),
            "routes without an OpenAPI entry: {missing:?}"
        );
        assert!(
            stale.is_empty(),
            "OpenAPI entries without a route: {stale:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_names_permissions() {
        let d = document();
        assert_eq!(d["openapi"], "3.1.0");
        let send = &d["paths"]["/api/v1/conversations/{id}/messages"]["post"];
        assert_eq!(send["x-access"], json!(["whatsapp_chat:view"]));
        assert_eq!(send["parameters"][0]["name"], "id");
        assert_eq!(
            send["requestBody"]["content"]["application/json"]["example"]["content"]["type"],
            "text"
        );
        assert_eq!(
            d["paths"]["/api/v1/settings/connection"]["put"]["x-access"],
            "admin"
        );
        for p in d["paths"].as_object().unwrap().values() {
            for op in p.as_object().unwrap().values() {
                assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()));
            }
        }
    }
}
