//! Media routes: a short-lived link to media of a conversation the caller may see, and
//! outbound files uploaded by the browser to S3 (presigned PUT), then handed to Meta.
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shared::media::{MAX_MEDIA_BYTES, MediaBucket, MediaItem, media_pk};
use shared::store::keys;
use utoipa::ToSchema;

use crate::{ApiError, Authed, CHAT_VIEW, StaffApp, parse_conv_id, parse_json};

pub fn routes() -> crate::routing::Routes {
    crate::api_routes![media_link, start_upload, complete_upload]
}

pub(crate) fn bucket(app: &StaffApp) -> Result<&MediaBucket, ApiError> {
    app.media_bucket.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "media storage is not configured",
        )
    })
}

pub(crate) fn storage(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "media storage failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "media storage is unavailable, retry later",
    )
}

/// A short-lived link to a stored media object.
#[derive(Serialize, ToSchema)]
pub struct MediaLink {
    /// Meta's media id.
    pub media_id: String,
    pub conversation_id: String,
    /// Presigned GET URL, valid `expires_in` seconds.
    pub url: String,
    pub mime_type: String,
    /// Bytes.
    pub size: u64,
    pub filename: Option<String>,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
}

/// `GET /api/v1/media/{media_id}` → `{url, mime_type, size, expires_in}` after checking the
/// caller may see the conversation the media belongs to.
#[utoipa::path(
    get,
    path = "/api/v1/media/{media_id}",
    tag = "media",
    summary = "Short-lived link to a media object of a visible conversation",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("media_id" = String, Path, description = "Meta's media id (a message's `media.id`)")),
    responses((status = 200, description = "A presigned link to the stored copy", body = MediaLink))
)]
async fn media_link(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(media_id): Path<String>,
) -> Result<Json<MediaLink>, ApiError> {
    who.require(CHAT_VIEW)?;
    let item = app
        .store
        .media(&media_id)
        .await?
        .ok_or_else(|| ApiError::not_found("media"))?;
    let conv = app
        .store
        .conversation(&item.phone_number_id, &item.customer_id)
        .await?
        .ok_or_else(|| ApiError::not_found("media"))?;
    crate::visibility::require_visible(&app, &who, &conv).await?;
    let url = bucket(&app)?
        .presign_get(&item.s3_key)
        .await
        .map_err(storage)?;
    Ok(Json(MediaLink {
        media_id: item.media_id,
        conversation_id: item.conversation_id,
        url,
        mime_type: item.mime_type,
        size: item.size,
        filename: item.filename,
        expires_in: shared::media::URL_TTL.as_secs(),
    }))
}

/// Meta's per-type limits (bytes) and accepted MIME types.
fn limit_for(mime: &str) -> Option<(&'static str, usize)> {
    const MB: usize = 1024 * 1024;
    match mime {
        "image/jpeg" | "image/png" => Some(("image", 5 * MB)),
        "image/webp" => Some(("sticker", 500 * 1024)),
        "video/mp4" | "video/3gpp" => Some(("video", 16 * MB)),
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => {
            Some(("audio", 16 * MB))
        }
        "text/plain"
        | "application/pdf"
        | "application/vnd.ms-powerpoint"
        | "application/msword"
        | "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            Some(("document", MAX_MEDIA_BYTES))
        }
        _ => None,
    }
}

/// A file the browser is about to upload, to be sent in a conversation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartUpload {
    /// The conversation the file is for (it must be visible to the caller).
    conversation_id: String,
    /// 1 to 240 characters, without slashes (shown to the customer for documents).
    filename: String,
    /// A type WhatsApp accepts: `image/jpeg`, `image/png` (5 MB), `image/webp` (sticker,
    /// 500 KB), `video/mp4`, `video/3gpp`, `audio/aac`, `audio/amr`, `audio/mpeg`, `audio/mp4`,
    /// `audio/ogg` (16 MB), or a document (`application/pdf`, `text/plain`, Office formats;
    /// 100 MB).
    mime_type: String,
    /// Bytes, 1 to the type's limit; the uploaded file must have exactly this size.
    size: u64,
}

/// Headers the browser's `PUT` must send.
#[derive(Serialize, ToSchema)]
pub struct UploadHeaders {
    /// The declared `mime_type`.
    #[serde(rename = "content-type")]
    pub content_type: String,
}

/// Where the browser uploads the file.
#[derive(Serialize, ToSchema)]
pub struct UploadTicket {
    /// For `POST /api/v1/media/uploads/{upload_id}/complete`.
    pub upload_id: String,
    /// Presigned URL to `PUT` the file to.
    pub url: String,
    /// Always `PUT`.
    pub method: String,
    pub headers: UploadHeaders,
    /// Seconds the URL stays valid.
    pub expires_in: u64,
    /// WhatsApp media kind of the file: `image`, `sticker`, `video`, `audio` or `document`.
    pub kind: String,
}

/// An uploaded file handed to Meta.
#[derive(Serialize, ToSchema)]
pub struct UploadedMedia {
    /// Meta's media id, for a reply (`{"type":"media","kind":…,"source":{"id":…}}`).
    pub media_id: String,
    pub mime_type: String,
    /// Bytes.
    pub size: u64,
}

#[derive(Serialize, Deserialize)]
struct Upload {
    pk: String,
    sk: String,
    upload_id: String,
    conversation_id: String,
    s3_key: String,
    filename: String,
    mime_type: String,
    size: u64,
    staff_id: String,
    created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_id: Option<String>,
}

