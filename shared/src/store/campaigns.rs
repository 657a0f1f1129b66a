//! Campaigns, their runs, their recipients and the counters that add them up.
//!
//! Keys:
//! - campaign: `pk=CAMPAIGNS`, `sk={id}` (ids sort by creation; one Query lists them);
//!   `version` guards every change (optimistic locking);
//! - run: `pk=CAMPAIGN#{id}`, `sk=RUN#{n:05}`, put `attribute_not_exists(pk)`: claiming a run
//!   is creating it, so two starts of one run make one run; it keeps the fan-out's position;
//! - counters: `pk=CAMPAIGN#{id}`, `sk=RUN#{n:05}#C#{shard:02}`, one item per recipient shard
//!   moved with `ADD` on each recipient transition (no hot item at 1000 sends/s);
//! - recipient: `pk=CRCPT#{id}#{n:05}#{shard:02}`, `sk={canonical E.164}` (a number is one
//!   recipient per run: duplicates across sources collapse on the key).
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, ReturnValue, WriteRequest};
use serde::{Deserialize, Serialize};

use super::dynamo::{Item, Store, StoreError, applied, from_item, key, n, s, to_item};
use crate::campaigns::model::{CampaignSpec, CampaignState};
use crate::campaigns::outcome::RecipientStatus;

pub const CAMPAIGNS_PK: &str = "CAMPAIGNS";
/// Recipient shards of a run (partitions of its recipients and counters).
pub const RECIPIENT_SHARDS: u8 = 8;

pub fn campaign_pk(id: &str) -> String {
    format!("CAMPAIGN#{id}")
}

pub fn run_sk(run: u32) -> String {
    format!("RUN#{run:05}")
}

pub fn counter_sk(run: u32, shard: u8) -> String {
    format!("RUN#{run:05}#C#{shard:02}")
}

pub fn recipient_pk(id: &str, run: u32, shard: u8) -> String {
    format!("CRCPT#{id}#{run:05}#{shard:02}")
}

/// The shard of a recipient (by its canonical number).
pub fn recipient_shard(phone_key: &str) -> u8 {
    let h = crate::envelope::sha256_hex(&[phone_key]);
    u8::from_str_radix(&h[..2], 16).unwrap_or(0) % RECIPIENT_SHARDS
}

/// A campaign with its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    pub pk: String,
    pub sk: String,
    pub id: String,
    pub spec: CampaignSpec,
    pub state: CampaignState,
    /// The sender (the spec's, or the default number when it was saved).
    pub phone_number_id: String,
    /// The stored template's category is MARKETING: opted-out customers are skipped.
    pub marketing: bool,
    /// The next run to start (1-based), with its planned time (ms); `None` when none is left.
    pub next_run: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<i64>,
    /// When the campaign was saved (the first run's time for `send_now`).
    pub saved_at: i64,
    /// Runs started so far.
    #[serde(default)]
    pub runs_started: u32,
    /// Why it is paused or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(default)]
    pub version: i64,
}

/// Where a run stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// The scheduler is writing recipients and queueing them.
    FanningOut,
    /// Every recipient is queued; senders are at work.
    Sending,
    /// Nothing is pending or sending any more.
    Done,
}

/// One run of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CampaignRun {
    pub pk: String,
    pub sk: String,
    pub campaign_id: String,
    pub run: u32,
    pub state: RunState,
    pub started_at: i64,
    /// Where the fan-out stands (the resolver's position, JSON), so a crash resumes there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The fan-out page to read next (its cursor is `cursor`).
    #[serde(default)]
    pub page: u32,
    /// Recipients written so far (each number once).
    #[serde(default)]
    pub written: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanned_out_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}

/// A recipient of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    pub pk: String,
    pub sk: String,
    pub campaign_id: String,
    pub run: u32,
    pub shard: u8,
    /// The fan-out page that wrote it.
    #[serde(default)]
    pub page: u32,
    /// E.164 (`+15551230001`; what the source had, for an invalid number).
    pub phone: String,
    /// The record it came from (`lead:12`, `contact:7`, `wacontact:…`).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The record's fields the template's placeholders may use.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    pub status: RecipientStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wamid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Delivery by Meta's statuses: `sent`, `delivered`, `read` (never backwards) or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    #[serde(default)]
    pub delivery_rank: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<i64>,
    #[serde(default)]
    pub attempts: u32,
    pub updated_at: i64,
}

