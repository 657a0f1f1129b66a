//! Bots (`pk=BOTS`, `sk={id}`), synonym groups (`pk=BOTSYN`, `sk={id}`), the bot set's head
//! (`pk=BOTSET`, `sk=VERSION`) and each conversation's bot state (`pk=CONV#…`, `sk=BOTSTATE`).
//!
//! A bot or synonym group is stored as its JSON (`body`) beside the attributes DynamoDB
//! conditions on (`version`) and those counted in place (`send_count`, `last_fired_at`, which
//! never change the set). Every change of a bot or synonym group moves the set version in the
//! same transaction, so the bots function recompiles its trigger set only when it changed.
//!
//! The head also keeps the ids of the bots marked active (`active_ids`, a string set: each
//! bot save adds or deletes its own id in the same transaction, so concurrent saves of
//! different bots never lose each other's), which lets the inbound function skip the bots
//! function when no bot can answer ([`crate::bots::gate`]). The set is trusted only once
//! `tracked` is set: the first bot save of a new table sets it; on a table whose bots were
//! saved before the set existed, they are counted once (conditional on the version read), by
//! the first bot save ([`Store::count_active_bots`]) or the bots function's first compile
//! ([`Store::track_active_bots`]), whichever comes first.
//!
//! The conversation's bot state is versioned: a change is conditional on the version read,
//! and records the inbound messages it answered (`handled`, as short digests), so a message
//! handed off twice is answered once.
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::crud::{CrudError, TxOutcome};
use super::dynamo::{key, n, s};
use super::keys;
use super::{Store, StoreError};
use crate::bots::BotState;
use crate::bots::model::{Bot, SynonymGroup};

pub const BOTS_PK: &str = "BOTS";
pub const SYNONYMS_PK: &str = "BOTSYN";
const SET_PK: &str = "BOTSET";
const SET_SK: &str = "VERSION";
pub const BOT_STATE_SK: &str = "BOTSTATE";
/// Inbound messages remembered per conversation as answered (a redelivery comes soon after).
const HANDLED_KEPT: usize = 50;

/// How a handled message (a wamid, or a timer's key) is remembered: 72 bits of its SHA-256, in
/// 12 characters. A wamid is ~60 characters, and fifty of them made every save of a busy
/// conversation's state a 3–4 KB write (4 write units); fifty digests keep it under 1 KB.
/// A collision among one conversation's last fifty would take ~2^66 messages.
pub fn handled_key(wamid: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let d = sha2::Sha256::digest(wamid.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..9])
}

#[derive(Serialize, Deserialize)]
struct Stored {
    pk: String,
    sk: String,
    version: i64,
    body: String,
    #[serde(default)]
    send_count: i64,
    #[serde(default)]
    last_fired_at: Option<i64>,
}

fn decode_bot(st: Stored) -> Result<Bot, StoreError> {
    let mut b: Bot = serde_json::from_str(&st.body)
        .map_err(|e| StoreError::Dynamo(format!("bot {} does not read back: {e}", st.sk)))?;
    b.version = st.version;
    b.send_count = st.send_count;
    b.last_fired_at = st.last_fired_at;
    Ok(b)
}

/// The bot set's head: its version and which bots are marked active.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BotSetHead {
    /// 0: no bot or synonym group was ever saved.
    pub version: i64,
    /// `active_ids` is kept by every save (see the module); `false` on a table whose bots
    /// were saved before it was, until the bots function counted them.
    pub tracked: bool,
    /// Ids of the bots marked active (meaningful when `tracked`).
    pub active_ids: Vec<String>,
}

impl BotSetHead {
    /// Whether a bot may answer: one is marked active, or nobody counted them yet.
    pub fn may_answer(&self) -> bool {
        self.version > 0 && (!self.tracked || !self.active_ids.is_empty())
    }
}

/// The bots and synonym groups at one set version.
#[derive(Debug, Clone, Default)]
pub struct BotSet {
    pub version: i64,
    /// Whether the head's `active_ids` was kept when this set was read.
    pub tracked: bool,
    pub bots: Vec<Bot>,
    pub synonyms: Vec<SynonymGroup>,
}

/// A conversation's bot state as read, with what a conditional save needs.
#[derive(Debug, Clone, Default)]
pub struct StoredBotState {
    pub state: BotState,
    /// 0: none stored yet.
    pub version: i64,
    /// What was already answered (newest last): [`handled_key`]s of inbound wamids and
    /// timers (whole wamids in states saved before the digests).
    pub handled: Vec<String>,
}

impl StoredBotState {
    pub fn has_handled(&self, wamid: &str) -> bool {
        let key = handled_key(wamid);
        self.handled.iter().any(|h| *h == key || h == wamid)
    }
}

