//! Secrets from Secrets Manager, cached briefly, never printed.
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::RwLock;

use crate::auth::PublicKeyConfig;

/// A string that never shows itself in `Debug`/`Display` output or logs.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A mask that shows a value is set without revealing any of it (not even its last
    /// characters, which would narrow a guess and link a value across screens).
    pub fn masked(&self) -> String {
        if self.0.is_empty() {
            String::new()
        } else {
            "•".repeat(8)
        }
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}
impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The inbox's Meta credentials (`MetaSecret` in template.yaml).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetaSecrets {
    #[serde(default)]
    pub access_token: Redacted,
    #[serde(default)]
    pub app_secret: Redacted,
    #[serde(default)]
    pub verify_token: Redacted,
    #[serde(default)]
    pub waba_id: String,
    #[serde(default)]
    pub app_id: String,
    #[serde(default)]
    pub business_id: String,
}

/// Staff API keys (`ApiSecret`): the cursor signing key and the CRM's JWT public keys.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiSecrets {
    pub cursor_key: Redacted,
    #[serde(default, deserialize_with = "keys_inline_or_string")]
    pub jwt_keys: Vec<PublicKeyConfig>,
}

/// CloudFormation can only template strings, so `jwt_keys` may arrive as a JSON string.
fn keys_inline_or_string<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<PublicKeyConfig>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<PublicKeyConfig>),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::List(v) => Ok(v),
        Either::Text(s) if s.trim().is_empty() => Ok(vec![]),
        Either::Text(s) => serde_json::from_str(&s).map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {id} could not be read: {reason}")]
    Unavailable { id: String, reason: String },
    #[error("secret {id} is not the expected JSON: {reason}")]
    Invalid { id: String, reason: String },
}

/// Port: where secret strings come from.
#[async_trait::async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret_string(&self, id: &str) -> Result<String, SecretError>;
}

#[async_trait::async_trait]
impl SecretSource for aws_sdk_secretsmanager::Client {
    async fn secret_string(&self, id: &str) -> Result<String, SecretError> {
        let out = self
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretError::Unavailable {
                id: id.to_string(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?;
        out.secret_string.ok_or_else(|| SecretError::Invalid {
            id: id.to_string(),
            reason: "no SecretString".into(),
        })
    }
}

/// A typed secret, fetched on first use and refreshed after `ttl`.
pub struct CachedSecret<T> {
    source: Arc<dyn SecretSource>,
    id: String,
    ttl: Duration,
    cached: RwLock<Option<(Instant, Arc<T>)>>,
    /// When a forced re-read last ran (single-flight: the lock is held while it runs).
    forced: tokio::sync::Mutex<Option<Instant>>,
}

impl<T: DeserializeOwned + Send + Sync> CachedSecret<T> {
    pub fn new(source: Arc<dyn SecretSource>, id: impl Into<String>, ttl: Duration) -> Self {
        Self {
            source,
            id: id.into(),
            ttl,
            cached: RwLock::new(None),
            forced: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Arc<T>, SecretError> {
        if let Some((at, v)) = self.cached.read().await.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(v.clone());
        }
        self.fetch().await
    }

    /// Re-reads the secret now (a rotation may not be cached yet), but at most once per
    /// `min_interval` and by one caller at a time: concurrent callers wait for that one read
    /// and get its value. Within the interval the cached value is answered. Requests that anyone
    /// can send (a webhook with a bad signature) thus never drive Secrets Manager calls.
    pub async fn refresh_at_most_every(
        &self,
        min_interval: Duration,
    ) -> Result<Arc<T>, SecretError> {
        let mut last = self.forced.lock().await;
        if last.is_some_and(|at| at.elapsed() < min_interval) {
            drop(last);
            return self.get().await;
        }
        *last = Some(Instant::now());
        self.fetch().await
    }

    async fn fetch(&self) -> Result<Arc<T>, SecretError> {
        let text = self.source.secret_string(&self.id).await?;
        let value: T = serde_json::from_str(&text).map_err(|e| SecretError::Invalid {
            id: self.id.clone(),
            // serde's message can quote input; keep only its position.
            reason: format!("line {} column {}", e.line(), e.column()),
        })?;
        let value = Arc::new(value);
        *self.cached.write().await = Some((Instant::now(), value.clone()));
        Ok(value)
    }

    /// Forget the cached value (after a rotation was detected, e.g. a signature mismatch).
    pub async fn invalidate(&self) {
        *self.cached.write().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Fake(AtomicUsize, String);
    #[async_trait::async_trait]
    impl SecretSource for Fake {
        async fn secret_string(&self, _id: &str) -> Result<String, SecretError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(self.1.clone())
        }
    }

    #[test]
    fn redacted_never_prints() {
        let s = MetaSecrets {
            access_token: Redacted::new("EAAG-super-secret"),
            ..Default::default()
        };
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("super-secret"), "{dbg}");
        assert_eq!(Redacted::new("EAAG-super-secret").masked(), "••••••••");
        assert_eq!(Redacted::new("").masked(), "");
        assert_eq!(Redacted::new("short").masked(), "••••••••");
    }

    #[tokio::test]
    async fn caches_and_invalidates() {
        let fake = Arc::new(Fake(
            AtomicUsize::new(0),
            r#"{"cursor_key":"k","jwt_keys":"[]"}"#.into(),
        ));
        let c: CachedSecret<ApiSecrets> =
            CachedSecret::new(fake.clone(), "id", Duration::from_secs(60));
        assert_eq!(c.get().await.unwrap().cursor_key.expose(), "k");
        c.get().await.unwrap();
        assert_eq!(fake.0.load(Ordering::SeqCst), 1);
        c.invalidate().await;
        c.get().await.unwrap();
        assert_eq!(fake.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn forced_refreshes_are_single_flight_and_rate_limited() {
        let fake = Arc::new(Fake(
            AtomicUsize::new(0),
            r#"{"cursor_key":"k","jwt_keys":"[]"}"#.into(),
        ));
        let c: Arc<CachedSecret<ApiSecrets>> = Arc::new(CachedSecret::new(
            fake.clone(),
            "id",
            Duration::from_secs(300),
        ));
        c.get().await.unwrap();
        assert_eq!(fake.0.load(Ordering::SeqCst), 1);
        // A burst of forced refreshes (e.g. 50 webhooks with a bad signature): one read.
        let burst: Vec<_> = (0..50)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.refresh_at_most_every(Duration::from_secs(60)).await })
            })
            .collect();
        for b in burst {
            assert_eq!(b.await.unwrap().unwrap().cursor_key.expose(), "k");
        }
        assert_eq!(fake.0.load(Ordering::SeqCst), 2);
        // Once the interval has passed, one more.
        c.refresh_at_most_every(Duration::ZERO).await.unwrap();
        assert_eq!(fake.0.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn invalid_json_does_not_echo_the_secret() {
        let fake = Arc::new(Fake(AtomicUsize::new(0), "not-json-TOPSECRET".into()));
        let c: CachedSecret<MetaSecrets> = CachedSecret::new(fake, "id", Duration::from_secs(60));
        let err = c.get().await.unwrap_err().to_string();
        assert!(!err.contains("TOPSECRET"), "{err}");
    }
}
