//! The active bots' compiled triggers, kept between invocations and recompiled only when the
//! bot set's version moved (the bots function to answer, the inbound function's gate to tell
//! whether any trigger could fire).
use std::sync::Arc;

use tokio::sync::RwLock;

use super::matcher::CompiledBots;
use crate::store::{Store, StoreError};

#[derive(Default)]
pub struct CompiledSet {
    compiled: RwLock<Option<(i64, Arc<CompiledBots>)>>,
}

impl CompiledSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The compiled set, current for `known` (a version read already: a set compiled from at
    /// least that version is current, with no read) or else for the version read now.
    pub async fn get(
        &self,
        store: &Store,
        known: Option<i64>,
    ) -> Result<Arc<CompiledBots>, StoreError> {
        if let Some(known) = known
            && let Some((v, c)) = self.compiled.read().await.as_ref()
            && *v >= known
        {
            return Ok(c.clone());
        }
        // With a known version newer than the compiled one, the set is read at once.
        if known.is_none() {
            let version = store.bot_set_version().await?;
            if let Some((v, c)) = self.compiled.read().await.as_ref()
                && *v == version
            {
                return Ok(c.clone());
            }
        }
        let set = store.bot_set().await?;
        if !set.tracked {
            // Bots saved before the set's head kept the active ones: count them once, so the
            // inbound function can tell when none is (`super::gate`).
            let mut active: Vec<String> = set
                .bots
                .iter()
                .filter(|b| b.is_bot_active)
                .map(|b| b.id.clone())
                .collect();
            active.sort_unstable();
            match store.track_active_bots(set.version, &active).await {
                Ok(true) => tracing::info!(active = active.len(), "active bots counted"),
                Ok(false) => tracing::info!("bot set changed while counting: counted next time"),
                Err(e) => tracing::warn!(error = %e, "active bots not counted"),
            }
        }
        let compiled = Arc::new(CompiledBots::compile(&set.bots, &set.synonyms));
        for (bot_id, e) in compiled.skipped() {
            tracing::warn!(bot_id = %bot_id, error = %e, "bot skipped: it no longer validates");
        }
        tracing::info!(
            version = set.version,
            active = compiled.bots().len(),
            "bot set compiled"
        );
        let mut slot = self.compiled.write().await;
        // A concurrent caller may have compiled a newer set meanwhile: keep the newest.
        if slot.as_ref().is_none_or(|(v, _)| *v < set.version) {
            *slot = Some((set.version, compiled.clone()));
        }
        Ok(compiled)
    }
}
