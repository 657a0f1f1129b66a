//! Activity log storage (see [`crate::activity`]).
//!
//! | access pattern | key |
//! |---|---|
//! | activity log, newest first, per UTC day | `pk=LOG#{yyyy-mm-dd}`, `sk={at_ms:013}#{seq}` (`ttl`) |
//!
//! One partition per day bounds each partition and lets a listing walk the days backwards
//! with one `Query` each (descending sort key); filters (kind, number, recipient, outcome) are
//! `FilterExpression`s on the day's items. `seq` is `{writer instance}{counter}`, unique across
//! concurrent Lambdas. Items past their `ttl` that DynamoDB has not deleted yet are skipped.
use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use chrono::{DateTime, NaiveDate, Utc};

use super::dynamo::{Item, Store, StoreError, from_item, key, n, s, to_item};
use crate::activity::{ActivityEntry, ActivitySink, Outcome, PendingEntry};

pub const LOG_PREFIX: &str = "LOG#";
const DAY_MS: i64 = 24 * 3600 * 1000;
/// Attempts of one `BatchWriteItem` chunk while DynamoDB leaves items unprocessed.
const BATCH_ATTEMPTS: u32 = 6;
/// Bound on `Query` calls of one listing page (filters can make days sparse).
const MAX_QUERIES_PER_PAGE: usize = 40;