/// `POST /api/v1/media/uploads` → a presigned PUT for the browser.
#[utoipa::path(
    post,
    path = "/api/v1/media/uploads",
    tag = "media",
    summary = "Start an upload: presigned PUT URL",
    security(("bearer" = ["whatsapp_chat:view"])),
    request_body = StartUpload,
    responses((status = 201, description = "Where to upload the file", body = UploadTicket))
)]
async fn start_upload(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<UploadTicket>), ApiError> {
    who.require(CHAT_VIEW)?;
    let b: StartUpload = parse_json(&body)?;
    let (kind, max) = limit_for(&b.mime_type).ok_or_else(|| {
        ApiError::bad_request(format!(
            "mime_type {:?} is not a type WhatsApp accepts",
            b.mime_type
        ))
    })?;
    if b.size == 0 || b.size as usize > max {
        return Err(ApiError::bad_request(format!(
            "size must be 1 to {max} bytes for {kind}"
        )));
    }
    let filename = b.filename.trim();
    if filename.is_empty() || filename.chars().count() > 240 || filename.contains(['/', '\\']) {
        return Err(ApiError::bad_request(
            "filename must be 1 to 240 characters without slashes",
        ));
    }
    let conv = crate::visible_conversation(&app, &who, &b.conversation_id).await?;
    let upload_id = uuid::Uuid::new_v4().simple().to_string();
    let s3_key = format!(
        "uploads/{}/{upload_id}",
        conv.conversation_id.replace(':', "/")
    );
    let url = bucket(&app)?
        .presign_put(&s3_key, &b.mime_type, b.size)
        .await
        .map_err(storage)?;
    let up = Upload {
        pk: format!("UPLOAD#{upload_id}"),
        sk: "UPLOAD".into(),
        upload_id: upload_id.clone(),
        conversation_id: conv.conversation_id.clone(),
        s3_key,
        filename: filename.to_string(),
        mime_type: b.mime_type.clone(),
        size: b.size,
        staff_id: who.staff_id.clone(),
        created_at: (app.now_ms)(),
        media_id: None,
    };
    app.store.put_item_new(&up).await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadTicket {
            upload_id,
            url,
            method: "PUT".into(),
            headers: UploadHeaders {
                content_type: b.mime_type,
            },
            expires_in: shared::media::URL_TTL.as_secs(),
            kind: kind.into(),
        }),
    ))
}

/// `POST /api/v1/media/uploads/{id}/complete` → the file is sent to Meta's media API; the
/// answer's `media_id` goes into a reply (`{"type":"media","kind":…,"source":{"id":…}}`).
#[utoipa::path(
    post,
    path = "/api/v1/media/uploads/{upload_id}/complete",
    tag = "media",
    summary = "Hand an uploaded file to Meta; returns its media id",
    description = "No request body. Calling again once done answers the same media id with 200.",
    security(("bearer" = ["whatsapp_chat:view"])),
    params(("upload_id" = String, Path, description = "`upload_id` of `POST /api/v1/media/uploads`")),
    responses(
        (status = 201, description = "The file was sent to Meta", body = UploadedMedia),
        (status = 200, description = "Already completed: the same media id", body = UploadedMedia)
    )
)]
async fn complete_upload(
    State(app): State<Arc<StaffApp>>,
    Authed(who, _): Authed,
    Path(upload_id): Path<String>,
) -> Result<(StatusCode, Json<UploadedMedia>), ApiError> {
    who.require(CHAT_VIEW)?;
    let up: Upload = app
        .store
        .get_item(format!("UPLOAD#{upload_id}"), "UPLOAD")
        .await?
        .ok_or_else(|| ApiError::not_found("upload"))?;
    // Only someone who may see the upload's conversation may complete it.
    crate::visible_conversation(&app, &who, &up.conversation_id).await?;
    if let Some(media_id) = &up.media_id {
        return Ok((
            StatusCode::OK,
            Json(UploadedMedia {
                media_id: media_id.clone(),
                mime_type: up.mime_type,
                size: up.size,
            }),
        ));
    }
    let (_, max) =
        limit_for(&up.mime_type).ok_or_else(|| ApiError::bad_request("unsupported mime_type"))?;
    // Never more than was declared (and allowed) when the link was given.
    let declared = (up.size as usize).min(max);
    let (size, file) = bucket(&app)?
        .get_stream(&up.s3_key, declared as u64)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::CONFLICT,
                "upload_missing",
                format!("the file was not uploaded (or is too large): {e}"),
            )
        })?;
    if size != up.size {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "upload_size_mismatch",
            format!(
                "the uploaded file is {size} bytes, not the {} declared",
                up.size
            ),
        ));
    }
    let (pnid, cid) = parse_conv_id(&up.conversation_id)?;
    let m = app.messaging()?;
    let token = m.token().await?;
    let media_id = m
        .graph
        // Streamed from S3 to Meta: the file is never held in memory.
        .upload_media_stream(pnid, &token, &up.mime_type, &up.filename, size, file)
        .await
        .map_err(|e| crate::inbox::meta_refusal(&e))?;
    let now = (app.now_ms)();
    app.store
        .put_media(&MediaItem {
            pk: media_pk(&media_id),
            sk: "MEDIA".into(),
            media_id: media_id.clone(),
            conversation_id: keys::conversation_id(pnid, cid),
            phone_number_id: pnid.to_string(),
            customer_id: cid.to_string(),
            wamid: None,
            s3_key: up.s3_key.clone(),
            mime_type: up.mime_type.clone(),
            size,
            sha256: None,
            filename: Some(up.filename.clone()),
            origin: "upload".into(),
            stored_at: now,
        })
        .await?;
    app.store.set_upload_media(&upload_id, &media_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(UploadedMedia {
            media_id,
            mime_type: up.mime_type,
            size,
        }),
    ))
}
