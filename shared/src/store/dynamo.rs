//! The table's client (`Store`), its shared helpers and error type, and the conversation and
//! message reads that have no module of their own yet; each kind of item has its own module.
use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::keys;
use super::model::*;

pub use super::directory_records::DirectoryOutcome;
pub use super::statuses::{StatusOutcome, StatusUpdate};

pub(crate) type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DynamoDB call failed: {0}")]
    Dynamo(String),
    #[error("stored item is not readable: {0}")]
    Corrupt(String),
    /// DynamoDB refused the request itself (`ValidationException`: an item over 400 KB, a key
    /// too long …): retrying the same request can never succeed.
    #[error("DynamoDB refused the request: {0}")]
    Refused(String),
}

impl StoreError {
    pub(crate) fn sdk<E, R>(e: SdkError<E, R>) -> Self
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        use aws_sdk_dynamodb::error::ProvideErrorMetadata;
        if e.code() == Some("ValidationException") {
            return StoreError::Refused(DisplayErrorContext(&e).to_string());
        }
        StoreError::Dynamo(DisplayErrorContext(&e).to_string())
    }

    /// Whether the same call can never succeed (park the record rather than retry it).
    pub fn is_permanent(&self) -> bool {
        matches!(self, StoreError::Corrupt(_) | StoreError::Refused(_))
    }
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(e: serde_dynamo::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub(crate) fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}
pub(crate) fn to_item<T: Serialize>(v: &T) -> Result<Item, StoreError> {
    Ok(serde_dynamo::to_item(v)?)
}
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}

/// Outcome of storing a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored now, with what the bots' gate reads of the conversation.
    Stored(StoredFacts),
    /// The wamid was stored before: a redelivery.
    Duplicate,
}

/// What storing a message learnt of its conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredFacts {
    /// A customer's message that is the conversation's first customer message (the bots'
    /// trigger 3).
    pub first_inbound: bool,
    /// A customer's message that opens a 24-hour session (trigger 7).
    pub session_start: bool,
    /// The conversation's `bots_hold_until` as read before.
    pub bots_hold_until: Option<i64>,
    /// A customer's message to a conversation that had customer messages before it kept its
    /// first one (`first_inbound_wamid`): from before the bots' hold existed, so a menu, flow
    /// or rating in progress there holds nothing yet.
    pub predates_hold: bool,
}

/// Everything the inbound function writes for one message.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message: MessageItem,
    pub conversation: ConversationFacts,
    /// Counts toward unread (an inbound customer message).
    pub unread: bool,
    /// A customer's message that moves the 24-hour window (not a call event, not ours).
    pub opens_window: bool,
}

/// Conversation attributes written with a message.
#[derive(Debug, Clone)]
pub struct ConversationFacts {
    pub phone_number_id: String,
    pub customer: Customer,
    pub rel_type: RelType,
    pub rel_id: Option<String>,
    pub shard: u8,
    pub now_ms: i64,
}

pub const WINDOW_MS: i64 = 24 * 3600 * 1000;

