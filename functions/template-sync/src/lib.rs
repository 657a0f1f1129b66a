//! Template-sync function: run by EventBridge Scheduler (hourly), it loads every message
//! template of the WABA from Meta (all pages) and stores it; templates Meta no longer lists
//! are flagged gone. The work is [`shared::templates::sync`], which the staff API's
//! `POST /api/v1/templates/load` runs too.
//!
//! A failure (Meta unreachable or refusing, secret unreadable, storage) fails the invocation,
//! so it shows in the function's `Errors` metric (alarmed) and the scheduler's retries; nothing
//! is flagged gone unless the whole list was read.
use std::sync::Arc;

use shared::meta::graph::GraphClient;
use shared::secrets::{CachedSecret, MetaSecrets};
use shared::store::Store;
use shared::templates::{SyncError, SyncReport};

pub struct TemplateSyncApp {
    pub store: Store,
    pub graph: Arc<GraphClient>,
    pub meta_secrets: Arc<CachedSecret<MetaSecrets>>,
    pub now_ms: fn() -> i64,
}

impl TemplateSyncApp {
    /// One scheduled run. The scheduler's input is not used (any JSON is accepted).
    pub async fn handle(&self, _input: serde_json::Value) -> Result<SyncReport, SyncError> {
        match shared::templates::sync(&self.store, &self.graph, &self.meta_secrets, self.now_ms)
            .await
        {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::error!(error = %e, "template sync failed");
                Err(e)
            }
        }
    }
}
