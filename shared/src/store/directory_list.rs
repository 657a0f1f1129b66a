//! The directory read as lists (campaigns to "all leads" / "all contacts", or to chosen ids).
//!
//! Every live directory record carries `gsi2pk=DIRKIND#{kind}#{shard}`, `gsi2sk={id}` (set when
//! the directory function writes it; a tombstone or a converted lead has none, so the index is
//! sparse and lists exactly what a campaign may reach). `shard` spreads one kind over
//! [`DIRECTORY_LIST_SHARDS`] partitions of the index.
use aws_sdk_dynamodb::types::AttributeValue;

use super::dynamo::{Item, Store, StoreError, from_item, key, s};
use super::keys;
use super::model::DirectoryRecord;

/// Index partitions per directory kind.
pub const DIRECTORY_LIST_SHARDS: u8 = 4;

/// The index attributes of a record as written (`None`: not listed).
pub fn listing_keys(r: &DirectoryRecord) -> Option<(String, String)> {
    if r.deleted || (r.kind == "lead" && r.converted) {
        return None;
    }
    let h = crate::envelope::sha256_hex(&[&r.kind, &r.id]);
    let shard = u8::from_str_radix(&h[..2], 16).unwrap_or(0) % DIRECTORY_LIST_SHARDS;
    Some((format!("DIRKIND#{}#{shard}", r.kind), r.id.clone()))
}

/// Adds the index attributes to a record's item.
pub(crate) fn with_listing(mut item: Item, r: &DirectoryRecord) -> Item {
    if let Some((pk, sk)) = listing_keys(r) {
        item.insert("gsi2pk".into(), s(pk));
        item.insert("gsi2sk".into(), s(sk));
    }
    item
}

impl Store {
    /// Records of one kind by id (missing and deleted ones left out by the caller).
    pub async fn directory_records(
        &self,
        kind: &str,
        ids: &[&str],
    ) -> Result<Vec<DirectoryRecord>, StoreError> {
        self.batch_get(
            ids.iter()
                .map(|id| key(keys::directory_pk(kind, id), keys::RECORD_SK))
                .collect(),
            None,
        )
        .await?
        .into_iter()
        .map(from_item)
        .collect()
    }

    /// One page of the live records of a kind in one index shard, after the id `after`.
    pub async fn directory_listing(
        &self,
        kind: &str,
        shard: u8,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<DirectoryRecord>, Option<String>), StoreError> {
        let pk = format!("DIRKIND#{kind}#{shard}");
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("GSI2")
            .key_condition_expression(match after {
                Some(_) => "gsi2pk = :p AND gsi2sk > :a",
                None => "gsi2pk = :p",
            })
            .expression_attribute_values(":p", s(pk))
            .limit(limit.clamp(1, 1000) as i32);
        if let Some(a) = after {
            q = q.expression_attribute_values(":a", AttributeValue::S(a.to_string()));
        }
        let out = q.send().await.map_err(StoreError::sdk)?;
        let rows: Vec<DirectoryRecord> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        let next = out
            .last_evaluated_key
            .and_then(|k| k.get("gsi2sk").and_then(|v| v.as_s().ok()).cloned());
        Ok((rows, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: &str, converted: bool, deleted: bool) -> DirectoryRecord {
        DirectoryRecord {
            pk: String::new(),
            sk: String::new(),
            kind: kind.into(),
            id: "12".into(),
            name: None,
            phone_raw: None,
            phone_key: None,
            converted,
            deleted,
            updated_at: 0,
            correlation_id: None,
            event_id: None,
        }
    }

    #[test]
    fn only_live_records_are_listed() {
        let (pk, sk) = listing_keys(&rec("lead", false, false)).unwrap();
        assert!(pk.starts_with("DIRKIND#lead#"), "{pk}");
        assert_eq!(sk, "12");
        assert!(listing_keys(&rec("lead", true, false)).is_none());
        assert!(listing_keys(&rec("contact", false, true)).is_none());
        assert!(listing_keys(&rec("contact", true, false)).is_some());
    }
}