#[derive(Clone)]
pub struct Store {
    pub(crate) client: Client,
    pub(crate) table: String,
    shards: u8,
    /// Messages expire this long after Meta's timestamp (seconds; `None`: kept).
    message_ttl_secs: Option<i64>,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>, shards: u8) -> Self {
        Self {
            client,
            table: table.into(),
            shards: shards.max(1),
            message_ttl_secs: None,
        }
    }

    /// Messages and their status records expire `days` after Meta's timestamp (DynamoDB TTL;
    /// the retention setting, `MessageRetentionDays`); 0 keeps them.
    pub fn with_message_retention_days(mut self, days: u32) -> Self {
        self.message_ttl_secs = (days > 0).then(|| i64::from(days) * 86_400);
        self
    }

    pub(super) fn message_ttl(&self, timestamp_ms: i64) -> Option<i64> {
        self.message_ttl_secs.map(|t| timestamp_ms / 1000 + t)
    }

    pub fn shards(&self) -> u8 {
        self.shards
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        out.item.map(from_item).transpose()
    }

    /// Put that succeeds only if the item does not exist; `Ok(false)` when it did.
    pub(crate) async fn put_new<T: Serialize>(&self, item: &T) -> Result<bool, StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(item)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure_put(&e) => Ok(false),
            Err(e) => Err(StoreError::sdk(e)),
        }
    }

    // ---------- messages & conversations ----------

    pub async fn conversation(
        &self,
        phone_number_id: &str,
        customer_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        self.get(
            keys::conversation_pk(phone_number_id, customer_id),
            keys::CONV_SK,
        )
        .await
    }

    /// Writes a new conversation unless it exists; answers the stored one. A business-initiated
    /// send writes its conversation first, so a send whose answer is lost can be settled into
    /// it by its first status.
    pub async fn create_conversation(&self, c: &Conversation) -> Result<Conversation, StoreError> {
        if self.put_new(c).await? {
            return Ok(c.clone());
        }
        self.conversation(&c.phone_number_id, &c.customer_id)
            .await?
            .ok_or_else(|| StoreError::Dynamo("conversation vanished after a conflict".into()))
    }

    /// Inbox of some `rel_type`s, newest activity first, strictly older than `before` (a GSI1
    /// sort key from the previous page). Queries every shard of each and merges: the sort key
    /// `{activity}#{conversation id}` is globally ordered, so one key is a cursor for all shards.
    pub async fn inbox(
        &self,
        rel_types: &[RelType],
        before: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Conversation>, Option<String>), StoreError> {
        let limit = limit.clamp(1, 100);
        let parts: Vec<(RelType, u8)> = rel_types
            .iter()
            .flat_map(|r| (0..self.shards).map(move |s| (*r, s)))
            .collect();
        let queries = parts.into_iter().map(|(rel_type, shard)| {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("GSI1")
                .scan_index_forward(false)
                .limit(limit as i32 + 1)
                .expression_attribute_values(":p", s(keys::inbox_pk(rel_type.as_str(), shard)));
            q = match before {
                Some(b) => q
                    .key_condition_expression("gsi1pk = :p AND gsi1sk < :b")
                    .expression_attribute_values(":b", s(b)),
                None => q.key_condition_expression("gsi1pk = :p"),
            };
            q.send()
        });
        let mut all = Vec::new();
        for r in futures::future::join_all(queries).await {
            let out = r.map_err(StoreError::sdk)?;
            for it in out.items.unwrap_or_default() {
                all.push(from_item::<Conversation>(it)?);
            }
        }
        all.sort_by(|a, b| b.gsi1sk.cmp(&a.gsi1sk));
        let more = all.len() > limit;
        all.truncate(limit);
        let next = if more {
            all.last().and_then(|c| c.gsi1sk.clone())
        } else {
            None
        };
        Ok((all, next))
    }

    /// History of a conversation in order, after sort key `after`; outbound messages come with
    /// their delivery state.
    pub async fn messages(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(MessageItem, Option<Delivery>)>, Option<String>), StoreError> {
        let limit = limit.clamp(1, 200);
        let pk = keys::conversation_pk(phone_number_id, customer_id);
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .limit(limit as i32 + 1)
            .expression_attribute_values(":p", s(&pk));
        q = match after {
            Some(a) => q
                .key_condition_expression("pk = :p AND sk BETWEEN :a AND :z")
                .expression_attribute_values(":a", s(format!("{a}\u{0}")))
                .expression_attribute_values(":z", s(format!("{}\u{10FFFF}", keys::MSG_PREFIX))),
            None => q
                .key_condition_expression("pk = :p AND begins_with(sk, :m)")
                .expression_attribute_values(":m", s(keys::MSG_PREFIX)),
        };
        let out = q.send().await.map_err(StoreError::sdk)?;
        let mut msgs: Vec<MessageItem> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        let more = msgs.len() > limit;
        msgs.truncate(limit);
        let next = if more {
            msgs.last().map(|m| m.sk.clone())
        } else {
            None
        };
        let wanted: Vec<&str> = msgs
            .iter()
            .filter(|m| m.direction == Direction::Outbound)
            .map(|m| m.wamid.as_str())
            .collect();
        let deliveries = self.deliveries(&wanted).await?;
        let rows = msgs
            .into_iter()
            .map(|m| {
                let d = deliveries.get(&m.wamid).cloned();
                (m, d)
            })
            .collect();
        Ok((rows, next))
    }

    pub async fn delivery(&self, wamid: &str) -> Result<Option<Delivery>, StoreError> {
        self.get(keys::wamid_pk(wamid), keys::WAMID_SK).await
    }

    async fn deliveries(&self, wamids: &[&str]) -> Result<HashMap<String, Delivery>, StoreError> {
        let items = self
            .batch_get(
                wamids
                    .iter()
                    .map(|w| key(keys::wamid_pk(w), keys::WAMID_SK))
                    .collect(),
                None,
            )
            .await?;
        let mut found = HashMap::new();
        for it in items {
            let d: Delivery = from_item(it)?;
            let w = d.pk.trim_start_matches("WAMID#").to_string();
            found.insert(w, d);
        }
        Ok(found)
    }

    // ---------- business-account events ----------

    /// Business-level events (account updates, value-level errors) kept as a log.
    pub async fn record_business_event(
        &self,
        pk: &str,
        dedupe: &str,
        kind: &str,
        raw: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut item = key(pk, format!("{at_ms:013}#{dedupe}"));
        item.insert("kind".into(), s(kind));
        item.insert("raw".into(), s(raw));
        item.insert("at".into(), n(at_ms));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }
}

