//! Raw archive in S3: whatever could not be understood or processed is kept verbatim.
use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
#[error("archive write failed: {0}")]
pub struct ArchiveError(pub String);

/// Port: the raw archive.
#[async_trait::async_trait]
pub trait RawArchive: Send + Sync {
    /// Stores `body` under `prefix/` and returns its key. Same content → same key (idempotent).
    async fn archive(
        &self,
        prefix: &str,
        reason: &str,
        body: &[u8],
    ) -> Result<String, ArchiveError>;
}

pub struct S3Archive {
    client: Client,
    bucket: String,
}

impl S3Archive {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }
}

/// `prefix/yyyy/mm/dd/<sha256>.json`
pub fn archive_key(prefix: &str, now: chrono::DateTime<chrono::Utc>, body: &[u8]) -> String {
    format!(
        "{prefix}/{}/{}.json",
        now.format("%Y/%m/%d"),
        hex::encode(Sha256::digest(body))
    )
}

#[async_trait::async_trait]
impl RawArchive for S3Archive {
    async fn archive(
        &self,
        prefix: &str,
        reason: &str,
        body: &[u8],
    ) -> Result<String, ArchiveError> {
        let key = archive_key(prefix, chrono::Utc::now(), body);
        // S3 metadata must be ASCII.
        let reason: String = reason
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .take(512)
            .collect();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .metadata("reason", reason)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .map_err(|e| ArchiveError(DisplayErrorContext(&e).to_string()))?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_are_dated_and_content_addressed() {
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
            .unwrap();
        let k = archive_key("raw", t, b"{}");
        assert!(k.starts_with("raw/2026/11/25/"), "{k}");
        assert_eq!(k, archive_key("raw", t, b"{}"));
        assert_ne!(k, archive_key("raw", t, b"[]"));
    }
}