impl Recipient {
    /// The id carried in `biz_opaque_callback_data` of its send: statuses find it by it.
    pub fn callback_id(&self) -> String {
        format!("cmp:{}:{}:{}", self.campaign_id, self.run, self.sk)
    }
}

/// Parses a `biz_opaque_callback_data` of a campaign send: (campaign id, run, phone key).
pub fn parse_callback(cb: &str) -> Option<(&str, u32, &str)> {
    let rest = cb.strip_prefix("cmp:")?;
    let (id, rest) = rest.split_once(':')?;
    let (run, phone) = rest.split_once(':')?;
    (crate::store::crud::is_valid_id(id) && phone.starts_with('+'))
        .then_some(())
        .and_then(|_| run.parse().ok().map(|r| (id, r, phone)))
}

/// Which recipient: (campaign, run, canonical number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientKey<'a> {
    pub campaign_id: &'a str,
    pub run: u32,
    pub phone: &'a str,
}

impl RecipientKey<'_> {
    fn item_key(&self) -> Item {
        key(
            recipient_pk(self.campaign_id, self.run, recipient_shard(self.phone)),
            self.phone,
        )
    }
}

impl Recipient {
    pub fn key(&self) -> RecipientKey<'_> {
        RecipientKey {
            campaign_id: &self.campaign_id,
            run: self.run,
            phone: &self.sk,
        }
    }
}

/// Counts of one run, summed over its shards.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunTotals {
    pub total: i64,
    pub pending: i64,
    pub sending: i64,
    pub success: i64,
    pub failed: i64,
    pub invalid: i64,
    pub unknown: i64,
    pub skipped: i64,
    /// Delivery, by the highest status each recipient reached.
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
}

impl RunTotals {
    fn add(&mut self, item: &Item) {
        let get = |k: &str| {
            item.get(k)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        self.total += get("total");
        self.pending += get("pending");
        self.sending += get("sending");
        self.success += get("success");
        self.failed += get("failed");
        self.invalid += get("invalid");
        self.unknown += get("unknown");
        self.skipped += get("skipped");
        self.sent += get("sent");
        self.delivered += get("delivered");
        self.read += get("read");
    }

    /// Nothing is waiting to be sent or settled.
    pub fn is_done(&self) -> bool {
        self.pending == 0 && self.sending == 0
    }
}

/// `ADD` of counter deltas (zero ones left out), for a single update or a transaction's.
struct CounterAdd {
    expression: String,
    names: std::collections::HashMap<String, String>,
    values: std::collections::HashMap<String, AttributeValue>,
}

impl CounterAdd {
    fn of(deltas: &[(&str, i64)]) -> Option<Self> {
        let mut parts = Vec::new();
        let (mut names, mut values) = (
            std::collections::HashMap::new(),
            std::collections::HashMap::new(),
        );
        for (i, (name, d)) in deltas.iter().filter(|(_, d)| *d != 0).enumerate() {
            parts.push(format!("#c{i} :d{i}"));
            names.insert(format!("#c{i}"), name.to_string());
            values.insert(format!(":d{i}"), n(*d));
        }
        (!parts.is_empty()).then(|| Self {
            expression: format!("ADD {}", parts.join(", ")),
            names,
            values,
        })
    }
}

impl Store {
    // ------------------------------------------------------------------ campaigns

    pub async fn create_campaign(&self, c: &Campaign) -> Result<bool, StoreError> {
        self.put_new(c).await
    }

    pub async fn campaign(&self, id: &str) -> Result<Option<Campaign>, StoreError> {
        self.get(CAMPAIGNS_PK.to_string(), id).await
    }

    pub async fn campaigns_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Campaign>, Option<String>), StoreError> {
        self.partition_page(CAMPAIGNS_PK, after, limit).await
    }

