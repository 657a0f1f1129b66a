//! Delivery of campaign sends, from Meta's statuses (their `biz_opaque_callback_data` names the
//! recipient): the recipient's delivery only moves forward (sent → delivered → read; `failed`
//! keeps its error), and the run's counters show each recipient at its highest stage, each
//! transition counted once (the ranked update returns the rank it replaced). A send whose
//! answer was lost (`unknown`), or whose sender died before writing it (`sending`), is settled
//! by its first status; a failure reported after Meta accepted a message moves the recipient
//! from 2 to 0 with Meta's error.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;

use super::outcome::RecipientStatus;
use crate::store::campaigns::{RecipientKey, parse_callback, recipient_shard};
use crate::store::{Store, StoreError};

/// One status of a campaign message.
#[derive(Debug, Clone, Copy)]
pub struct CampaignStatus<'a> {
    pub callback: &'a str,
    pub wamid: &'a str,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: &'a str,
    /// sent 1, delivered 2, read 3, failed 4.
    pub rank: u8,
    pub at_ms: i64,
    /// Meta's first error of a failed status (code, text).
    pub error: Option<(i64, &'a str)>,
}

fn stage(rank: u8) -> Option<&'static str> {
    match rank {
        1 => Some("sent"),
        2 => Some("delivered"),
        3 => Some("read"),
        _ => None,
    }
}

/// Applies a status to its recipient; `false` when the callback is not a campaign's, the
/// recipient is unknown, or the status is not newer than what it has.
pub async fn apply(store: &Store, s: &CampaignStatus<'_>, now_ms: i64) -> Result<bool, StoreError> {
    let Some((campaign_id, run, phone)) = parse_callback(s.callback) else {
        return Ok(false);
    };
    if !(1..=4).contains(&s.rank) {
        return Ok(false);
    }
    let k = RecipientKey {
        campaign_id,
        run,
        phone,
    };
    let Some((old_rank, old_status)) = store
        .raise_delivery(k, s.status, s.rank, s.at_ms, s.error)
        .await?
    else {
        return Ok(false);
    };
    let shard = recipient_shard(phone);
    let mut deltas: Vec<(&str, i64)> = Vec::new();
    if let Some(old) = stage(old_rank) {
        deltas.push((old, -1));
    }
    if let Some(new) = stage(s.rank) {
        deltas.push((new, 1));
    }
    store.count(campaign_id, run, shard, &deltas).await?;
    // The recipient's own status.
    // A status proves Meta accepted the send: one whose answer was lost (`unknown`), or whose
    // sender died before writing it (`sending`), is settled now.
    let moved = if s.rank <= 3
        && matches!(
            old_status,
            RecipientStatus::Unknown | RecipientStatus::Sending
        ) {
        store
            .move_recipient(
                k,
                &[RecipientStatus::Unknown, RecipientStatus::Sending],
                RecipientStatus::Success,
                &[("wamid", AttributeValue::S(s.wamid.to_string()))],
                now_ms,
            )
            .await?
            .map(|b| (b.status, RecipientStatus::Success))
    } else if s.rank == 4
        && matches!(
            old_status,
            RecipientStatus::Success | RecipientStatus::Unknown | RecipientStatus::Sending
        )
    {
        store
            .move_recipient(
                k,
                &[
                    RecipientStatus::Success,
                    RecipientStatus::Unknown,
                    RecipientStatus::Sending,
                ],
                RecipientStatus::Failed,
                &[("wamid", AttributeValue::S(s.wamid.to_string()))],
                now_ms,
            )
            .await?
            .map(|b| (b.status, RecipientStatus::Failed))
    } else {
        None
    };
    if let Some((from, to)) = moved {
        store
            .count(
                campaign_id,
                run,
                shard,
                &[(from.as_str(), -1), (to.as_str(), 1)],
            )
            .await?;
    }
    tracing::info!(campaign_id, run, status = s.status, "campaign delivery");
    Ok(true)
}

/// What a campaign's messages are labelled with in the customers' conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub campaign_id: String,
    pub name: String,
    pub template: String,
    pub language: String,
    pub phone_number_id: String,
}

/// [`Label`]s read once per process: a started campaign's name, template and sender never
/// change (editing is refused once a run started), and a campaign item carrying thousands of
/// chosen ids would otherwise be read in full for every message's first status.
#[derive(Default)]
pub struct Labels {
    known: Mutex<HashMap<String, Arc<Label>>>,
}

/// Campaigns a process keeps labels of; past it the cache starts afresh.
const LABELS_KEPT: usize = 256;

impl Labels {
    pub async fn get(
        &self,
        store: &Store,
        campaign_id: &str,
    ) -> Result<Option<Arc<Label>>, StoreError> {
        if let Some(l) = self.known.lock().expect("labels lock").get(campaign_id) {
            return Ok(Some(l.clone()));
        }
        let Some(c) = store.campaign(campaign_id).await? else {
            return Ok(None);
        };
        let label = Arc::new(Label {
            campaign_id: c.id,
            name: c.spec.name,
            template: c.spec.template.name,
            language: c.spec.template.language,
            phone_number_id: c.phone_number_id,
        });
        let mut known = self.known.lock().expect("labels lock");
        if known.len() >= LABELS_KEPT {
            known.clear();
        }
        known.insert(campaign_id.to_string(), label.clone());
        Ok(Some(label))
    }
}
