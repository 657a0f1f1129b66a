//! Unread counters (`pk=UNREAD#{rel_type}#{shard}`, `sk=A#{assignee or -}`): unread messages and
//! conversations with unread messages, per `rel_type`, assignee and inbox shard, so the unread
//! counts never read the inbox.
//!
//! Exact by construction: each conversation records what it last contributed
//! (`counted_unread`, `counted_bucket`), and that record changes only in the same transaction
//! as the counters it moves. The counters are therefore always the sum of the conversations'
//! recorded contributions. A stored message moves its conversation's contribution in its own
//! transaction ([`super::messages`]); every other writer of `unread`, `rel_type` or `assignee`
//! calls [`Store::sync_unread`] after its write, and a crash in between leaves that one
//! conversation's contribution behind until its next write, never a counter off for good. A conversation is
//! deleted together with its contribution ([`Store::delete_conversation`]).
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use futures::future::try_join_all;

use super::dynamo::{cancellation_codes, key, n, s};
use super::keys;
use super::model::RelType;
use super::{Store, StoreError};

/// Sort key of an unassigned conversation's counter.
const UNASSIGNED: &str = "-";
/// Attempts of a sync that keeps meeting concurrent writers.
pub(super) const MAX_ATTEMPTS: usize = 8;

pub fn unread_pk(rel_type: &str, shard: u8) -> String {
    format!("UNREAD#{rel_type}#{shard}")
}

pub fn unread_sk(assignee: Option<&str>) -> String {
    format!(
        "A#{}",
        assignee.filter(|a| !a.is_empty()).unwrap_or(UNASSIGNED)
    )
}

/// Where a conversation's unread messages are counted: `"{pk}|{sk}"`.
pub(super) fn bucket(rel_type: &str, shard: u8, assignee: Option<&str>) -> String {
    format!("{}|{}", unread_pk(rel_type, shard), unread_sk(assignee))
}

/// What a conversation should contribute now, and what it contributes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Contribution {
    pub(super) unread: i64,
    pub(super) bucket: String,
}

/// The counter changes that move a conversation's contribution from `counted` to `wanted`:
/// `(bucket, messages, conversations)`, none when both are the same.
pub(super) fn moves(
    counted: Option<&Contribution>,
    wanted: Option<&Contribution>,
) -> Vec<(String, i64, i64)> {
    let delta = |c: &Contribution| (c.unread, i64::from(c.unread > 0));
    let old = counted.map(|c| (c.bucket.as_str(), delta(c)));
    let new = wanted.map(|c| (c.bucket.as_str(), delta(c)));
    let mut moves: Vec<(String, i64, i64)> = Vec::new();
    match (old, new) {
        (Some((ob, (om, oc))), Some((nb, (nm, nc)))) if ob == nb => {
            moves.push((ob.to_string(), nm - om, nc - oc));
        }
        (old, new) => {
            if let Some((b, (m, c))) = old {
                moves.push((b.to_string(), -m, -c));
            }
            if let Some((b, (m, c))) = new {
                moves.push((b.to_string(), m, c));
            }
        }
    }
    moves.retain(|(_, m, c)| *m != 0 || *c != 0);
    moves
}

pub(super) fn attr_n(
    item: &std::collections::HashMap<String, AttributeValue>,
    k: &str,
) -> Option<i64> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub(super) fn attr_s<'a>(
    item: &'a std::collections::HashMap<String, AttributeValue>,
    k: &str,
) -> Option<&'a str> {
    match item.get(k) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// A counter update adding `messages` and `conversations` to the bucket.
pub(super) fn counter_update(
    table: &str,
    bucket: &str,
    messages: i64,
    conversations: i64,
) -> Update {
    let (pk, sk) = bucket.split_once('|').unwrap_or((bucket, ""));
    Update::builder()
        .table_name(table)
        .set_key(Some(key(pk, sk)))
        .update_expression("ADD messages :m, conversations :c")
        .expression_attribute_values(":m", n(messages))
        .expression_attribute_values(":c", n(conversations))
        .build()
        .expect("counter update")
}

/// Whether a cancelled transaction met only conditions and concurrent writers (read again, retry).
pub(super) fn retryable<R>(e: &SdkError<TransactWriteItemsError, R>) -> bool {
    match cancellation_codes(e) {
        Some(codes) => codes.iter().all(|c| {
            matches!(
                c.as_str(),
                "None" | "ConditionalCheckFailed" | "TransactionConflict"
            )
        }),
        None => false,
    }
}

/// The pause before attempt `attempt + 1` of a write that met a concurrent writer.
pub(super) async fn backoff(attempt: usize) {
    let jitter = rand::random::<u64>() % 20;
    tokio::time::sleep(std::time::Duration::from_millis(
        5 * (1 << attempt.min(5)) + jitter,
    ))
    .await;
}

impl Store {
    /// Brings the conversation's contribution to the unread counters up to date (its current
    /// `unread`, `rel_type` and `assignee`). Idempotent; concurrent syncs of one conversation
    /// converge (each move is conditional on the contribution it replaces).
    pub async fn sync_unread(
        &self,
        phone_number_id: &str,
        customer_id: &str,
    ) -> Result<(), StoreError> {
        self.move_contribution(phone_number_id, customer_id, false)
            .await
    }