pub(super) fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
        Direction::Internal => "internal",
    }
}

pub fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

pub(crate) fn is_conditional_failure_put<R>(
    e: &SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception())
}

/// A conditional update's outcome: `Ok(false)` when its condition did not hold.
pub(crate) fn applied<T, R: std::fmt::Debug>(
    r: Result<T, SdkError<UpdateItemError, R>>,
) -> Result<bool, StoreError> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if is_conditional_failure_update(&e) => Ok(false),
        Err(e) => Err(StoreError::sdk(e)),
    }
}

pub(crate) fn is_conditional_failure_update<R>(e: &SdkError<UpdateItemError, R>) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().is_conditional_check_failed_exception())
}

pub(crate) fn cancellation_codes<R>(
    e: &SdkError<TransactWriteItemsError, R>,
) -> Option<Vec<String>> {
    match e {
        SdkError::ServiceError(se) => match se.err() {
            TransactWriteItemsError::TransactionCanceledException(t) => Some(
                t.cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_string())
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}

impl Store {
    /// Records a send intent unless one exists under the same id; returns the existing one.
    pub async fn record_intent(
        &self,
        intent: &SendIntent,
    ) -> Result<Option<SendIntent>, StoreError> {
        if self.put_new(intent).await? {
            return Ok(None);
        }
        self.intent(&intent.msg_id).await
    }

    pub async fn intent(&self, msg_id: &str) -> Result<Option<SendIntent>, StoreError> {
        self.get(keys::send_intent_pk(msg_id), keys::OUT_SK).await
    }

    /// Records Meta's answer to an intent. `from` lists the states it may leave (a settled
    /// intent is never moved back).
    pub async fn finish_intent(
        &self,
        msg_id: &str,
        state: SendState,
        wamid: Option<&str>,
        error: Option<(i64, &str, &str)>,
        now_ms: i64,
        from: &[SendState],
    ) -> Result<bool, StoreError> {
        let state_str = |s: SendState| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let mut set = vec!["#state = :s".to_string(), "updated_at = :now".into()];
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::send_intent_pk(msg_id), keys::OUT_SK)))
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":s", s(state_str(state)))
            .expression_attribute_values(":now", n(now_ms));
        if let Some(w) = wamid {
            set.push("wamid = :w".into());
            b = b.expression_attribute_values(":w", s(w));
        }
        if let Some((code, class, message)) = error {
            set.push("error_code = :ec, error_class = :el, error_message = :em".into());
            b = b
                .expression_attribute_values(":ec", n(code))
                .expression_attribute_values(":el", s(class))
                .expression_attribute_values(":em", s(truncate(message, 500)));
        }
        let mut cond = Vec::new();
        for (i, f) in from.iter().enumerate() {
            cond.push(format!("#state = :f{i}"));
            b = b.expression_attribute_values(format!(":f{i}"), s(state_str(*f)));
        }
        b = b.condition_expression(format!("attribute_exists(pk) AND ({})", cond.join(" OR ")));
        applied(
            b.update_expression(format!("SET {}", set.join(", ")))
                .send()
                .await,
        )
    }

    /// Sets (or clears) the conversation's assignee.
    pub async fn assign(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        assignee: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut b = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation_pk(phone_number_id, customer_id),
                keys::CONV_SK,
            )))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now_ms));
        b = match assignee {
            Some(a) => b
                .update_expression("SET assignee = :a, assigned_at = :now")
                .expression_attribute_values(":a", s(a)),
            None => b.update_expression("REMOVE assignee SET assigned_at = :now"),
        };
        let done = applied(b.send().await)?;
        if done {
            self.sync_unread(phone_number_id, customer_id).await?;
        }
        Ok(done)
    }

    /// Marks the conversation read (unread back to 0).
    pub async fn mark_read(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation_pk(phone_number_id, customer_id),
                keys::CONV_SK,
            )))
            .update_expression("SET unread = :z, read_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":z", n(0))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        let done = applied(r)?;
        if done {
            self.sync_unread(phone_number_id, customer_id).await?;
        }
        Ok(done)
    }

    /// Adds a ticket reference to the conversation (shown with it and in its history).
    pub async fn add_ticket(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        ticket_ref: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                keys::conversation_pk(phone_number_id, customer_id),
                keys::CONV_SK,
            )))
            .update_expression("ADD tickets :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Ss(vec![ticket_ref.to_string()]))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }

    /// Writes an item of a conversation's history that is not a WhatsApp message (e.g. a
    /// ticket request); idempotent on its sort key.
    pub async fn put_history_note(&self, note: &MessageItem) -> Result<(), StoreError> {
        self.put_new(note).await?;
        Ok(())
    }
}

