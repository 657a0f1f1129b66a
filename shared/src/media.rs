//! Media: inbound media copied from Meta to S3 as it arrives (Meta keeps it 7 days; a Lambda
//! response cannot carry more than 6 MB), served by short-lived presigned URLs; outbound files
//! uploaded by the browser with a presigned PUT, then handed to Meta's media API.
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::meta::graph::{GraphClient, GraphError, MediaDownload};
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

    /// Streams a download into `key`: one `PutObject` when it fits in one part, else a
    /// multipart upload in parts of [`PART_BYTES`] (aborted on any failure, so no partial
    /// object is ever visible). `verify` runs on the finished download before the object is
    /// made visible. Returns the size.
    pub async fn put_streamed(
        &self,
        key: &str,
        mime: &str,
        download: &mut MediaDownload,
        verify: impl Fn(&MediaDownload) -> Result<(), GraphError>,
    ) -> Result<u64, MediaError> {
        let mut part = Vec::with_capacity(PART_BYTES);
        let mut carry = None;
        // Fill the first part; a small media is one PutObject.
        let mut done = fill_part(download, &mut part, &mut carry).await?;
        if done {
            verify(download)?;
            let size = part.len() as u64;
            self.put(key, part, mime).await?;
            return Ok(size);
        }
        let mut upload = Multipart::begin(self, key, mime).await?;
        let result = async {
            loop {
                let body = std::mem::replace(&mut part, Vec::with_capacity(PART_BYTES));
                upload.part(body).await?;
                if done {
                    break;
                }
                done = fill_part(download, &mut part, &mut carry).await?;
                if done && part.is_empty() {
                    break;
                }
            }
            verify(download)?;
            Ok::<(), MediaError>(())
        }
        .await;
        match result {
            Ok(()) => {
                upload.complete().await?;
                Ok(download.bytes_read() as u64)
            }
            Err(e) => {
                upload.abort().await;
                Err(e)
            }
        }
    }

    /// Writes an object as its bytes are produced (an export), holding at most one part in
    /// memory: see [`ObjectWriter`].
    pub fn writer(&self, key: impl Into<String>, mime: impl Into<String>) -> ObjectWriter<'_> {
        ObjectWriter {
            bucket: self,
            key: key.into(),
            mime: mime.into(),
            buf: Vec::new(),
            upload: None,
            size: 0,
        }
    }

    /// An object read as it is consumed: its size and its bytes as a stream (refused over
    /// `max_bytes` before anything is read).
    pub async fn get_stream(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<
        (
            u64,
            impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static,
        ),
        MediaError,
    > {
        let o = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        let size = o.content_length().unwrap_or(0).max(0) as u64;
        if size > max_bytes {
            return Err(MediaError::Storage(format!(
                "object is over {max_bytes} bytes"
            )));
        }
        let stream = futures::stream::unfold(o.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Some((Ok(chunk), body)),
                Ok(None) => None,
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), body)),
            }
        });
        Ok((size, stream))
    }

    /// Deletes an object (no error when it does not exist).
    pub async fn delete(&self, key: &str) -> Result<(), MediaError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }

    /// A short-lived download link. Served as an attachment: a file a customer sent (HTML,
    /// SVG …) is never rendered inline on the bucket's origin; `<img>`/`<video>` still show it.
    pub async fn presign_get(&self, key: &str) -> Result<String, MediaError> {
        let cfg = PresigningConfig::expires_in(URL_TTL)
            .map_err(|e| MediaError::Storage(e.to_string()))?;
        let r = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition("attachment")
            .presigned(cfg)
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        Ok(r.uri().to_string())
    }

    /// A short-lived download link for a file we produced (an export): saved as `filename`, with
    /// its content type.
    pub async fn presign_download(
        &self,
        key: &str,
        filename: &str,
        content_type: &str,
        ttl: Duration,
    ) -> Result<String, MediaError> {
        let cfg =
            PresigningConfig::expires_in(ttl).map_err(|e| MediaError::Storage(e.to_string()))?;
        let safe: String = filename
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let r = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{safe}\""))
            .response_content_type(content_type)
            .presigned(cfg)
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        Ok(r.uri().to_string())
    }

    /// A short-lived upload link bound to one content type and one size: `Content-Length` is a
    /// signed header, so S3 refuses any other size.
    pub async fn presign_put(
        &self,
        key: &str,
        mime: &str,
        size: u64,
    ) -> Result<String, MediaError> {
        let cfg = PresigningConfig::expires_in(URL_TTL)
            .map_err(|e| MediaError::Storage(e.to_string()))?;
        let r = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(mime)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .presigned(cfg)
            .await
            .map_err(|e| MediaError::Storage(DisplayErrorContext(&e).to_string()))?;
        Ok(r.uri().to_string())
    }
}