    /// Deletes the conversation item and takes it out of the unread counters, in one
    /// transaction (a message stored meanwhile cannot leave its count behind).
    pub async fn delete_conversation(
        &self,
        phone_number_id: &str,
        customer_id: &str,
    ) -> Result<(), StoreError> {
        self.move_contribution(phone_number_id, customer_id, true)
            .await
    }

    async fn move_contribution(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        remove: bool,
    ) -> Result<(), StoreError> {
        let conv_key = key(
            keys::conversation_pk(phone_number_id, customer_id),
            keys::CONV_SK,
        );
        for attempt in 0..MAX_ATTEMPTS {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(conv_key.clone()))
                .consistent_read(true)
                .projection_expression(
                    "pk, unread, rel_type, assignee, conversation_id, counted_unread, counted_bucket",
                )
                .send()
                .await
                .map_err(StoreError::sdk)?;
            let Some(item) = out.item.filter(|i| i.contains_key("pk")) else {
                return Ok(());
            };
            let counted = attr_s(&item, "counted_bucket").map(|b| Contribution {
                unread: attr_n(&item, "counted_unread").unwrap_or(0),
                bucket: b.to_string(),
            });
            let wanted = if remove {
                None
            } else {
                let conversation_id = attr_s(&item, "conversation_id").unwrap_or_default();
                let rel_type = attr_s(&item, "rel_type").unwrap_or(RelType::General.as_str());
                Some(Contribution {
                    unread: attr_n(&item, "unread").unwrap_or(0).max(0),
                    bucket: bucket(
                        rel_type,
                        keys::shard_of(conversation_id, self.shards()),
                        attr_s(&item, "assignee"),
                    ),
                })
            };
            if counted == wanted && !remove {
                return Ok(());
            }
            // The conversation's record, conditional on the contribution it replaces.
            let condition = match &counted {
                Some(_) => "counted_bucket = :ob AND counted_unread = :ou",
                None => "attribute_exists(pk) AND attribute_not_exists(counted_bucket)",
            };
            let old_values = counted.as_ref().map(|c| {
                std::collections::HashMap::from([
                    (":ob".to_string(), s(&c.bucket)),
                    (":ou".to_string(), n(c.unread)),
                ])
            });
            let conv_item = match &wanted {
                Some(w) => {
                    let mut values = old_values.unwrap_or_default();
                    values.insert(":nb".into(), s(&w.bucket));
                    values.insert(":nu".into(), n(w.unread));
                    TransactWriteItem::builder()
                        .update(
                            Update::builder()
                                .table_name(&self.table)
                                .set_key(Some(conv_key.clone()))
                                .condition_expression(condition)
                                .update_expression("SET counted_bucket = :nb, counted_unread = :nu")
                                .set_expression_attribute_values(Some(values))
                                .build()
                                .expect("conversation update"),
                        )
                        .build()
                }
                None => TransactWriteItem::builder()
                    .delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(conv_key.clone()))
                            .condition_expression(condition)
                            .set_expression_attribute_values(old_values)
                            .build()
                            .expect("conversation delete"),
                    )
                    .build(),
            };
            let mut items = vec![conv_item];
            for (b, m, c) in moves(counted.as_ref(), wanted.as_ref()) {
                items.push(
                    TransactWriteItem::builder()
                        .update(counter_update(&self.table, &b, m, c))
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
                Ok(_) => return Ok(()),
                // Another writer moved it first (or is moving a counter now): read again.
                Err(e) if retryable(&e) && attempt + 1 < MAX_ATTEMPTS => backoff(attempt).await,
                Err(e) => return Err(StoreError::sdk(e)),
            }
        }
        Err(StoreError::Dynamo(
            "unread counters: too many concurrent updates of one conversation".into(),
        ))
    }

    /// Unread messages and conversations with unread messages of one `rel_type`: every
    /// assignee's counter, or (`visible_to`) only the caller's and the unassigned ones.
    pub async fn unread_counts(
        &self,
        rel_type: RelType,
        visible_to: Option<&str>,
    ) -> Result<(i64, i64), StoreError> {
        let shards: Vec<u8> = (0..self.shards()).collect();
        let per_shard = try_join_all(shards.iter().map(|&shard| async move {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(unread_pk(rel_type.as_str(), shard)))
                .projection_expression("sk, messages, conversations")
                .consistent_read(true);
            let mut start = None;
            let (mut m, mut c) = (0i64, 0i64);
            loop {
                q = q.set_exclusive_start_key(start.take());
                let out = q.clone().send().await.map_err(StoreError::sdk)?;
                for it in out.items.unwrap_or_default() {
                    let sk = attr_s(&it, "sk").unwrap_or_default();
                    let counts = match visible_to {
                        None => true,
                        Some(me) => sk == unread_sk(Some(me)) || sk == unread_sk(None),
                    };
                    if counts {
                        m += attr_n(&it, "messages").unwrap_or(0);
                        c += attr_n(&it, "conversations").unwrap_or(0);
                    }
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
            Ok::<_, StoreError>((m, c))
        }))
        .await?;
        Ok(per_shard
            .into_iter()
            .fold((0, 0), |(m, c), (sm, sc)| (m + sm, c + sc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_name_rel_type_shard_and_assignee() {
        assert_eq!(bucket("leads", 2, Some("12")), "UNREAD#leads#2|A#12");
        assert_eq!(bucket("general", 0, None), "UNREAD#general#0|A#-");
        assert_eq!(bucket("general", 0, Some("")), "UNREAD#general#0|A#-");
    }
}
