//! Plumbing shared by the admin catalogues (quick replies, numbers, WhatsApp contacts and
//! groups): server-made ids, one-partition paging, uniqueness claims and transactions whose
//! failed condition is reported by position.
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use serde::de::DeserializeOwned;

use super::dynamo::{Item, Store, StoreError, cancellation_codes, from_item, key, s, to_item};

/// Sort key of the uniqueness claims (`QRSHORTCUT#…`, `WAPHONE#…`).
pub const CLAIM_SK: &str = "CLAIM";

/// Outcome of a catalogue write that the caller turns into an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum CrudError {
    /// What was looked for, e.g. `quick reply` or `group 0191…`.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness claim or a concurrent change: `code` is machine-readable
    /// (`shortcut_taken`, `phone_taken`, `already_exists`, `concurrent_update`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A limit of the data model (e.g. too many groups for one contact), naming the field.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CrudError {
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        CrudError::Conflict {
            code,
            message: message.into(),
        }
    }
}

/// A new server-made id: 12 hex digits of milliseconds then 12 random hex digits, so items
/// of one partition list in creation order. Only `[0-9a-f]`, never a key separator.
pub fn new_id(now_ms: i64) -> String {
    let r = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{:012x}{}",
        now_ms.max(0) as u64 & 0xffff_ffff_ffff,
        &r[..12]
    )
}

/// Whether a caller-given id may be used in a key (`[A-Za-z0-9_-]{1,64}`): anything else is
/// simply not found, and can never reach into another key range.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Result of a transaction whose conditions may fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxOutcome {
    Done,
    /// The condition of the item at this position failed.
    ConditionFailed(usize),
    /// Another transaction touched the same items at the same time: retry.
    Conflict,
}

