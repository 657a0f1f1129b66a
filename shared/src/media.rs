//! Media: inbound media copied from Meta to S3 as it arrives (Meta keeps it 7 days; a Lambda
//! response cannot carry more than 6 MB), served by short-lived presigned URLs; outbound files
//! uploaded by the browser with a presigned PUT, then handed to Meta's media API.
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::meta::graph::{GraphClient, GraphError};
use crate::store::{Store, StoreError, keys};

/// Largest media Meta allows (documents: 100 MB).
pub const MAX_MEDIA_BYTES: usize = 100 * 1024 * 1024;
/// Presigned URLs live this long.
pub const URL_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("media storage failed: {0}")]
    Storage(String),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A media object we hold (`MEDIA#{media_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaItem {
    pub pk: String,
    pub sk: String,
    pub media_id: String,
    pub conversation_id: String,
    pub phone_number_id: String,
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    pub s3_key: String,
    pub mime_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// `inbound` (copied from Meta) or `upload` (a staff upload).
    pub origin: String,
    pub stored_at: i64,
}

pub fn media_pk(media_id: &str) -> String {
    format!("MEDIA#{media_id}")
}

/// The S3 side.
#[derive(Clone)]
pub struct MediaBucket {
    client: Client,
    bucket: String,
}

impl MediaBucket {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub async fn put(&self, key: &str, data: Vec<u8>, mime: &str) -> Result<(), MediaError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(mime)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }

    pub async fn get(
        &self,
        key: &str,
        max_bytes: usize,
    ) -> Result<(Vec<u8>, Option<String>), MediaError> {
        let o = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        if o.content_length().unwrap_or(0) as usize > max_bytes {
            return Err(MediaError::Storage(format!(
                "object is over {max_bytes} bytes"
            )));
        }
        let ct = o.content_type().map(str::to_string);
        let data = o
            .body
            .collect()
            .await
            .map_err(|e| MediaError::Storage(e.to_string()))?
            .into_bytes()
            .to_vec();
        Ok((data, ct))
    }

    pub async fn presign_get(&self, key: &str) -> Result<String, MediaError> {
        let cfg = PresigningConfig::expires_in(URL_TTL)
            .map_err(|e| MediaError::Storage(e.to_string()))?;
        let r = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(cfg)
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        Ok(r.uri().to_string())
    }

    pub async fn presign_put(&self, key: &str, mime: &str) -> Result<String, MediaError> {
        let cfg = PresigningConfig::expires_in(URL_TTL)
            .map_err(|e| MediaError::Storage(e.to_string()))?;
        let r = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(mime)
            .presigned(cfg)
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        Ok(r.uri().to_string())
    }
}

/// S3 key of an inbound media object.
pub fn inbound_key(phone_number_id: &str, customer_id: &str, media_id: &str) -> String {
    format!("media/{phone_number_id}/{customer_id}/{media_id}")
}

/// What an inbound message's media is.
pub struct InboundMedia<'a> {
    pub media_id: &'a str,
    pub phone_number_id: &'a str,
    pub customer_id: &'a str,
    pub wamid: &'a str,
    pub filename: Option<&'a str>,
    pub now_ms: i64,
}

/// Copies one inbound media object from Meta to S3 once (idempotent on the media id).
/// The download is done by the Graph client, which only ever talks to Meta's hosts over HTTPS.
pub async fn copy_inbound(
    store: &Store,
    bucket: &MediaBucket,
    graph: &GraphClient,
    token: &str,
    m: &InboundMedia<'_>,
) -> Result<MediaItem, MediaError> {
    if let Some(existing) = store
        .get::<MediaItem>(media_pk(m.media_id), "MEDIA")
        .await?
    {
        return Ok(existing);
    }
    let (info, data) = graph
        .fetch_media(m.media_id, token, MAX_MEDIA_BYTES)
        .await?;
    let key = inbound_key(m.phone_number_id, m.customer_id, m.media_id);
    let size = data.len() as u64;
    bucket.put(&key, data, &info.mime_type).await?;
    let item = MediaItem {
        pk: media_pk(m.media_id),
        sk: "MEDIA".into(),
        media_id: m.media_id.to_string(),
        conversation_id: keys::conversation_id(m.phone_number_id, m.customer_id),
        phone_number_id: m.phone_number_id.to_string(),
        customer_id: m.customer_id.to_string(),
        wamid: Some(m.wamid.to_string()),
        s3_key: key,
        mime_type: info.mime_type,
        size,
        sha256: (!info.sha256.is_empty()).then_some(info.sha256),
        filename: m.filename.map(str::to_string),
        origin: "inbound".into(),
        stored_at: m.now_ms,
    };
    store.put_new(&item).await?;
    Ok(item)
}

impl Store {
    pub async fn media(&self, media_id: &str) -> Result<Option<MediaItem>, StoreError> {
        self.get(media_pk(media_id), "MEDIA").await
    }

    pub async fn put_media(&self, item: &MediaItem) -> Result<(), StoreError> {
        self.put_new(item).await?;
        Ok(())
    }
}