fn concurrent(what: &str) -> CrudError {
    CrudError::conflict(
        "concurrent_update",
        format!("the {what} changed meanwhile; read it again"),
    )
}

impl Store {
    /// The current set version (0 before any bot was saved).
    pub async fn bot_set_version(&self) -> Result<i64, StoreError> {
        Ok(self.bot_set_head().await?.version)
    }

    /// The set's head, strongly consistent (one read unit while it is under 4 KB: ~100 active
    /// bots).
    pub async fn bot_set_head(&self) -> Result<BotSetHead, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(SET_PK, SET_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let Some(item) = out.item else {
            // Nothing was ever saved: nothing to track either.
            return Ok(BotSetHead {
                tracked: true,
                ..Default::default()
            });
        };
        let version = match item.get("version") {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| StoreError::Dynamo(format!("bot set version {v:?}")))?,
            _ => 0,
        };
        let mut active_ids = match item.get("active_ids") {
            Some(AttributeValue::Ss(ids)) => ids.clone(),
            _ => Vec::new(),
        };
        active_ids.sort_unstable();
        Ok(BotSetHead {
            version,
            tracked: matches!(item.get("tracked"), Some(AttributeValue::Bool(true))),
            active_ids,
        })
    }

    /// Counts the active bots of a set read at `version` into the head (`active_ids`,
    /// `tracked`), unless the set changed since (`false`: the next compile counts again).
    pub async fn track_active_bots(
        &self,
        version: i64,
        active_ids: &[String],
    ) -> Result<bool, StoreError> {
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(SET_PK, SET_SK)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(version))
            .expression_attribute_values(":t", AttributeValue::Bool(true));
        u = if active_ids.is_empty() {
            u.update_expression("SET tracked = :t REMOVE active_ids")
        } else {
            u.update_expression("SET tracked = :t, active_ids = :ids")
                .expression_attribute_values(":ids", AttributeValue::Ss(active_ids.to_vec()))
        };
        super::dynamo::applied(u.send().await)
    }

    /// Every bot and synonym group, with the set version read first (a change meanwhile moves
    /// the version past it, so the caller reloads next time).
    pub async fn bot_set(&self) -> Result<BotSet, StoreError> {
        let BotSetHead {
            version, tracked, ..
        } = self.bot_set_head().await?;
        let bots = self
            .partition_all::<Stored>(BOTS_PK)
            .await?
            .into_iter()
            .map(decode_bot)
            .collect::<Result<Vec<_>, _>>()?;
        let synonyms = self
            .partition_all::<Stored>(SYNONYMS_PK)
            .await?
            .into_iter()
            .map(|st| {
                let mut g: SynonymGroup = serde_json::from_str(&st.body).map_err(|e| {
                    StoreError::Dynamo(format!("synonym group {} does not read back: {e}", st.sk))
                })?;
                g.version = st.version;
                Ok(g)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(BotSet {
            version,
            tracked,
            bots,
            synonyms,
        })
    }

    /// Bots in creation order, after the id `after`.
    pub async fn bots_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Bot>, Option<String>), StoreError> {
        let (rows, next) = self.partition_page::<Stored>(BOTS_PK, after, limit).await?;
        let bots = rows
            .into_iter()
            .map(decode_bot)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((bots, next))
    }

    pub async fn bot(&self, id: &str) -> Result<Option<Bot>, StoreError> {
        self.get::<Stored>(BOTS_PK.into(), id)
            .await?
            .map(decode_bot)
            .transpose()
    }

    /// The head's part of a change: the version moves; a bot's id joins or leaves
    /// `active_ids` (`activity`: the bot's id and whether it is active after the change).
    fn set_bump(&self, activity: Option<(&str, bool)>) -> TransactWriteItem {
        let u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(SET_PK, SET_SK)))
            .expression_attribute_values(":one", n(1));
        let u = match activity {
            None => u.update_expression("ADD version :one"),
            // Kept only over a head that keeps it (or a new one): over one whose bots were
            // saved before, the change waits until they are counted (`change_set`).
            Some((id, active)) => u
                .update_expression(if active {
                    "ADD version :one, active_ids :id SET tracked = :yes"
                } else {
                    "ADD version :one DELETE active_ids :id SET tracked = :yes"
                })
                .condition_expression("tracked = :yes OR attribute_not_exists(version)")
                .expression_attribute_values(":id", AttributeValue::Ss(vec![id.to_string()]))
                .expression_attribute_values(":yes", AttributeValue::Bool(true)),
        };
        TransactWriteItem::builder()
            .update(u.build().expect("set version update"))
            .build()
    }

    /// Runs a change of the set (`items`, the head's part last). A bot's change over a head
    /// whose active bots were never counted counts them first, then runs again.
    async fn change_set(
        &self,
        items: Vec<TransactWriteItem>,
        bot: bool,
    ) -> Result<TxOutcome, StoreError> {
        let head = items.len() - 1;
        // A count fails when the set changed meanwhile (another save): counted again.
        let mut counts = 0;
        loop {
            match self.transact(items.clone()).await? {
                TxOutcome::ConditionFailed(i) if bot && i == head && counts < 3 => {
                    self.count_active_bots().await?;
                    counts += 1;
                }
                outcome => return Ok(outcome),
            }
        }
    }

    /// Counts the bots marked active into the head, if nobody did (a table whose bots were
    /// saved before the head kept them). `false`: the set changed meanwhile.
    pub async fn count_active_bots(&self) -> Result<bool, StoreError> {
        let head = self.bot_set_head().await?;
        if head.tracked {
            return Ok(true);
        }
        let mut active = Vec::new();
        for st in self.partition_all::<Stored>(BOTS_PK).await? {
            let b = decode_bot(st)?;
            if b.is_bot_active {
                active.push(b.id);
            }
        }
        active.sort_unstable();
        self.track_active_bots(head.version, &active).await
    }

    /// Writes `body` under (`pk`, `id`): new (`expected` = None) or replacing `expected`'s
    /// version; the set version moves with it.
    async fn put_versioned(
        &self,
        pk: &str,
        id: &str,
        body: String,
        expected: Option<i64>,
        what: &str,
        active: Option<bool>,
    ) -> Result<i64, CrudError> {
        let version = expected.map_or(1, |v| v + 1);
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(id))
            .item("version", n(version))
            .item("body", s(body));
        put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(v)),
        };
        // Keep the counters counted in place.
        let put = if expected.is_some() {
            let current: Option<Stored> = self.get(pk.into(), id).await?;
            let mut put = put;
            if let Some(c) = current {
                put = put.item("send_count", n(c.send_count));
                if let Some(t) = c.last_fired_at {
                    put = put.item("last_fired_at", n(t));
                }
            }
            put
        } else {
            put
        };
        let items = vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(|e| StoreError::Dynamo(e.to_string()))?)
                .build(),
            self.set_bump(active.map(|a| (id, a))),
        ];
        match self.change_set(items, active.is_some()).await? {
            TxOutcome::Done => Ok(version),
            TxOutcome::ConditionFailed(0) if expected.is_none() => Err(CrudError::conflict(
                "already_exists",
                format!("{what} {id} already exists"),
            )),
            _ => Err(concurrent(what)),
        }
    }

    async fn delete_versioned(
        &self,
        pk: &str,
        id: &str,
        what: &str,
        bot: bool,
    ) -> Result<(), CrudError> {
        let current: Stored = self
            .get(pk.into(), id)
            .await?
            .ok_or_else(|| CrudError::NotFound(what.into()))?;
        let items = vec![
            self.tx_delete(
                pk.into(),
                id,
                Some("version = :v"),
                vec![(":v", n(current.version))],
            )?,
            self.set_bump(bot.then_some((id, false))),
        ];
        match self.change_set(items, bot).await? {
            TxOutcome::Done => Ok(()),
            _ => Err(concurrent(what)),
        }
    }

    /// Saves a new bot (`bot.version` ignored) → its version.
    pub async fn create_bot(&self, bot: &Bot) -> Result<i64, CrudError> {
        self.put_versioned(
            BOTS_PK,
            &bot.id,
            bot_body(bot)?,
            None,
            "bot",
            Some(bot.is_bot_active),
        )
        .await
    }

    /// Replaces the bot stored at `expected_version` (409 `concurrent_update` otherwise).
    pub async fn update_bot(&self, bot: &Bot, expected_version: i64) -> Result<i64, CrudError> {
        self.put_versioned(
            BOTS_PK,
            &bot.id,
            bot_body(bot)?,
            Some(expected_version),
            "bot",
            Some(bot.is_bot_active),
        )
        .await
    }

    pub async fn delete_bot(&self, id: &str) -> Result<(), CrudError> {
        self.delete_versioned(BOTS_PK, id, "bot", true).await
    }

    /// Counts a bot's sends (never changes the set version).
    pub async fn count_bot_sends(
        &self,
        bot_id: &str,
        sends: i64,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(BOTS_PK, bot_id)))
            .update_expression(
                "ADD send_count :n SET last_fired_at = if_not_exists(last_fired_at, :t)",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":n", n(sends))
            .expression_attribute_values(":t", n(at_ms))
            .send()
            .await;
        super::dynamo::applied(r)?;
        // The latest fire time (a plain SET would let an older retry move it back).
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(BOTS_PK, bot_id)))
            .update_expression("SET last_fired_at = :t")
            .condition_expression("attribute_exists(pk) AND last_fired_at < :t")
            .expression_attribute_values(":t", n(at_ms))
            .send()
            .await;
        super::dynamo::applied(r)?;
        Ok(())
    }

    pub async fn synonym_groups(&self) -> Result<Vec<SynonymGroup>, StoreError> {
        Ok(self.bot_set().await?.synonyms)
    }

    pub async fn synonym_group(&self, id: &str) -> Result<Option<SynonymGroup>, StoreError> {
        self.get::<Stored>(SYNONYMS_PK.into(), id)
            .await?
            .map(|st| {
                let mut g: SynonymGroup = serde_json::from_str(&st.body)
                    .map_err(|e| StoreError::Dynamo(e.to_string()))?;
                g.version = st.version;
                Ok(g)
            })
            .transpose()
    }

    pub async fn create_synonym_group(&self, g: &SynonymGroup) -> Result<i64, CrudError> {
        self.put_versioned(
            SYNONYMS_PK,
            &g.id,
            group_body(g)?,
            None,
            "synonym group",
            None,
        )
        .await
    }

    pub async fn update_synonym_group(
        &self,
        g: &SynonymGroup,
        expected_version: i64,
    ) -> Result<i64, CrudError> {
        self.put_versioned(
            SYNONYMS_PK,
            &g.id,
            group_body(g)?,
            Some(expected_version),
            "synonym group",
            None,
        )
        .await
    }

    pub async fn delete_synonym_group(&self, id: &str) -> Result<(), CrudError> {
        self.delete_versioned(SYNONYMS_PK, id, "synonym group", false)
            .await
    }

    /// The conversation's bot state (default when none is stored).
    pub async fn bot_state(
        &self,
        phone_number_id: &str,
        customer_id: &str,
    ) -> Result<StoredBotState, StoreError> {
        #[derive(Deserialize)]
        struct Row {
            version: i64,
            body: String,
            #[serde(default)]
            handled: Vec<String>,
        }
        let row: Option<Row> = self
            .get(
                keys::conversation_pk(phone_number_id, customer_id),
                BOT_STATE_SK,
            )
            .await?;
        Ok(match row {
            None => StoredBotState::default(),
            Some(r) => StoredBotState {
                state: serde_json::from_str(&r.body).map_err(|e| {
                    StoreError::Dynamo(format!("bot state does not read back: {e}"))
                })?,
                version: r.version,
                handled: r.handled,
            },
        })
    }

    /// Saves `state` over the version read (`read.version`), recording `handled_wamid` as
    /// answered. `false` when another writer saved first (read again and re-evaluate).
    pub async fn save_bot_state(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        read: &StoredBotState,
        state: &BotState,
        handled_wamid: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut handled = read.handled.clone();
        if let Some(w) = handled_wamid
            && !read.has_handled(w)
        {
            handled.push(handled_key(w));
        }
        let excess = handled.len().saturating_sub(HANDLED_KEPT);
        handled.drain(..excess);
        let body = serde_json::to_string(state).map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let mut item: HashMap<String, AttributeValue> = HashMap::from([
            (
                "pk".to_string(),
                s(keys::conversation_pk(phone_number_id, customer_id)),
            ),
            ("sk".to_string(), s(BOT_STATE_SK)),
            ("version".to_string(), n(read.version + 1)),
            ("body".to_string(), s(body)),
        ]);
        if !handled.is_empty() {
            item.insert(
                "handled".into(),
                AttributeValue::L(handled.into_iter().map(AttributeValue::S).collect()),
            );
        }
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        put = if read.version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", n(read.version))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if super::dynamo::is_conditional_failure_put(&e) => Ok(false),
            Err(e) => Err(StoreError::sdk(e)),
        }
    }
}

fn bot_body(b: &Bot) -> Result<String, CrudError> {
    serde_json::to_string(b).map_err(|e| CrudError::Store(StoreError::Dynamo(e.to_string())))
}

fn group_body(g: &SynonymGroup) -> Result<String, CrudError> {
    serde_json::to_string(g).map_err(|e| CrudError::Store(StoreError::Dynamo(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_messages_are_remembered_by_short_digests() {
        let w = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA";
        let k = handled_key(w);
        assert_eq!(k.len(), 12);
        assert_eq!(k, handled_key(w));
        assert_ne!(
            k,
            handled_key("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUB")
        );
        let st = StoredBotState {
            handled: vec![handled_key("timer:b1:5"), k.clone()],
            ..Default::default()
        };
        assert!(st.has_handled(w));
        assert!(st.has_handled("timer:b1:5"));
        assert!(!st.has_handled("wamid.other"));
        // A state saved before the digests still knows its whole wamids.
        let old = StoredBotState {
            handled: vec![w.to_string()],
            ..Default::default()
        };
        assert!(old.has_handled(w));
        // Fifty of them fit a 1 KB item with room for the state's body.
        assert!(HANDLED_KEPT * (k.len() + 1) <= 650);
    }
}
