//! Directory upkeep from the staff API: the auto-lead settings and the bulk import of leads,
//! contacts and staff (the CRM's initial load). Admin only.
use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::crm_events::{
    CrmRecord, DirectoryChange, DirectoryKind, DirectoryOp, parse_timestamp_ms,
};
use shared::store::dynamo::DirectoryOutcome;
use shared::store::model::AutoLeadSettings;
use utoipa::ToSchema;

use crate::{ApiError, Authed, StaffApp, parse_json};

const MAX_IMPORT: usize = 1000;

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![get_auto_lead, put_auto_lead, import_directory]
}

#[utoipa::path(
    get,
    path = "/api/v1/settings/auto-lead",
    tag = "settings",
    summary = "Auto-lead settings",
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The settings", body = AutoLeadSettings))
)]
async fn get_auto_lead(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
) -> Result<Json<AutoLeadSettings>, ApiError> {
    who.require_admin()?;
    Ok(Json(app.store.auto_lead_settings().await?))
}

/// What a lead created for an unknown number gets (`status`, `source`, `assignee`: at most 100
/// characters each; empty clears).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AutoLeadBody {
    enabled: bool,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
}

#[utoipa::path(
    put,
    path = "/api/v1/settings/auto-lead",
    tag = "settings",
    summary = "Change the auto-lead settings",
    security(("bearer" = ["admin"])),
    request_body = AutoLeadBody,
    responses((status = 200, description = "The settings saved", body = AutoLeadSettings))
)]
async fn put_auto_lead(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Json<AutoLeadSettings>, ApiError> {
    who.require_admin()?;
    let b: AutoLeadBody = parse_json(&body)?;
    let clean = |v: Option<String>, field: &str| -> Result<Option<String>, ApiError> {
        match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() > 100 => Err(ApiError::bad_request(format!(
                "{field} is longer than 100 characters"
            ))),
            other => Ok(other),
        }
    };
    let settings = AutoLeadSettings {
        enabled: b.enabled,
        status: clean(b.status, "status")?,
        source: clean(b.source, "source")?,
        assignee: clean(b.assignee, "assignee")?,
    };
    app.store
        .put_auto_lead_settings(&settings, (app.now_ms)())
        .await?;
    tracing::info!(staff_id = %who.staff_id, enabled = settings.enabled, "auto-lead settings changed");
    Ok(Json(settings))
}

/// Up to 1000 directory records.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportBody {
    /// Each one is checked on its own: a bad record is reported, the others are applied.
    #[schema(value_type = Vec<ImportRecordDoc>)]
    records: Vec<Value>,
}

/// One record of a directory import (the CRM's own fields may be added; they are ignored).
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct ImportRecordDoc {
    /// `lead`, `contact` or `staff`.
    kind: String,
    /// The CRM's id (string or number).
    #[schema(value_type = String)]
    id: Value,
    /// Epoch seconds or milliseconds, or an ISO 8601 / `YYYY-MM-DD HH:MM:SS` date: the newer
    /// write wins.
    #[schema(value_type = String)]
    updated_at: Value,
    name: Option<String>,
    /// Any format; `phonenumber` and `phone_number` are accepted too.
    phone: Option<String>,
    /// A lead converted to a contact.
    converted: Option<bool>,
    /// The record was deleted in the CRM.
    deleted: Option<bool>,
}

/// A record that was not applied.
#[derive(Serialize, ToSchema)]
pub struct ImportIssue {
    /// Position in `records`.
    pub index: usize,
    pub message: String,
}

/// What an import did.
#[derive(Serialize, ToSchema)]
pub struct ImportReport {
    pub applied: usize,
    /// Older than what is stored.
    pub stale: usize,
    /// Already applied.
    pub duplicate: usize,
    pub errors: Vec<ImportIssue>,
    /// Applied, with a problem (e.g. a phone that does not parse).
    pub warnings: Vec<ImportIssue>,
}

#[derive(Deserialize)]
struct ImportRecord {
    kind: String,
    updated_at: Value,
    #[serde(default)]
    converted: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(flatten)]
    record: CrmRecord,
}

/// `POST /api/v1/directory/import` (admin): initial load of leads / contacts / staff.
#[utoipa::path(
    post,
    path = "/api/v1/directory/import",
    tag = "directory",
    summary = "Import leads, contacts and staff",
    security(("bearer" = ["admin"])),
    request_body = ImportBody,
    responses((status = 200, description = "What was applied", body = ImportReport))
)]
async fn import_directory(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<Json<ImportReport>, ApiError> {
    who.require_admin()?;
    let b: ImportBody = parse_json(&body)?;
    if b.records.len() > MAX_IMPORT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_records",
            format!("at most {MAX_IMPORT} records per request"),
        ));
    }
    let mut counts: HashMap<&str, usize> =
        HashMap::from([("applied", 0), ("stale", 0), ("duplicate", 0)]);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let now = (app.now_ms)();
    for (index, raw) in b.records.into_iter().enumerate() {
        let r: ImportRecord = match serde_json::from_value(raw) {
            Ok(r) => r,
            Err(e) => {
                errors.push(ImportIssue {
                    index,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let kind = match r.kind.as_str() {
            "lead" => DirectoryKind::Lead,
            "contact" => DirectoryKind::Contact,
            "staff" => DirectoryKind::Staff,
            other => {
                errors.push(ImportIssue {
                    index,
                    message: format!("kind {other:?} must be lead, contact or staff"),
                });
                continue;
            }
        };
        let updated_at_ms = match parse_timestamp_ms(&r.updated_at) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ImportIssue {
                    index,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let op = if r.deleted {
            DirectoryOp::Delete
        } else if r.converted {
            DirectoryOp::Convert
        } else {
            DirectoryOp::Upsert
        };
        let event_id = format!(
            "import:{}",
            shared::envelope::sha256_hex(&[
                kind.as_str(),
                &r.record.id,
                &updated_at_ms.to_string()
            ])
        );
        if let Some(p) = r.record.phone.as_deref().filter(|p| !p.trim().is_empty())
            && let Err(e) = app.phones.to_e164(p)
        {
            warnings.push(ImportIssue {
                index,
                message: format!("phone does not parse ({e}); the record will not match senders"),
            });
        }
        let change = DirectoryChange {
            event_id,
            kind,
            op,
            updated_at_ms,
            record: r.record,
        };
        let outcome = shared::directory::apply(&app.store, &app.phones, &change, now).await?;
        let k = match outcome {
            DirectoryOutcome::Applied => "applied",
            DirectoryOutcome::Stale => "stale",
            DirectoryOutcome::Duplicate => "duplicate",
        };
        *counts.entry(k).or_default() += 1;
    }
    tracing::info!(staff_id = %who.staff_id, applied = counts["applied"], errors = errors.len(), "directory import");
    Ok(Json(ImportReport {
        applied: counts["applied"],
        stale: counts["stale"],
        duplicate: counts["duplicate"],
        errors,
        warnings,
    }))
}
