//! Directory records (leads, contacts, staff mirrored from the CRM) and their phone index.
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::dynamo::{Store, StoreError, cancellation_codes, from_item, key, n, s, to_item};
use super::keys;
use super::model::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryOutcome {
    Applied,
    /// An event with a newer `updated_at` was applied before.
    Stale,
    /// This `event_id` was applied before.
    Duplicate,
}

impl Store {
    pub async fn directory_by_phone(
        &self,
        canonical_e164: &str,
    ) -> Result<Vec<PhoneIndex>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", s(keys::phone_pk(canonical_e164)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }

    pub async fn directory_record(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<DirectoryRecord>, StoreError> {
        self.get(keys::directory_pk(kind, id), keys::RECORD_SK)
            .await
    }

    /// Applies one directory change: last-writer-wins on `updated_at`, once per `event_id`.
    /// Record, phone index and dedupe marker change in one transaction.
    pub async fn apply_directory(
        &self,
        record: &DirectoryRecord,
        event_id: &str,
        now_ms: i64,
    ) -> Result<DirectoryOutcome, StoreError> {
        for _ in 0..5 {
            match self.try_apply_directory(record, event_id, now_ms).await? {
                Some(outcome) => return Ok(outcome),
                // Someone wrote the record between our read and our write: re-evaluate.
                None => continue,
            }
        }
        Err(StoreError::Dynamo(
            "directory record kept changing under concurrent writes".into(),
        ))
    }

    async fn try_apply_directory(
        &self,
        record: &DirectoryRecord,
        event_id: &str,
        now_ms: i64,
    ) -> Result<Option<DirectoryOutcome>, StoreError> {
        let previous = self.directory_record(&record.kind, &record.id).await?;
        if let Some(p) = &previous
            && !supersedes(record, event_id, p)
        {
            return Ok(Some(DirectoryOutcome::Stale));
        }
        // Conversion is one-way: a later update of a converted lead keeps it converted.
        let merged = DirectoryRecord {
            converted: record.converted || previous.as_ref().is_some_and(|p| p.converted),
            event_id: Some(event_id.to_string()),
            ..record.clone()
        };
        let record = &merged;
        let mut items = Vec::new();
        // The record itself, guarded by the updated_at we read (optimistic concurrency), with
        // its place in the directory listing (campaigns to "all").
        let mut put = Put::builder().table_name(&self.table).set_item(Some(
            super::directory_list::with_listing(to_item(record)?, record),
        ));
        put = match &previous {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(p) => put
                .condition_expression("updated_at = :prev")
                .expression_attribute_values(":prev", n(p.updated_at)),
        };
        items.push(
            TransactWriteItem::builder()
                .put(put.build().expect("put"))
                .build(),
        );
        // Dedupe marker, kept past Meta/EventBridge retry horizons.
        let mut marker = key(keys::event_pk(event_id), keys::EVENT_SK);
        marker.insert("ttl".into(), n(now_ms / 1000 + keys::MARKER_TTL_SECS));
        items.push(self.tx_put_new(marker)?);
        let index_sk = format!("{}#{}", record.kind, record.id);
        let old_key = previous.as_ref().and_then(|p| p.phone_key.clone());
        let new_key = if record.deleted {
            None
        } else {
            record.phone_key.clone()
        };
        if let Some(old) = &old_key
            && Some(old) != new_key.as_ref()
        {
            items.push(
                TransactWriteItem::builder()
                    .delete(
                        aws_sdk_dynamodb::types::Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(keys::phone_pk(old), index_sk.clone())))
                            .build()
                            .expect("delete"),
                    )
                    .build(),
            );
        }
        if let Some(k) = &new_key {
            let idx = PhoneIndex {
                pk: keys::phone_pk(k),
                sk: index_sk.clone(),
                kind: record.kind.clone(),
                id: record.id.clone(),
                name: record.name.clone(),
                converted: record.converted,
            };
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(to_item(&idx)?))
                            .build()
                            .expect("put"),
                    )
                    .build(),
            );
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Some(DirectoryOutcome::Applied)),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if codes.get(1).is_some_and(|c| c == "ConditionalCheckFailed") => {
                    Ok(Some(DirectoryOutcome::Duplicate))
                }
                Some(codes) if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") => {
                    Ok(None)
                }
                _ => Err(StoreError::sdk(e)),
            },
        }
    }
}

/// Last-writer-wins on `updated_at`; a tie (the CRM's timestamps are often whole seconds) goes
/// to a delete, then to the greater `event_id`, so every order of delivery ends the same. The
/// event that wrote `previous` itself goes on (its dedupe marker reports the duplicate).
fn supersedes(record: &DirectoryRecord, event_id: &str, previous: &DirectoryRecord) -> bool {
    match record.updated_at.cmp(&previous.updated_at) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => {
            let prev_event = previous.event_id.as_deref().unwrap_or("");
            prev_event == event_id || (record.deleted, event_id) > (previous.deleted, prev_event)
        }
    }
}