/// Reads the download into `part` until it holds [`PART_BYTES`] or the download ends; true at
/// the end of the download.
/// A part never grows past [`PART_BYTES`] (no reallocation): what a chunk brings beyond it is
/// kept in `carry` for the next part.
async fn fill_part(
    download: &mut MediaDownload,
    part: &mut Vec<u8>,
    carry: &mut Option<bytes::Bytes>,
) -> Result<bool, MediaError> {
    loop {
        let chunk = match carry.take() {
            Some(c) => c,
            None => match download.chunk().await? {
                Some(c) => c,
                None => return Ok(true),
            },
        };
        let room = PART_BYTES - part.len();
        if chunk.len() > room {
            part.extend_from_slice(&chunk[..room]);
            *carry = Some(chunk.slice(room..));
        } else {
            part.extend_from_slice(&chunk);
        }
        if part.len() == PART_BYTES {
            return Ok(false);
        }
    }
}

/// S3 key of an inbound media object.
pub fn inbound_key(phone_number_id: &str, customer_id: &str, media_id: &str) -> String {
    format!("media/{phone_number_id}/{customer_id}/{media_id}")
}

/// What an inbound message's media is: the job the inbound function hands to the media function
/// (its own queue, so copying never holds back a conversation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaJob {
    /// Job format version.
    pub v: u32,
    pub media_id: String,
    pub phone_number_id: String,
    pub customer_id: String,
    pub wamid: String,
    /// The message item whose `media_state` the copy settles.
    pub msg_pk: String,
    pub msg_sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

pub const MEDIA_JOB_VERSION: u32 = 1;

impl MediaJob {
    pub fn from_body(body: &str) -> Result<Self, String> {
        let job: MediaJob =
            serde_json::from_str(body).map_err(|e| format!("not a media job: {e}"))?;
        if job.v != MEDIA_JOB_VERSION {
            return Err(format!("media job version {} is not supported", job.v));
        }
        Ok(job)
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a media job serialises")
    }
}

pub use crate::store::model::MediaState;

/// Size of each part of a multipart upload (S3's minimum is 5 MiB except for the last part):
/// the memory a copy holds at once.
pub const PART_BYTES: usize = 8 * 1024 * 1024;

fn storage(e: impl std::error::Error + 'static) -> MediaError {
    MediaError::Storage(DisplayErrorContext(&e).to_string())
}

/// One multipart upload: parts in order, then completed (the object appears whole) or aborted
/// (nothing appears; the bucket's lifecycle rule removes an upload whose abort failed).
struct Multipart<'a> {
    bucket: &'a MediaBucket,
    key: String,
    upload_id: String,
    parts: Vec<CompletedPart>,
}

impl<'a> Multipart<'a> {
    async fn begin(bucket: &'a MediaBucket, key: &str, mime: &str) -> Result<Self, MediaError> {
        let upload = bucket
            .client
            .create_multipart_upload()
            .bucket(&bucket.bucket)
            .key(key)
            .content_type(mime)
            .send()
            .await
            .map_err(storage)?;
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| MediaError::Storage("CreateMultipartUpload gave no upload id".into()))?
            .to_string();
        Ok(Self {
            bucket,
            key: key.to_string(),
            upload_id,
            parts: Vec::new(),
        })
    }

    async fn part(&mut self, body: Vec<u8>) -> Result<(), MediaError> {
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let out = self
            .bucket
            .client
            .upload_part()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(storage)?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    async fn complete(self) -> Result<(), MediaError> {
        let r = self
            .bucket
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = storage(e);
                self.abort().await;
                Err(e)
            }
        }
    }

    async fn abort(self) {
        let abort = self
            .bucket
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await;
        if let Err(e) = abort {
            // The bucket's lifecycle rule removes incomplete uploads after a day.
            tracing::warn!(error = %DisplayErrorContext(&e), "could not abort a multipart upload");
        }
    }
}