impl Store {
    /// Runs one `TransactWriteItems`; a cancelled transaction reports which item's condition
    /// failed. Any other failure is an error.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<TxOutcome, StoreError> {
        if items.is_empty() {
            return Ok(TxOutcome::Done);
        }
        let r = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match r {
            Ok(_) => Ok(TxOutcome::Done),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) => {
                    if let Some(i) = codes.iter().position(|c| c == "ConditionalCheckFailed") {
                        Ok(TxOutcome::ConditionFailed(i))
                    } else if codes.iter().any(|c| c == "TransactionConflict") {
                        Ok(TxOutcome::Conflict)
                    } else {
                        Err(StoreError::Dynamo(format!(
                            "transaction cancelled: {}",
                            codes.join(", ")
                        )))
                    }
                }
                None => Err(sdk_err(e)),
            },
        }
    }

    /// One page of a partition in sort-key order, strictly after `after` (a sort key from the
    /// previous page). Returns the items and the sort key to continue from.
    pub(crate) async fn partition_page<T: DeserializeOwned>(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        self.partition_page_towards(pk, after, true, limit).await
    }

    /// One page of a partition, newest sort key first, strictly before `before`.
    pub(crate) async fn partition_page_back<T: DeserializeOwned>(
        &self,
        pk: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        self.partition_page_towards(pk, before, false, limit).await
    }

    async fn partition_page_towards<T: DeserializeOwned>(
        &self,
        pk: &str,
        from: Option<&str>,
        forward: bool,
        limit: usize,
    ) -> Result<(Vec<T>, Option<String>), StoreError> {
        let limit = limit.clamp(1, 1000);
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .scan_index_forward(forward)
            .limit(limit as i32 + 1)
            .expression_attribute_values(":p", s(pk));
        q = match from {
            Some(a) => q
                .key_condition_expression(if forward {
                    "pk = :p AND sk > :a"
                } else {
                    "pk = :p AND sk < :a"
                })
                .expression_attribute_values(":a", s(a)),
            None => q.key_condition_expression("pk = :p"),
        };
        let out = q.send().await.map_err(sdk_err)?;
        let mut rows: Vec<Item> = out.items.unwrap_or_default();
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last()
                .and_then(|it| it.get("sk"))
                .and_then(|v| v.as_s().ok())
                .cloned()
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<T>, _>>()?;
        Ok((items, next))
    }

    /// Every item of a (small) partition, following DynamoDB's pages.
    pub(crate) async fn partition_all<T: DeserializeOwned>(
        &self,
        pk: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (mut page, next) = self.partition_page(pk, after.as_deref(), 1000).await?;
            out.append(&mut page);
            match next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Items by key, 100 per `BatchGetItem`, unprocessed keys retried with backoff (missing
    /// items are absent from the answer; its order is not the keys').
    pub(crate) async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            let mut pending: Vec<Item> = keys.by_ref().take(100).collect();
            let mut attempt = 0u32;
            while !pending.is_empty() {
                let mut ka = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true);
                if let Some(p) = projection {
                    ka = ka.projection_expression(p);
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(
                        &self.table,
                        ka.build().map_err(|e| StoreError::Dynamo(e.to_string()))?,
                    )
                    .send()
                    .await
                    .map_err(StoreError::sdk)?;
                found.extend(
                    out.responses
                        .unwrap_or_default()
                        .remove(&self.table)
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                attempt += 1;
                if !pending.is_empty() {
                    if attempt > 8 {
                        return Err(StoreError::Dynamo(
                            "BatchGetItem kept returning unprocessed keys".into(),
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(6)))
                        .await;
                }
            }
        }
        Ok(found)
    }

    /// Who holds a uniqueness claim.
    pub(crate) async fn claim_owner(&self, pk: String) -> Result<Option<String>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Claim {
            claimed_by: String,
        }
        Ok(self.get::<Claim>(pk, CLAIM_SK).await?.map(|c| c.claimed_by))
    }

    /// `Put` of a typed item with an optional condition.
    pub(crate) fn tx_put<T: serde::Serialize>(
        &self,
        item: &T,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut p = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(item)?));
        if let Some(c) = condition {
            p = p.condition_expression(c);
        }
        for (k, v) in values {
            p = p.expression_attribute_values(k, v);
        }
        Ok(TransactWriteItem::builder()
            .put(p.build().map_err(|e| StoreError::Dynamo(e.to_string()))?)
            .build())
    }

    /// `Put` of an item that must not exist yet (`attribute_not_exists(pk)`): a claim, a dedupe
    /// marker, a message.
    pub(crate) fn tx_put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(|e| StoreError::Dynamo(e.to_string()))?,
            )
            .build())
    }

    /// `Delete` of a key with an optional condition.
    pub(crate) fn tx_delete(
        &self,
        pk: String,
        sk: &str,
        condition: Option<&str>,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)));
        if let Some(c) = condition {
            d = d.condition_expression(c);
        }
        for (k, v) in values {
            d = d.expression_attribute_values(k, v);
        }
        Ok(TransactWriteItem::builder()
            .delete(d.build().map_err(|e| StoreError::Dynamo(e.to_string()))?)
            .build())
    }

    /// The writes that move a uniqueness claim from `old` to `new` (partition keys): the new
    /// claim must not exist, the old one is released only if it is still `owner`'s.
    pub(crate) fn tx_claim_moves(
        &self,
        old: Option<String>,
        new: Option<String>,
        owner: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut out = Vec::new();
        if old == new {
            return Ok(out);
        }
        if let Some(pk) = new {
            let mut item = key(pk, CLAIM_SK);
            item.insert("claimed_by".into(), s(owner));
            out.push(self.tx_put_new(item)?);
        }
        if let Some(pk) = old {
            out.push(self.tx_delete(
                pk,
                CLAIM_SK,
                Some("attribute_not_exists(pk) OR claimed_by = :o"),
                vec![(":o", s(owner))],
            )?);
        }
        Ok(out)
    }
}

fn sdk_err<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    StoreError::sdk(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_are_key_safe() {
        let a = new_id(1_700_000_000_000);
        let b = new_id(1_700_000_000_001);
        assert!(a < b);
        assert_eq!(a.len(), 24);
        assert!(is_valid_id(&a));
        assert!(!is_valid_id("a#b"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id(&"x".repeat(65)));
    }
}