    /// Writes `c` (its `version` bumped) if the stored one still has `c.version`; `false` when
    /// another change came first.
    pub async fn save_campaign(&self, c: &mut Campaign) -> Result<bool, StoreError> {
        let expected = c.version;
        c.version += 1;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&*c)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(expected))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if super::dynamo::is_conditional_failure_put(&e) => {
                c.version = expected;
                Ok(false)
            }
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    /// Deletes a campaign whose stored version is `version`.
    pub async fn delete_campaign(&self, id: &str, version: i64) -> Result<bool, StoreError> {
        let r = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(CAMPAIGNS_PK, id)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e)
                if matches!(&e, aws_sdk_dynamodb::error::SdkError::ServiceError(se)
                    if se.err().is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    /// Moves a campaign to `to` if it is in one of `from` (the system's own moves: Meta paused
    /// or stopped it, a run finished); `false` otherwise.
    pub async fn move_campaign(
        &self,
        id: &str,
        from: &[CampaignState],
        to: CampaignState,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut values: Vec<(String, AttributeValue)> = vec![
            (":to".into(), s(to.as_str())),
            (":t".into(), n(now_ms)),
            (":one".into(), n(1)),
        ];
        let mut names = Vec::new();
        for (i, f) in from.iter().enumerate() {
            names.push(format!(":f{i}"));
            values.push((format!(":f{i}"), s(f.as_str())));
        }
        let mut expr = "SET #st = :to, updated_at = :t ADD version :one".to_string();
        if let Some(r) = reason {
            expr = "SET #st = :to, updated_at = :t, reason = :r ADD version :one".to_string();
            values.push((":r".into(), s(r)));
        }
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(CAMPAIGNS_PK, id)))
            .update_expression(expr)
            .condition_expression(format!("#st IN ({})", names.join(", ")))
            .expression_attribute_names("#st", "state");
        for (k, v) in values {
            u = u.expression_attribute_values(k, v);
        }
        applied(u.send().await)
    }

    // ------------------------------------------------------------------ runs

    /// Claims run `run` (creates it); `None` when it was claimed before (returns the stored
    /// run then, so a resumed fan-out continues from its cursor).
    pub async fn claim_run(
        &self,
        campaign_id: &str,
        run: u32,
        now_ms: i64,
    ) -> Result<(bool, CampaignRun), StoreError> {
        let r = CampaignRun {
            pk: campaign_pk(campaign_id),
            sk: run_sk(run),
            campaign_id: campaign_id.into(),
            run,
            state: RunState::FanningOut,
            started_at: now_ms,
            cursor: None,
            page: 0,
            written: 0,
            fanned_out_at: None,
            finished_at: None,
        };
        if self.put_new(&r).await? {
            return Ok((true, r));
        }
        let stored = self
            .run(campaign_id, run)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a claimed run vanished".into()))?;
        Ok((false, stored))
    }

    pub async fn run(
        &self,
        campaign_id: &str,
        run: u32,
    ) -> Result<Option<CampaignRun>, StoreError> {
        self.get(campaign_pk(campaign_id), &run_sk(run)).await
    }

    /// Every run of a campaign, oldest first (counter items left out).
    pub async fn runs(&self, campaign_id: &str) -> Result<Vec<CampaignRun>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :r)")
            .expression_attribute_values(":p", s(campaign_pk(campaign_id)))
            .expression_attribute_values(":r", s("RUN#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .filter(|i| {
                i.get("sk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|sk| !sk.contains("#C#"))
            })
            .map(from_item)
            .collect()
    }

    /// Commits fan-out page `page`: the run's cursor moves to `next` (the run goes to
    /// `sending` when there is none) together with the page's counts per shard, in one
    /// transaction conditional on the run still being at `page`; `false` when another
    /// invocation committed it first.
    pub async fn commit_fanout_page(
        &self,
        campaign_id: &str,
        run: u32,
        page: u32,
        next: Option<&str>,
        counts: &BTreeMap<u8, BTreeMap<&'static str, i64>>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
        let written: i64 = counts
            .values()
            .map(|c| c.get("total").copied().unwrap_or(0))
            .sum();
        let mut run_update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(campaign_pk(campaign_id), run_sk(run))))
            .condition_expression("page = :page")
            .expression_attribute_values(":page", n(i64::from(page)))
            .expression_attribute_values(":next_page", n(i64::from(page) + 1))
            .expression_attribute_values(":w", n(written));
        // `cursor` is one of DynamoDB's reserved words.
        run_update = run_update.expression_attribute_names("#cur", "cursor");
        let expr = match next {
            Some(c) => {
                run_update = run_update.expression_attribute_values(":c", s(c));
                "SET page = :next_page, #cur = :c ADD written :w".to_string()
            }
            None => {
                run_update = run_update
                    .expression_attribute_names("#st", "state")
                    .expression_attribute_values(":st", s("sending"))
                    .expression_attribute_values(":t", n(now_ms));
                "SET page = :next_page, #st = :st, fanned_out_at = :t REMOVE #cur ADD written :w"
                    .to_string()
            }
        };
        let mut items = vec![
            TransactWriteItem::builder()
                .update(
                    run_update
                        .update_expression(expr)
                        .build()
                        .map_err(|e| StoreError::Dynamo(e.to_string()))?,
                )
                .build(),
        ];
        for (shard, c) in counts {
            let deltas: Vec<(&str, i64)> = c.iter().map(|(k, d)| (*k, *d)).collect();
            let Some(add) = CounterAdd::of(&deltas) else {
                continue;
            };
            items.push(
                TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(campaign_pk(campaign_id), counter_sk(run, *shard))))
                            .update_expression(add.expression)
                            .set_expression_attribute_names(Some(add.names))
                            .set_expression_attribute_values(Some(add.values))
                            .build()
                            .map_err(|e| StoreError::Dynamo(e.to_string()))?,
                    )
                    .build(),
            );
        }
        match self.transact(items).await? {
            super::crud::TxOutcome::Done => Ok(true),
            super::crud::TxOutcome::ConditionFailed(_) => Ok(false),
            super::crud::TxOutcome::Conflict => Err(StoreError::Dynamo(
                "a concurrent write touched the run; the page is redone".into(),
            )),
        }
    }

    /// Marks a run done once (`false` when it already was, or is still fanning out).
    pub async fn finish_run(
        &self,
        campaign_id: &str,
        run: u32,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(campaign_pk(campaign_id), run_sk(run))))
            .update_expression("SET #st = :done, finished_at = :t")
            .condition_expression("#st = :sending")
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":t", n(now_ms))
            .send()
            .await;
        applied(r)
    }

    // ------------------------------------------------------------------ counters

    /// Moves a run's counters of one shard (`ADD`).
    pub async fn count(
        &self,
        campaign_id: &str,
        run: u32,
        shard: u8,
        deltas: &[(&str, i64)],
    ) -> Result<(), StoreError> {
        let Some(add) = CounterAdd::of(deltas) else {
            return Ok(());
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(campaign_pk(campaign_id), counter_sk(run, shard))))
            .update_expression(add.expression)
            .set_expression_attribute_names(Some(add.names))
            .set_expression_attribute_values(Some(add.values))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// A run's counters, summed over its shards.
    pub async fn run_totals(&self, campaign_id: &str, run: u32) -> Result<RunTotals, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :c)")
            .expression_attribute_values(":p", s(campaign_pk(campaign_id)))
            .expression_attribute_values(":c", s(format!("{}#C#", run_sk(run))))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let mut t = RunTotals::default();
        for i in out.items.unwrap_or_default() {
            t.add(&i);
        }
        Ok(t)
    }

    // ------------------------------------------------------------------ recipients

    /// Which of these E.164 numbers belong to customers who stopped marketing messages (two
    /// batched reads: the numbers' aliases, then their customers' profiles).
    pub async fn marketing_opted_out(
        &self,
        e164s: &[&str],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        use super::keys::{AliasKind, PROFILE_SK, alias_pk, customer_pk};
        let aliases = self
            .batch_get(
                e164s
                    .iter()
                    .map(|e| key(alias_pk(AliasKind::E164, e), super::keys::ALIAS_SK))
                    .collect(),
                Some("pk, customer_id"),
            )
            .await?;
        let prefix = alias_pk(AliasKind::E164, "");
        let mut by_customer: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in aliases {
            let get = |k: &str| a.get(k).and_then(|v| v.as_s().ok()).cloned();
            if let (Some(pk), Some(c)) = (get("pk"), get("customer_id")) {
                by_customer
                    .entry(c)
                    .or_default()
                    .push(pk.trim_start_matches(&prefix).to_string());
            }
        }
        let profiles = self
            .batch_get(
                by_customer
                    .keys()
                    .map(|c| key(customer_pk(c), PROFILE_SK))
                    .collect(),
                Some("customer_id, marketing_opt_out"),
            )
            .await?;
        let mut out = std::collections::HashSet::new();
        for p in profiles {
            let opted = p
                .get("marketing_opt_out")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false);
            if let (true, Some(c)) = (opted, p.get("customer_id").and_then(|v| v.as_s().ok())) {
                out.extend(by_customer.get(c).into_iter().flatten().cloned());
            }
        }
        Ok(out)
    }

    /// The recipients stored under these keys (pk, sk); missing ones are absent.
    pub async fn recipients_by_key(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<Recipient>, StoreError> {
        self.batch_get(
            keys.iter()
                .map(|(p, s)| key(p.clone(), s.clone()))
                .collect(),
            None,
        )
        .await?
        .into_iter()
        .map(from_item)
        .collect()
    }

    /// Writes new recipients in batches of 25, retrying unprocessed items.
    pub async fn put_recipients(&self, items: &[Recipient]) -> Result<(), StoreError> {
        for chunk in items.chunks(25) {
            let mut writes = Vec::with_capacity(chunk.len());
            for r in chunk {
                writes.push(
                    WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(to_item(r)?))
                                .build()
                                .map_err(|e| StoreError::Dynamo(e.to_string()))?,
                        )
                        .build(),
                );
            }
            let mut request = Some(std::collections::HashMap::from([(
                self.table.clone(),
                writes,
            )]));
            let mut attempts = 0;
            while let Some(req) = request.take() {
                attempts += 1;
                let out = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(req))
                    .send()
                    .await
                    .map_err(StoreError::sdk)?;
                request = out.unprocessed_items.filter(|u| !u.is_empty());
                if request.is_some() {
                    if attempts >= 8 {
                        return Err(StoreError::Dynamo(
                            "BatchWriteItem kept answering unprocessed items".into(),
                        ));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempts)).await;
                }
            }
        }
        Ok(())
    }

    pub async fn recipient(
        &self,
        campaign_id: &str,
        run: u32,
        phone_key: &str,
    ) -> Result<Option<Recipient>, StoreError> {
        self.get(
            recipient_pk(campaign_id, run, recipient_shard(phone_key)),
            phone_key,
        )
        .await
    }

    /// Moves a recipient from one of `from` to `to` with the given attribute updates; returns
    /// the recipient as it was before (`None`: it was in none of `from`, nothing changed).
    pub async fn move_recipient(
        &self,
        k: RecipientKey<'_>,
        from: &[RecipientStatus],
        to: RecipientStatus,
        set: &[(&str, AttributeValue)],
        now_ms: i64,
    ) -> Result<Option<Recipient>, StoreError> {
        let mut expr = vec!["#st = :to".to_string(), "updated_at = :t".to_string()];
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(k.item_key()))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":t", n(now_ms))
            .return_values(ReturnValue::AllOld);
        for (i, (name, v)) in set.iter().enumerate() {
            expr.push(format!("#a{i} = :a{i}"));
            u = u
                .expression_attribute_names(format!("#a{i}"), *name)
                .expression_attribute_values(format!(":a{i}"), v.clone());
        }
        let mut conds = Vec::new();
        for (i, f) in from.iter().enumerate() {
            conds.push(format!(":f{i}"));
            u = u.expression_attribute_values(format!(":f{i}"), s(f.as_str()));
        }
        let mut update = format!("SET {}", expr.join(", "));
        if to == RecipientStatus::Sending {
            update.push_str(" ADD attempts :one");
            u = u.expression_attribute_values(":one", n(1));
        }
        let r = u
            .update_expression(update)
            .condition_expression(format!("#st IN ({})", conds.join(", ")))
            .send()
            .await;
        match r {
            Ok(out) => Ok(out.attributes.map(from_item).transpose()?),
            Err(e) if super::dynamo::is_conditional_failure_update(&e) => Ok(None),
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    /// Raises a recipient's delivery to `status` (`sent` 1 < `delivered` 2 < `read` 3;
    /// `failed` 4 keeps its error); returns the rank it had (`None`: it was already at or
    /// above, or there is no such recipient).
    pub async fn raise_delivery(
        &self,
        k: RecipientKey<'_>,
        status: &str,
        rank: u8,
        at_ms: i64,
        error: Option<(i64, &str)>,
    ) -> Result<Option<(u8, RecipientStatus)>, StoreError> {
        let stage = match status {
            "sent" => "sent_at",
            "delivered" => "delivered_at",
            "read" => "read_at",
            _ => "failed_at",
        };
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(k.item_key()))
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(delivery_rank) OR delivery_rank < :r)",
            )
            .expression_attribute_values(":d", s(status))
            .expression_attribute_values(":r", n(i64::from(rank)))
            .expression_attribute_values(":t", n(at_ms))
            .return_values(ReturnValue::AllOld);
        let mut expr =
            format!("SET delivery = :d, delivery_rank = :r, {stage} = if_not_exists({stage}, :t)");
        if let Some((code, msg)) = error {
            expr.push_str(", error_code = :ec, #err = :em");
            u = u
                .expression_attribute_names("#err", "error")
                .expression_attribute_values(":ec", n(code))
                .expression_attribute_values(":em", s(msg));
        }
        let r = u.update_expression(expr).send().await;
        match r {
            Ok(out) => {
                let old: Option<Recipient> = out.attributes.map(from_item).transpose()?;
                Ok(old.map(|o| (o.delivery_rank, o.status)))
            }
            Err(e) if super::dynamo::is_conditional_failure_update(&e) => Ok(None),
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    /// One page of a run's recipients, optionally of one status, shard by shard. The cursor is
    /// `{shard}:{last sk}`.
    pub async fn recipients_page(
        &self,
        campaign_id: &str,
        run: u32,
        status: Option<RecipientStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Recipient>, Option<String>), StoreError> {
        let limit = limit.clamp(1, 1000);
        let (mut shard, mut last): (u8, Option<String>) = match after {
            Some(c) => {
                let (sh, sk) = c
                    .split_once(':')
                    .ok_or_else(|| StoreError::Corrupt("recipient cursor".into()))?;
                (
                    sh.parse()
                        .map_err(|_| StoreError::Corrupt("recipient cursor".into()))?,
                    Some(sk.to_string()),
                )
            }
            None => (0, None),
        };
        let mut rows: Vec<Recipient> = Vec::new();
        while shard < RECIPIENT_SHARDS {
            let mut start: Option<std::collections::HashMap<String, AttributeValue>> = last
                .as_ref()
                .map(|sk| key(recipient_pk(campaign_id, run, shard), sk.clone()));
            loop {
                let want = limit + 1 - rows.len();
                let mut q = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :p")
                    .expression_attribute_values(":p", s(recipient_pk(campaign_id, run, shard)))
                    .set_exclusive_start_key(start.take())
                    .limit(want.max(1) as i32);
                if let Some(st) = status {
                    q = q
                        .filter_expression("#st = :st")
                        .expression_attribute_names("#st", "status")
                        .expression_attribute_values(":st", s(st.as_str()));
                }
                let out = q.send().await.map_err(StoreError::sdk)?;
                for item in out.items.unwrap_or_default() {
                    rows.push(from_item(item)?);
                }
                if rows.len() > limit {
                    rows.truncate(limit);
                    let l = rows.last().expect("rows");
                    return Ok((rows.clone(), Some(format!("{}:{}", l.shard, l.sk))));
                }
                match out.last_evaluated_key {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
            shard += 1;
            last = None;
        }
        Ok((rows, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_round_trip_and_refuse_foreign_text() {
        assert_eq!(
            parse_callback("cmp:0191abc:3:+15551230001"),
            Some(("0191abc", 3, "+15551230001"))
        );
        assert_eq!(parse_callback("0191abc"), None);
        assert_eq!(parse_callback("cmp:bad id:1:+1"), None);
        assert_eq!(parse_callback("cmp:x:one:+1"), None);
        assert!(recipient_shard("+15551230001") < RECIPIENT_SHARDS);
    }
}