/// An outbound message Meta accepted, to be stored in its conversation's history.
pub struct AcceptedOutbound<'a> {
    pub conversation: &'a Conversation,
    pub wamid: &'a str,
    pub kind: &'a str,
    pub timestamp_ms: i64,
    pub summary: &'a str,
    /// The request body we sent.
    pub raw: &'a str,
    pub staff_id: Option<&'a str>,
    pub source: &'a str,
    pub now_ms: i64,
}

impl Store {
    /// Stores an accepted outbound message (idempotent on its wamid) so its statuses update it,
    /// and moves the conversation's activity (not its window).
    pub async fn store_outbound(
        &self,
        o: &AcceptedOutbound<'_>,
    ) -> Result<StoreOutcome, StoreError> {
        let c = o.conversation;
        let shard = keys::shard_of(&c.conversation_id, self.shards);
        let customer = Customer {
            pk: keys::customer_pk(&c.customer_id),
            sk: keys::PROFILE_SK.into(),
            customer_id: c.customer_id.clone(),
            wa_id: c.wa_id.clone(),
            bsuid: c.bsuid.clone(),
            e164: c.customer_phone.clone(),
            name: c.customer_name.clone(),
            marketing_opt_out: false,
            marketing_pref_at: None,
            created_at: c.created_at,
            previous_wa_ids: Vec::new(),
            aliases: Vec::new(),
            phone_number_ids: Vec::new(),
        };
        let message = MessageItem {
            pk: keys::conversation_pk(&c.phone_number_id, &c.customer_id),
            sk: keys::message_sk(o.timestamp_ms, o.wamid),
            wamid: o.wamid.to_string(),
            conversation_id: c.conversation_id.clone(),
            direction: Direction::Outbound,
            kind: o.kind.to_string(),
            timestamp: o.timestamp_ms,
            summary: truncate(o.summary, 1000),
            raw: o.raw.to_string(),
            source: o.source.to_string(),
            context_wamid: None,
            staff_id: o.staff_id.map(str::to_string),
            stored_at: o.now_ms,
            media_id: None,
            media_state: None,
            media_error: None,
        };
        let outcome = self
            .store_message(&NewMessage {
                message,
                conversation: ConversationFacts {
                    phone_number_id: c.phone_number_id.clone(),
                    customer,
                    rel_type: c.rel_type,
                    rel_id: c.rel_id.clone(),
                    shard,
                    now_ms: o.now_ms,
                },
                unread: false,
                opens_window: false,
            })
            .await?;
        if o.staff_id.is_some() {
            self.note_staff_reply(&c.phone_number_id, &c.customer_id, o.timestamp_ms)
                .await?;
        }
        Ok(outcome)
    }

    /// The latest `limit` items of a conversation's history, oldest first.
    pub async fn recent_messages(
        &self,
        phone_number_id: &str,
        customer_id: &str,
        limit: usize,
    ) -> Result<Vec<MessageItem>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :m)")
            .expression_attribute_values(
                ":p",
                s(keys::conversation_pk(phone_number_id, customer_id)),
            )
            .expression_attribute_values(":m", s(keys::MSG_PREFIX))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 200) as i32)
            .send()
            .await
            .map_err(StoreError::sdk)?;
        let mut v: Vec<MessageItem> = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<_, _>>()?;
        v.reverse();
        Ok(v)
    }
}

impl Store {
    /// Generic typed read of one item (for small modules owning their own item types).
    pub async fn get_item<T: DeserializeOwned>(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get(pk, sk).await
    }

    /// Generic conditional create; `Ok(false)` when the item existed.
    pub async fn put_item_new<T: Serialize>(&self, item: &T) -> Result<bool, StoreError> {
        self.put_new(item).await
    }

    pub async fn set_upload_media(
        &self,
        upload_id: &str,
        media_id: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("UPLOAD#{upload_id}"), "UPLOAD")))
            .update_expression("SET media_id = :m")
            .expression_attribute_values(":m", s(media_id))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(())
    }
}