/// UTC day (`yyyy-mm-dd`) of a unix-ms instant.
pub fn log_day(at_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

pub fn log_pk(day: &str) -> String {
    format!("{LOG_PREFIX}{day}")
}

pub fn log_sk(at_ms: i64, seq: &str) -> String {
    format!("{at_ms:013}#{seq}")
}

/// Lowest sort key of an instant and the highest (`~` sorts after every `seq` character).
fn sk_bounds(from_ms: i64, to_ms: i64) -> (String, String) {
    (
        format!("{:013}", from_ms.max(0)),
        format!("{:013}#~", to_ms.max(0)),
    )
}

fn parse_day(day: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

fn previous_day(day: &str) -> Option<String> {
    parse_day(day)?
        .pred_opt()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// Filters of a listing; `None` / empty = any.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub kind: Option<String>,
    pub number: Option<String>,
    /// Any of these recipient spellings (e.g. with and without `+`).
    pub recipients: Vec<String>,
    pub outcome: Option<Outcome>,
}

/// Where a listing stopped: the day, and the sort key already passed (exclusive).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogPosition {
    #[serde(rename = "d")]
    pub day: String,
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub before_sk: Option<String>,
}

/// One listed entry with its id (its sort key) and day.
#[derive(Debug, Clone)]
pub struct LoggedEntry {
    pub day: String,
    pub id: String,
    pub entry: ActivityEntry,
}

impl Store {
    /// Writes entries with `BatchWriteItem` (25 per call), retrying `UnprocessedItems` with
    /// backoff; an error names how many could not be written.
    pub async fn put_activity(
        &self,
        entries: &[PendingEntry],
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(entries.len());
        for p in entries {
            let mut item = to_item(&p.entry)?;
            item.extend(key(
                log_pk(&log_day(p.entry.at)),
                log_sk(p.entry.at, &p.seq),
            ));
            item.insert("ttl".into(), n(p.entry.at / 1000 + ttl_secs));
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(requests).await
    }

    /// `BatchWriteItem` of any number of requests, 25 at a time, unprocessed ones retried.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                if attempt > BATCH_ATTEMPTS {
                    return Err(StoreError::Dynamo(format!(
                        "{} batch-write items still unprocessed after {BATCH_ATTEMPTS} attempts",
                        pending.len()
                    )));
                }
                if attempt > 1 {
                    let ceiling = 25u64 << (attempt - 2).min(6);
                    tokio::time::sleep(Duration::from_millis(rand::random_range(0..=ceiling)))
                        .await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(StoreError::sdk)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// A page of the log, newest first, between `from_ms` and `to_ms` (inclusive), starting
    /// after `position` (a previous page's). Returns the entries and where to continue.
    pub async fn activity_page(
        &self,
        filter: &ActivityFilter,
        from_ms: i64,
        to_ms: i64,
        position: Option<&LogPosition>,
        limit: usize,
        now_ms: i64,
    ) -> Result<(Vec<LoggedEntry>, Option<LogPosition>), StoreError> {
        let limit = limit.clamp(1, 500);
        let first_day = log_day(from_ms);
        let (lo, top) = sk_bounds(from_ms, to_ms);
        let (mut day, mut hi) = match position {
            Some(p) => (
                p.day.clone(),
                p.before_sk.clone().unwrap_or_else(|| top.clone()),
            ),
            None => (log_day(to_ms), top.clone()),
        };
        let mut out: Vec<LoggedEntry> = Vec::new();
        let mut queries = 0;
        let filtered = filter.kind.is_some()
            || filter.number.is_some()
            || !filter.recipients.is_empty()
            || filter.outcome.is_some();
        loop {
            if day < first_day {
                return Ok((out, None));
            }
            let mut start: Option<Item> = None;
            loop {
                if queries == MAX_QUERIES_PER_PAGE {
                    // Out of budget: continue where DynamoDB stopped.
                    let pos = LogPosition {
                        day: day.clone(),
                        before_sk: Some(hi.clone()),
                    };
                    return Ok((out, Some(pos)));
                }
                queries += 1;
                let page = if filtered {
                    200
                } else {
                    (limit + 1 - out.len()) as i32
                };
                let mut q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .scan_index_forward(false)
                    .consistent_read(true)
                    .limit(page)
                    .key_condition_expression("pk = :p AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":p", s(log_pk(&day)))
                    .expression_attribute_values(":lo", s(&lo))
                    .expression_attribute_values(":hi", s(&hi))
                    .set_exclusive_start_key(start.take());
                let rcp_cond;
                let mut conds = Vec::new();
                if let Some(k) = &filter.kind {
                    conds.push("#kind = :kind");
                    q = q
                        .expression_attribute_names("#kind", "kind")
                        .expression_attribute_values(":kind", s(k));
                }
                if let Some(num) = &filter.number {
                    conds.push("#num = :num");
                    q = q
                        .expression_attribute_names("#num", "number")
                        .expression_attribute_values(":num", s(num));
                }
                if !filter.recipients.is_empty() {
                    let names: Vec<String> = (0..filter.recipients.len())
                        .map(|i| format!(":r{i}"))
                        .collect();
                    rcp_cond = format!("#rcp IN ({})", names.join(", "));
                    conds.push(&rcp_cond);
                    q = q.expression_attribute_names("#rcp", "recipient");
                    for (name, r) in names.iter().zip(&filter.recipients) {
                        q = q.expression_attribute_values(name, s(r));
                    }
                }
                if let Some(o) = filter.outcome {
                    conds.push("#out = :out");
                    q = q
                        .expression_attribute_names("#out", "outcome")
                        .expression_attribute_values(":out", s(o.as_str()));
                }
                if !conds.is_empty() {
                    q = q.filter_expression(conds.join(" AND "));
                }
                let resp = q.send().await.map_err(StoreError::sdk)?;
                for item in resp.items.unwrap_or_default() {
                    let sk = match item.get("sk") {
                        Some(AttributeValue::S(v)) => v.clone(),
                        _ => continue,
                    };
                    if sk == hi {
                        continue; // the previous page's last entry
                    }
                    let expired = matches!(item.get("ttl"), Some(AttributeValue::N(t))
                        if t.parse::<i64>().is_ok_and(|t| t * 1000 < now_ms));
                    if expired {
                        continue;
                    }
                    let entry: ActivityEntry = from_item(item)?;
                    out.push(LoggedEntry {
                        day: day.clone(),
                        id: sk,
                        entry,
                    });
                    if out.len() > limit {
                        out.truncate(limit);
                        let last = out.last().expect("limit >= 1");
                        let pos = LogPosition {
                            day: last.day.clone(),
                            before_sk: Some(last.id.clone()),
                        };
                        return Ok((out, Some(pos)));
                    }
                }
                match resp.last_evaluated_key {
                    Some(k) => {
                        if let Some(AttributeValue::S(v)) = k.get("sk") {
                            hi = v.clone();
                        }
                        start = Some(k);
                    }
                    None => break,
                }
            }
            match previous_day(&day) {
                Some(d) => {
                    day = d;
                    hi = top.clone();
                }
                None => return Ok((out, None)),
            }
        }
    }

    /// Deletes the log entries between `from_ms` and `to_ms`, at most `max` of them; returns
    /// how many were deleted and whether some remain.
    pub async fn clear_activity(
        &self,
        from_ms: i64,
        to_ms: i64,
        max: usize,
    ) -> Result<(usize, bool), StoreError> {
        let first_day = log_day(from_ms);
        let (lo, hi) = sk_bounds(from_ms, to_ms);
        let mut day = log_day(to_ms);
        let mut deleted = 0usize;
        while day >= first_day {
            let mut start: Option<Item> = None;
            loop {
                let room = max - deleted;
                if room == 0 {
                    return Ok((deleted, true));
                }
                let resp = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :p AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":p", s(log_pk(&day)))
                    .expression_attribute_values(":lo", s(&lo))
                    .expression_attribute_values(":hi", s(&hi))
                    .projection_expression("pk, sk")
                    .limit(room.min(500) as i32)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(StoreError::sdk)?;
                let keys: Vec<HashMap<String, AttributeValue>> = resp.items.unwrap_or_default();
                let requests = keys
                    .into_iter()
                    .map(|k| {
                        DeleteRequest::builder()
                            .set_key(Some(k))
                            .build()
                            .map(|d| WriteRequest::builder().delete_request(d).build())
                            .map_err(|e| StoreError::Dynamo(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                deleted += requests.len();
                self.batch_write(requests).await?;
                match resp.last_evaluated_key {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
            match previous_day(&day) {
                Some(d) => day = d,
                None => break,
            }
        }
        Ok((deleted, false))
    }
}

#[async_trait::async_trait]
impl ActivitySink for Store {
    async fn write_entries(&self, entries: &[PendingEntry], ttl_secs: i64) -> Result<(), String> {
        self.put_activity(entries, ttl_secs)
            .await
            .map_err(|e| e.to_string())
    }
}

/// First day of the log still within `ttl` (older partitions hold only expired items).
pub fn oldest_kept_ms(now_ms: i64, ttl: Duration) -> i64 {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    now_ms.saturating_sub(ttl_ms).saturating_sub(DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_newest_last_within_a_day() {
        assert_eq!(log_day(0), "1970-01-01");
        assert_eq!(log_day(1_749_416_384_000), "2025-06-08");
        assert_eq!(log_pk("2025-06-08"), "LOG#2025-06-08");
        assert!(log_sk(999, "ff") < log_sk(1000, "00"));
        let (lo, hi) = sk_bounds(1000, 2000);
        assert!(lo <= log_sk(1000, "a") && log_sk(2000, "zz0123") <= hi);
        assert!(log_sk(2001, "a") > hi);
        assert_eq!(previous_day("2025-03-01").as_deref(), Some("2025-02-28"));
        assert_eq!(previous_day("nonsense"), None);
        // Days compare as strings in calendar order.
        assert!(*"2025-06-08" < *"2025-06-10");
    }
}
