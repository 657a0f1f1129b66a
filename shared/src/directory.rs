//! The CRM directory (leads, contacts, staff with their phones), kept current from CRM events
//! and from the admin bulk import. Last-writer-wins on `updated_at`, once per `event_id`.
use crate::crm_events::{CrmRecord, DirectoryChange, DirectoryKind, DirectoryOp};
use crate::phone::PhoneNormalizer;
use crate::store::dynamo::DirectoryOutcome;
use crate::store::model::DirectoryRecord;
use crate::store::{Store, StoreError, keys};

/// The stored form of a change: the phone normalised to its canonical E.164 matching key.
pub fn to_record(phones: &PhoneNormalizer, change: &DirectoryChange) -> DirectoryRecord {
    let CrmRecord {
        id,
        name,
        phone,
        correlation_id,
    } = &change.record;
    let kind = change.kind.as_str();
    let phone_key = phone
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .and_then(|p| phones.to_e164(p).ok())
        .map(|e| PhoneNormalizer::canonical_key(&e));
    DirectoryRecord {
        pk: keys::directory_pk(kind, id),
        sk: keys::RECORD_SK.into(),
        kind: kind.into(),
        id: id.clone(),
        name: name.clone(),
        phone_raw: phone.clone(),
        phone_key,
        converted: change.op == DirectoryOp::Convert,
        deleted: change.op == DirectoryOp::Delete,
        updated_at: change.updated_at_ms,
        correlation_id: correlation_id.clone(),
        event_id: Some(change.event_id.clone()),
    }
}

/// Applies one change. A lead the CRM created for one of our `lead.created` events (it echoes
/// our correlation id) is linked to the auto-lead claim of its phone.
pub async fn apply(
    store: &Store,
    phones: &PhoneNormalizer,
    change: &DirectoryChange,
    now_ms: i64,
) -> Result<DirectoryOutcome, StoreError> {
    let record = to_record(phones, change);
    if record
        .phone_raw
        .as_deref()
        .is_some_and(|p| !p.trim().is_empty())
        && record.phone_key.is_none()
    {
        tracing::warn!(kind = %record.kind, id = %record.id, "directory record phone does not parse; it will not match senders");
    }
    let outcome = store
        .apply_directory(&record, &change.event_id, now_ms)
        .await?;
    // Also on a duplicate: a failure after the directory transaction (before the link) must not
    // leave the conversation `pending:` forever; the redelivered event links it (idempotent).
    if outcome != DirectoryOutcome::Stale
        && change.kind == DirectoryKind::Lead
        && let (Some(corr), Some(key)) = (&record.correlation_id, &record.phone_key)
    {
        store.link_lead_claim(key, corr, &record.id).await?;
    }
    Ok(outcome)
}
