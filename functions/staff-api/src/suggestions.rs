//! The AI's suggested answer (AI in `manual` mode, `whatsapp_chat:view`, visible conversations
//! only). The bots function stores it on the conversation (`ai_suggestion`) and in its history
//! (an internal `ai_suggestion` note); it is never sent by itself. Staff send it, as it is or
//! edited, through the normal reply path (24-hour window check, send intent, pacing), or
//! dismiss it.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shared::meta::outbound::{OutboundContent, TEXT_BODY_MAX};
use utoipa::ToSchema;

use crate::inbox::{SendView, send_to};
use crate::{ApiError, Authed, CHAT_VIEW, StaffApp, parse_json, visible_conversation};

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![send_suggestion, dismiss_suggestion]
}

/// Sends the conversation's suggestion.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendSuggestionBody {
    /// The suggestion's id as shown (`ai_suggestion.id`): a newer suggestion is not sent in
    /// its place (409 `suggestion_changed`).
    suggestion_id: String,
    /// The text to send instead of the suggestion's (staff edited it); 1–4096 characters.
    #[serde(default)]
    text: Option<String>,
}

fn current(
    conv: &shared::store::model::Conversation,
    id: &str,
) -> Result<shared::store::model::AiSuggestion, ApiError> {
    let s = conv.ai_suggestion.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_suggestion",
            "the conversation has no AI suggestion",
        )
    })?;
    if s.id != id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "suggestion_changed",
            format!(
                "the conversation's suggestion is now {} (a newer message was answered)",
                s.id
            ),
        ));
    }
    Ok(s)
}

/// `POST /api/v1/conversations/{id}/ai-suggestion/send`
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/ai-suggestion/send",
    tag = "inbox",
    summary = "Send the AI's suggested answer (as it is or edited)",
    description = "Goes through the normal reply path: outside the 24-hour window it is refused (409 `window_closed`). Sending the same suggestion twice sends it once. The suggestion is then removed from the conversation.",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("id" = String, Path, description = "Conversation id")),
    request_body = SendSuggestionBody,
    responses(
        (status = 201, description = "Accepted by Meta", body = SendView),
        (status = 202, description = "Meta's answer was lost: the outcome is settled by the first status", body = SendView),
        (status = 200, description = "Sent before", body = SendView),
    )
)]
async fn send_suggestion(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<SendView>), ApiError> {
    who.require(CHAT_VIEW)?;
    let b: SendSuggestionBody = parse_json(&body)?;
    let m = app.messaging()?;
    let conv = visible_conversation(&app, &who, &id).await?;
    let key = format!("ai-suggestion:{}", b.suggestion_id);
    let suggestion = match conv.ai_suggestion.as_ref() {
        Some(s) if s.id == b.suggestion_id => s.clone(),
        _ => {
            // Sent and cleared before: a retried click is answered from the first send.
            let sent_id = shared::store::keys::outbound_message_id(&conv.conversation_id, &key);
            if let Some(i) = app.store.intent(&sent_id).await? {
                return Ok((StatusCode::OK, Json(SendView::new(&i))));
            }
            current(&conv, &b.suggestion_id)?
        }
    };
    let text = b.text.map_or(suggestion.text, |t| t.trim().to_string());
    if text.is_empty() || text.chars().count() > TEXT_BODY_MAX {
        return Err(ApiError::bad_request(format!(
            "text must be 1 to {TEXT_BODY_MAX} characters"
        )));
    }
    let reply_to = suggestion.for_wamid;
    let sent = send_to(
        &app,
        m,
        &who,
        &conv,
        OutboundContent::Text {
            body: text,
            preview_url: false,
        },
        reply_to,
        &key,
    )
    .await?;
    app.store
        .clear_ai_suggestion(&conv.phone_number_id, &conv.customer_id, &b.suggestion_id)
        .await?;
    tracing::info!(conversation_id = %conv.conversation_id, staff_id = %who.staff_id, suggestion_id = %b.suggestion_id, "AI suggestion sent");
    Ok(sent)
}

/// `DELETE /api/v1/conversations/{id}/ai-suggestion/{suggestion_id}`
#[utoipa::path(
    delete,
    path = "/api/v1/conversations/{id}/ai-suggestion/{suggestion_id}",
    tag = "inbox",
    summary = "Dismiss the AI's suggested answer",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(
        ("id" = String, Path, description = "Conversation id"),
        ("suggestion_id" = String, Path, description = "The suggestion's id"),
    ),
    responses((status = 204, description = "Dismissed"))
)]
async fn dismiss_suggestion(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path((id, suggestion_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    who.require(CHAT_VIEW)?;
    let conv = visible_conversation(&app, &who, &id).await?;
    current(&conv, &suggestion_id)?;
    if !app
        .store
        .clear_ai_suggestion(&conv.phone_number_id, &conv.customer_id, &suggestion_id)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "suggestion_changed",
            "the suggestion was replaced or removed meanwhile",
        ));
    }
    tracing::info!(conversation_id = %conv.conversation_id, staff_id = %who.staff_id, suggestion_id = %suggestion_id, "AI suggestion dismissed");
    Ok(StatusCode::NO_CONTENT)
}
