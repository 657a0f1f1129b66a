//! Template-sync function: run by EventBridge Scheduler (hourly), it loads every message
//! template of the WABA from Meta (all pages) and stores it; templates Meta no longer lists
//! are flagged gone. The work is [`shared::templates::sync`], which the staff API's
//! `POST /api/v1/templates/load` runs too.
//!
//! A failure (Meta unreachable or refusing, secret unreadable, storage) fails the invocation,
//! so it shows in the function's `Errors` metric (alarmed) and the scheduler's retries; nothing
//! is flagged gone unless the whole list was read.
use std::sync::Arc;

use shared::credentials::NotifySecrets;
use shared::meta::graph::GraphClient;
use shared::secrets::{CachedSecret, MetaSecrets};
use shared::store::Store;
use shared::templates::{SyncError, SyncReport};

pub struct TemplateSyncApp {
    pub store: Store,
    pub graph: Arc<GraphClient>,
    pub meta_secrets: Arc<CachedSecret<MetaSecrets>>,
    /// The notification credentials: their WABA's templates are loaded too when it is not the
    /// inbox's.
    pub notify_secrets: Option<Arc<CachedSecret<NotifySecrets>>>,
    pub now_ms: fn() -> i64,
}

impl TemplateSyncApp {
    /// One scheduled run. The scheduler's input is not used (any JSON is accepted).
    pub async fn handle(&self, _input: serde_json::Value) -> Result<SyncReport, SyncError> {
        let report =
            shared::templates::sync(&self.store, &self.graph, &self.meta_secrets, self.now_ms)
                .await
                .inspect_err(|e| tracing::error!(error = %e, "template sync failed"))?;
        if let Some(n) = &self.notify_secrets {
            self.sync_notifications(n).await.inspect_err(
                |e| tracing::error!(error = %e, "notification WABA template sync failed"),
            )?;
        }
        Ok(report)
    }

    async fn sync_notifications(
        &self,
        notify: &CachedSecret<NotifySecrets>,
    ) -> Result<(), SyncError> {
        let secret = |e: shared::secrets::SecretError| SyncError::Secrets(e.to_string());
        let inbox = self.meta_secrets.get().await.map_err(secret)?;
        let n = notify.get().await.map_err(secret)?;
        if let Some(r) =
            shared::templates::sync_notifications(&self.store, &self.graph, &inbox, &n, self.now_ms)
                .await?
        {
            tracing::info!(waba_id = %r.waba_id, loaded = r.loaded, gone = r.gone, "notification WABA templates loaded");
        }
        Ok(())
    }
}
