//! A conversation's life beside its messages (`whatsapp_chat:view`, visible conversations
//! only): close it (`conversation.closed`; the bots' trigger 13 asks the customer for a
//! rating), reopen it, and release it back to the bots after a hand-over.
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use shared::bots::job::{BOT_JOB_VERSION, BotEvent, BotJob};
use shared::crm_events::OutboundEvent;
use utoipa::ToSchema;

use crate::conversations::ConversationView;
use crate::{ApiError, Authed, CHAT_VIEW, StaffApp, visible_conversation};

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![close, reopen, release]
}

/// The conversation after the change.
#[derive(Serialize, ToSchema)]
pub struct LifecycleView {
    pub conversation: ConversationView,
}

async fn answer(app: &StaffApp, pnid: &str, cid: &str) -> Result<Json<LifecycleView>, ApiError> {
    let conv = app
        .store
        .conversation(pnid, cid)
        .await?
        .ok_or_else(|| ApiError::not_found("conversation"))?;
    Ok(Json(LifecycleView {
        conversation: ConversationView::new(&conv, (app.now_ms)()),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/close",
    tag = "inbox",
    summary = "Close a conversation",
    description = "Publishes `conversation.closed`; bots with trigger 13 then ask the customer for a rating. Closing a closed conversation changes nothing.",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "Closed", body = LifecycleView))
)]
async fn close(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<LifecycleView>, ApiError> {
    who.require(CHAT_VIEW)?;
    let m = app.messaging()?;
    let conv = visible_conversation(&app, &who, &id).await?;
    let (pnid, cid) = (conv.phone_number_id.as_str(), conv.customer_id.as_str());
    if conv.closed_at.is_none() {
        let now = (app.now_ms)();
        // The event and the rating request first: a failure leaves the conversation open, and
        // the retried request sends the same event id and bot job.
        m.publish(OutboundEvent {
            detail_type: "conversation.closed".into(),
            detail: json!({
                "event_id": format!("conversation.closed:{}:{now}", conv.conversation_id),
                "conversation_id": conv.conversation_id,
                "phone_number_id": pnid,
                "rel_type": conv.rel_type,
                "rel_id": conv.rel_id,
                "customer": {"id": cid, "name": conv.customer_name, "phone": conv.customer_phone, "wa_id": conv.wa_id},
                "closed_by": who.staff_id,
                "at": now,
            }),
        })
        .await?;
        if let Some(jobs) = &app.bot_jobs {
            let job = BotJob {
                v: BOT_JOB_VERSION,
                phone_number_id: pnid.into(),
                customer_id: cid.into(),
                set_version: None,
                event: BotEvent::Closed {
                    at_ms: now,
                    staff_id: who.staff_id.clone(),
                },
            };
            jobs.send_all(&[job.envelope()]).await.map_err(|e| {
                tracing::error!(error = %e, "bots queue unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    "the rating request could not be queued; retry",
                )
            })?;
        }
        app.store.set_closed(pnid, cid, true, now).await?;
        tracing::info!(conversation_id = %conv.conversation_id, staff_id = %who.staff_id, "conversation closed");
    }
    answer(&app, pnid, cid).await
}

#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/reopen",
    tag = "inbox",
    summary = "Reopen a closed conversation",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "Open", body = LifecycleView))
)]
async fn reopen(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<LifecycleView>, ApiError> {
    who.require(CHAT_VIEW)?;
    let conv = visible_conversation(&app, &who, &id).await?;
    let (pnid, cid) = (conv.phone_number_id.as_str(), conv.customer_id.as_str());
    if conv.closed_at.is_some() {
        app.store
            .set_closed(pnid, cid, false, (app.now_ms)())
            .await?;
    }
    answer(&app, pnid, cid).await
}

#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/release",
    tag = "inbox",
    summary = "Release a handed-over conversation back to the bots",
    description = "While a conversation is handed over to a human, no bot answers it.",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("id" = String, Path, description = "Conversation id")),
    responses((status = 200, description = "Released", body = LifecycleView))
)]
async fn release(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
) -> Result<Json<LifecycleView>, ApiError> {
    who.require(CHAT_VIEW)?;
    let conv = visible_conversation(&app, &who, &id).await?;
    let (pnid, cid) = (conv.phone_number_id.as_str(), conv.customer_id.as_str());
    let now = (app.now_ms)();
    app.store.set_handover(pnid, cid, None, now).await?;
    // The bots' own record of the hand-over goes too.
    for _ in 0..3 {
        let stored = app.store.bot_state(pnid, cid).await?;
        if stored.state.handed_over.is_none() {
            break;
        }
        let mut state = stored.state.clone();
        state.handed_over = None;
        if app
            .store
            .save_bot_state(pnid, cid, &stored, &state, None)
            .await?
        {
            break;
        }
    }
    tracing::info!(conversation_id = %conv.conversation_id, staff_id = %who.staff_id, "conversation released to the bots");
    answer(&app, pnid, cid).await
}