/// An object written as its bytes are produced (a CSV export), holding at most one part in
/// memory: one that ends within a part is one `PutObject`, a longer one a multipart upload in
/// parts of [`PART_BYTES`]. Nothing is visible until [`ObjectWriter::finish`]; a failure
/// aborts the upload.
pub struct ObjectWriter<'a> {
    bucket: &'a MediaBucket,
    key: String,
    mime: String,
    buf: Vec<u8>,
    upload: Option<Multipart<'a>>,
    size: u64,
}

impl ObjectWriter<'_> {
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), MediaError> {
        self.buf.extend_from_slice(bytes);
        self.size += bytes.len() as u64;
        while self.buf.len() >= PART_BYTES {
            let rest = self.buf.split_off(PART_BYTES);
            let part = std::mem::replace(&mut self.buf, rest);
            if self.upload.is_none() {
                self.upload = Some(Multipart::begin(self.bucket, &self.key, &self.mime).await?);
            }
            let upload = self.upload.as_mut().expect("begun above");
            if let Err(e) = upload.part(part).await {
                self.abort().await;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Makes the object visible; answers its size.
    pub async fn finish(mut self) -> Result<u64, MediaError> {
        let body = std::mem::take(&mut self.buf);
        match self.upload.take() {
            None => self.bucket.put(&self.key, body, &self.mime).await?,
            Some(mut upload) => {
                if !body.is_empty()
                    && let Err(e) = upload.part(body).await
                {
                    upload.abort().await;
                    return Err(e);
                }
                upload.complete().await?;
            }
        }
        Ok(self.size)
    }

    /// Gives the object up: nothing of it becomes visible.
    pub async fn abort(&mut self) {
        self.buf = Vec::new();
        if let Some(upload) = self.upload.take() {
            upload.abort().await;
        }
    }
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

/// Copies one inbound media object from Meta to S3 once (idempotent on the media id), streaming
/// it through in parts of [`PART_BYTES`] so memory stays bounded whatever the media's size.
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
    let info = graph.media_info(m.media_id, token).await?;
    if info.file_size > MAX_MEDIA_BYTES as u64 {
        return Err(GraphError::BadResponse(format!(
            "media is {} bytes, over the {MAX_MEDIA_BYTES}-byte limit",
            info.file_size
        ))
        .into());
    }
    let key = inbound_key(m.phone_number_id, m.customer_id, m.media_id);
    let mut download = graph
        .open_download(&info.url, token, MAX_MEDIA_BYTES)
        .await?;
    let size = bucket
        .put_streamed(&key, &info.mime_type, &mut download, |d| {
            if info.sha256.is_empty() || d.sha256_hex().eq_ignore_ascii_case(info.sha256.trim()) {
                Ok(())
            } else {
                Err(GraphError::BadResponse(
                    "downloaded media does not match its sha256".into(),
                ))
            }
        })
        .await?;
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

    /// Records where a message's media copy stands. `copied` is final; `failed` and a retry's
    /// last error never overwrite `copied`. `Ok(false)` when the message is gone or already
    /// copied.
    pub async fn set_media_state(
        &self,
        msg_pk: &str,
        msg_sk: &str,
        state: MediaState,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(msg_pk.into()))
            .key("sk", AttributeValue::S(msg_sk.into()))
            .condition_expression("attribute_exists(pk) AND media_state <> :copied")
            .expression_attribute_values(":copied", AttributeValue::S("copied".into()))
            .expression_attribute_values(":state", AttributeValue::S(state.as_str().into()));
        update = match error {
            Some(e) => update
                .update_expression("SET media_state = :state, media_error = :err")
                .expression_attribute_values(
                    ":err",
                    AttributeValue::S(crate::store::dynamo::truncate(e, 500)),
                ),
            None => update.update_expression("SET media_state = :state REMOVE media_error"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if crate::store::dynamo::is_conditional_failure_update(&e) => Ok(false),
            Err(e) => Err(StoreError::sdk(e)),
        }
    }
}
