//! Privacy: forgetting a customer. Everything this system stored of them is erased from the
//! table and the media bucket: the messages, status records, media (items and S3 objects) and
//! send intents of every conversation, the conversations themselves (the inbox no longer lists
//! them), the aliases (wa_id, BSUID, E.164, previous numbers), the auto-lead claim, and last
//! the profile, so that a run interrupted half-way is finished by running it again.
//!
//! Not erased here: the CRM's own records (the CRM owns them; it learns of the erasure from
//! `customer.forgotten`), raw webhook archives and parked records (`raw/`, `parked/`, expired by
//! the bucket's lifecycle rules after 90 days), the activity log of Graph API calls (recipient
//! numbers, 30-day TTL), and browser uploads not yet handed to Meta (`uploads/`, 2 days).
use std::collections::BTreeSet;

use serde::Serialize;

use crate::media::{MediaBucket, media_pk};
use crate::phone::PhoneNormalizer;
use crate::store::keys::{self, AliasKind};
use crate::store::model::Direction;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("media storage failed: {0}")]
    Media(String),
}

/// What was erased.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ForgetReport {
    pub customer_id: String,
    /// Ids of the conversations erased.
    pub conversations: Vec<String>,
    /// Messages erased.
    pub messages: usize,
    /// Media of those messages erased (records and stored files).
    pub media: usize,
    /// Aliases erased (wa_id, BSUID, E.164, previous numbers).
    pub aliases: usize,
    /// The customer's profile was found and erased.
    pub profile: bool,
}

/// Erases the customer `customer_id`. `phone_number_ids` are the business numbers to look for
/// conversations under, beside those recorded on the profile (the registered numbers).
pub async fn forget_customer(
    store: &Store,
    bucket: Option<&MediaBucket>,
    customer_id: &str,
    phone_number_ids: &[String],
) -> Result<ForgetReport, PrivacyError> {
    let mut report = ForgetReport {
        customer_id: customer_id.to_string(),
        ..Default::default()
    };
    let profile = store.customer(customer_id).await?;
    let mut numbers: BTreeSet<String> = phone_number_ids.iter().cloned().collect();
    if let Some(p) = &profile {
        numbers.extend(p.phone_number_ids.iter().cloned());
    }
    for pnid in &numbers {
        let (exists, messages) = store.conversation_items(pnid, customer_id).await?;
        if !exists && messages.is_empty() {
            continue;
        }
        let mut doomed: Vec<(String, String)> = Vec::new();
        for m in &messages {
            doomed.push((keys::wamid_pk(&m.wamid), keys::WAMID_SK.into()));
            if let Some(media_id) = &m.media_id {
                if let Some(b) = bucket {
                    b.delete(&crate::media::inbound_key(pnid, customer_id, media_id))
                        .await
                        .map_err(|e| PrivacyError::Media(e.to_string()))?;
                }
                doomed.push((media_pk(media_id), "MEDIA".into()));
                report.media += 1;
            }
            // Our sends name their intent in `biz_opaque_callback_data`.
            if m.direction == Direction::Outbound
                && let Some(id) = serde_json::from_str::<serde_json::Value>(&m.raw)
                    .ok()
                    .and_then(|v| v["biz_opaque_callback_data"].as_str().map(str::to_string))
            {
                doomed.push((keys::send_intent_pk(&id), keys::OUT_SK.into()));
            }
            doomed.push((m.pk.clone(), m.sk.clone()));
        }
        report.messages += messages.len();
        store.delete_keys(&doomed).await?;
        // The conversation last (while it exists, a re-run finds what is left), with its share
        // of the unread counters.
        store.delete_conversation(pnid, customer_id).await?;
        report
            .conversations
            .push(keys::conversation_id(pnid, customer_id));
    }
    if let Some(p) = &profile {
        let mut aliases: BTreeSet<String> = p.aliases.iter().cloned().collect();
        let mut wa_ids: Vec<&str> = p.previous_wa_ids.iter().map(String::as_str).collect();
        wa_ids.extend(p.wa_id.as_deref());
        for w in wa_ids {
            aliases.insert(keys::alias_pk(AliasKind::WaId, w));
            if let Ok(e) = PhoneNormalizer::from_wa_id(w) {
                aliases.insert(keys::alias_pk(AliasKind::E164, &e));
            }
        }
        if let Some(b) = &p.bsuid {
            aliases.insert(keys::alias_pk(AliasKind::Bsuid, b));
        }
        if let Some(e) = &p.e164 {
            aliases.insert(keys::alias_pk(AliasKind::E164, e));
        }
        for a in &aliases {
            if store.delete_alias_if_ours(a, customer_id).await? {
                report.aliases += 1;
            }
        }
        let mut doomed: Vec<(String, String)> = Vec::new();
        if let Some(e) = &p.e164 {
            doomed.push((
                keys::lead_claim_pk(&PhoneNormalizer::canonical_key(e)),
                keys::CLAIM_SK.into(),
            ));
        }
        if let Some(b) = &p.bsuid {
            doomed.push((
                keys::lead_claim_pk(&format!("bsuid:{b}")),
                keys::CLAIM_SK.into(),
            ));
        }
        store.delete_keys(&doomed).await?;
        // The profile last: it is what a re-run starts from.
        store
            .delete_keys(&[(keys::customer_pk(customer_id), keys::PROFILE_SK.into())])
            .await?;
        report.profile = true;
    }
    Ok(report)
}
