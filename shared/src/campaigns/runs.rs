//! The end of a run: when nothing of it is pending or sending any more, the run is marked done
//! once (a conditional update, so the scheduler and several senders may all ask), the campaign
//! goes back to `scheduled` (another run is planned) or to `finished`, and `campaign.finished`
//! carries the run's totals to the CRM.
use serde_json::json;

use super::model::CampaignState;
use crate::crm_events::{EventBus, OutboundEvent};
use crate::store::campaigns::RunTotals;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("CRM bus: {0}")]
    Bus(String),
}

/// Finishes run `run` if nothing of it is left; `Some(totals)` when this call finished it.
pub async fn finish_if_done(
    store: &Store,
    bus: &dyn EventBus,
    campaign_id: &str,
    run: u32,
    now_ms: i64,
) -> Result<Option<RunTotals>, RunError> {
    let totals = store.run_totals(campaign_id, run).await?;
    if !totals.is_done() {
        return Ok(None);
    }
    // Published before the run is marked done: a failure leaves it to the next caller, and
    // the event id makes a second publication harmless.
    let campaign = store.campaign(campaign_id).await?;
    let Some(run_item) = store.run(campaign_id, run).await? else {
        return Ok(None);
    };
    if run_item.state != crate::store::campaigns::RunState::Sending {
        return Ok(None);
    }
    if let Some(c) = &campaign {
        bus.publish(&[OutboundEvent {
            detail_type: "campaign.finished".into(),
            detail: json!({
                "event_id": format!("campaign.finished:{campaign_id}:{run}"),
                "campaign_id": campaign_id,
                "name": c.spec.name,
                "run": run,
                "rel_type": c.spec.rel_type,
                "template": {"name": c.spec.template.name, "language": c.spec.template.language},
                "phone_number_id": c.phone_number_id,
                "totals": totals,
                "started_at": run_item.started_at,
                "at": now_ms,
            }),
        }])
        .await
        .map_err(|e| RunError::Bus(e.to_string()))?;
    }
    if !store.finish_run(campaign_id, run, now_ms).await? {
        return Ok(None);
    }
    if let Some(c) = campaign {
        let to = if c.next_run.is_some() {
            CampaignState::Scheduled
        } else {
            CampaignState::Finished
        };
        store
            .move_campaign(campaign_id, &[CampaignState::Running], to, None, now_ms)
            .await?;
    }
    tracing::info!(campaign_id, run, ?totals, "campaign run finished");
    Ok(Some(totals))
}
