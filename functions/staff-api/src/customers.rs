//! Customers in the staff API: `POST /api/v1/customers/{id}/forget` (admin) erases everything
//! stored of a customer (see `shared::privacy`) and tells the CRM with `customer.forgotten`.
//! `{id}` is the customer id a conversation shows (`customer.id`), or the customer's phone
//! number in any format.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;
use shared::crm_events::OutboundEvent;
use shared::privacy::ForgetReport;
use shared::store::keys::AliasKind;

use crate::{ApiError, Authed, StaffApp};

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![forget]
}

/// A customer id is 32 lowercase hex characters (UUIDv5, simple form).
fn is_customer_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The customer behind a phone number: as WhatsApp writes it (the digits of the wa_id), or in
/// any format the normaliser reads.
async fn by_phone(app: &StaffApp, phone: &str) -> Result<Option<String>, ApiError> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    if !digits.is_empty()
        && let Some(c) = app
            .store
            .customer_by_alias(AliasKind::WaId, &digits)
            .await?
    {
        return Ok(Some(c.customer_id));
    }
    let Ok(e164) = app.phones.to_e164(phone) else {
        return Ok(None);
    };
    Ok(app
        .store
        .customer_by_alias(AliasKind::E164, &e164)
        .await?
        .map(|c| c.customer_id))
}

#[utoipa::path(
    post,
    path = "/api/v1/customers/{id}/forget",
    tag = "customers",
    summary = "Erase everything stored of a customer (id, or phone number); emits customer.forgotten",
    description = "Erases the customer's conversations, messages, media, aliases and profile, then publishes `customer.forgotten` to the CRM. A run interrupted half-way (503) is finished by calling again; once everything is erased the customer is not found (404). No request body.",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, description = "The customer id a conversation shows (`customer.id`, 32 hex characters), or the customer's phone number in any format")),
    responses((status = 200, description = "What was erased", body = ForgetReport))
)]
async fn forget(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<ForgetReport>, ApiError> {
    who.require_admin()?;
    let customer_id = if is_customer_id(&id) {
        id.clone()
    } else {
        by_phone(&app, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("customer"))?
    };
    let numbers: Vec<String> = app
        .store
        .numbers()
        .await?
        .into_iter()
        .map(|n| n.phone_number_id)
        .collect();
    let m = app.messaging()?;
    let report = shared::privacy::forget_customer(
        &app.store,
        app.media_bucket.as_ref(),
        &customer_id,
        &numbers,
    )
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "forgetting a customer failed half-way; retry finishes it");
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the customer could not be fully erased yet; retry (what is done stays done)",
        )
    })?;
    if report.conversations.is_empty() && !report.profile {
        return Err(ApiError::not_found("customer"));
    }
    m.publish(OutboundEvent {
        detail_type: "customer.forgotten".into(),
        detail: json!({
            "event_id": format!("customer.forgotten:{customer_id}"),
            "customer_id": customer_id,
            "conversation_ids": report.conversations,
            "forgotten_by": who.staff_id,
            "at": (app.now_ms)(),
        }),
    })
    .await?;
    tracing::info!(staff_id = %who.staff_id, customer_id = %customer_id, messages = report.messages, media = report.media, "customer forgotten");
    Ok(Json(report))
}
