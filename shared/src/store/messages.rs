//! Storing a message in its conversation (`pk=CONV#…`, `sk=MSG#{meta_ts_ms:013}#{wamid}`) with
//! everything it changes, in ONE transaction:
//!
//! - the message: its key is the deduplication (a redelivery finds it and changes nothing);
//! - for a message the business sent, its delivery record (`pk=WAMID#{wamid}`), where its
//!   statuses land and which also refuses the same wamid stored under another time (a
//!   customer's message has no statuses: its own key is enough);
//! - the conversation: identity, counters, last activity and inbox position (never moved back
//!   by an older message), the 24-hour window for a customer's message, and the unread
//!   contribution it records ([`super::unread`]);
//! - the unread counters that contribution moves.
//!
//! The conversation's part is computed from the conversation as read just before (strongly
//! consistent), and the transaction is conditional on what that computation used being
//! unchanged: a concurrent writer (a staff member reading the conversation, an assignment)
//! makes it read again and retry. A customer's message to an existing conversation costs one
//! read and a transaction of three items (6 write units); it was a transaction of three items,
//! two updates and a second transaction of two (12 write units), with a crash between them
//! leaving the conversation behind until its next message.
use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};

use super::dynamo::{
    Item, NewMessage, StoreOutcome, StoredFacts, WINDOW_MS, cancellation_codes, direction_str, key,
    n, s, to_item, truncate,
};
use super::keys;
use super::model::Direction;
use super::unread::{
    Contribution, MAX_ATTEMPTS, attr_n, attr_s, backoff, bucket, counter_update, moves, retryable,
};
use super::{Store, StoreError};

/// `first_inbound_wamid` of a conversation whose first customer message came before the
/// attribute was kept.
pub const FIRST_INBOUND_EARLIER: &str = "-";

/// What storing a message reads of its conversation, and conditions its write on.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Before {
    pub(super) exists: bool,
    pub(super) unread: Option<i64>,
    pub(super) counted_unread: Option<i64>,
    pub(super) counted_bucket: Option<String>,
    pub(super) assignee: Option<String>,
    pub(super) last_message_at: Option<i64>,
    pub(super) last_inbound_at: Option<i64>,
    pub(super) window_expires_at: Option<i64>,
    /// Read, not conditioned on (nothing here is decided from them).
    pub(super) bots_hold_until: Option<i64>,
    pub(super) first_inbound_wamid: Option<String>,
}

/// What storing a message reads of its conversation besides [`READ`] (for the bots' gate).
const ALSO_READ: [&str; 2] = ["bots_hold_until", "first_inbound_wamid"];

/// The attributes of [`Before`] (besides `pk`).
const READ: [&str; 7] = [
    "unread",
    "counted_unread",
    "counted_bucket",
    "assignee",
    "last_message_at",
    "last_inbound_at",
    "window_expires_at",
];

impl Before {
    fn from_item(item: Option<Item>) -> Self {
        let Some(item) = item.filter(|i| i.contains_key("pk")) else {
            return Self::default();
        };
        Self {
            exists: true,
            unread: attr_n(&item, "unread"),
            counted_unread: attr_n(&item, "counted_unread"),
            counted_bucket: attr_s(&item, "counted_bucket").map(str::to_string),
            assignee: attr_s(&item, "assignee").map(str::to_string),
            last_message_at: attr_n(&item, "last_message_at"),
            last_inbound_at: attr_n(&item, "last_inbound_at"),
            window_expires_at: attr_n(&item, "window_expires_at"),
            bots_hold_until: attr_n(&item, "bots_hold_until"),
            first_inbound_wamid: attr_s(&item, "first_inbound_wamid").map(str::to_string),
        }
    }

    /// Each read attribute as it was (`None`: absent).
    fn values(&self) -> [(&'static str, Option<AttributeValue>); 7] {
        let num = |v: Option<i64>| v.map(n);
        let text = |v: &Option<String>| v.as_deref().map(s);
        [
            ("unread", num(self.unread)),
            ("counted_unread", num(self.counted_unread)),
            ("counted_bucket", text(&self.counted_bucket)),
            ("assignee", text(&self.assignee)),
            ("last_message_at", num(self.last_message_at)),
            ("last_inbound_at", num(self.last_inbound_at)),
            ("window_expires_at", num(self.window_expires_at)),
        ]
    }
}

/// An update expression with its names (`#attr`) and values, each registered when used.
#[derive(Debug, Default)]
struct Expression {
    set: Vec<String>,
    add: Vec<String>,
    condition: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_string());
        placeholder
    }

    fn value(&mut self, placeholder: &str, v: AttributeValue) -> String {
        self.values.insert(placeholder.to_string(), v);
        placeholder.to_string()
    }

    fn set(&mut self, attr: &str, v: AttributeValue) {
        let name = self.name(attr);
        let value = self.value(&format!(":{attr}"), v);
        self.set.push(format!("{name} = {value}"));
    }

    fn add(&mut self, attr: &str, v: i64) {
        let name = self.name(attr);
        let value = self.value(&format!(":{attr}"), n(v));
        self.add.push(format!("{name} {value}"));
    }

    /// `attr` is still `was` (absent for `None`).
    fn unchanged(&mut self, attr: &str, was: Option<AttributeValue>) {
        let name = self.name(attr);
        let clause = match was {
            Some(v) => {
                let value = self.value(&format!(":was_{attr}"), v);
                format!("{name} = {value}")
            }
            None => format!("attribute_not_exists({name})"),
        };
        self.condition.push(clause);
    }

    fn update_expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        parts.join(" ")
    }
}

/// The conversation's part of storing `m`, given the conversation as it was.
#[derive(Debug)]
struct ConversationWrite {
    expression: Expression,
    /// Unread counter changes: `(bucket, messages, conversations)`.
    counters: Vec<(String, i64, i64)>,
    /// The conversation's first customer message.
    first_inbound: bool,
    /// A customer's message that opens a 24-hour session.
    session_start: bool,
}

fn plan(before: &Before, m: &NewMessage) -> ConversationWrite {
    let f = &m.conversation;
    let msg = &m.message;
    let at = msg.timestamp;
    let conv_id = keys::conversation_id(&f.phone_number_id, &f.customer.customer_id);
    let mut e = Expression::default();

    // Who the conversation is with, and how it is filed.
    e.set("customer_id", s(&f.customer.customer_id));
    e.set("phone_number_id", s(&f.phone_number_id));
    e.set("conversation_id", s(&conv_id));
    e.set("rel_type", s(f.rel_type.as_str()));
    e.set("gsi1pk", s(keys::inbox_pk(f.rel_type.as_str(), f.shard)));
    for (attr, v) in [
        ("rel_id", f.rel_id.as_deref()),
        ("wa_id", f.customer.wa_id.as_deref()),
        ("bsuid", f.customer.bsuid.as_deref()),
        ("customer_phone", f.customer.e164.as_deref()),
        ("customer_name", f.customer.name.as_deref()),
    ] {
        if let Some(v) = v {
            e.set(attr, s(v));
        }
    }
    let created = e.name("created_at");
    let now = e.value(":now", n(f.now_ms));
    e.set
        .push(format!("{created} = if_not_exists({created}, {now})"));
    e.add("message_count", 1);
    let unread_delta = i64::from(m.unread);
    e.add("unread", unread_delta);

    // Last activity and inbox position: forward only (an older message arriving late leaves
    // them).
    if before.last_message_at.is_none_or(|t| t <= at) {
        e.set("last_message_at", n(at));
        e.set("last_message_preview", s(truncate(&msg.summary, 200)));
        e.set("gsi1sk", s(keys::inbox_sk(at, &conv_id)));
    }

    // The customer-service window: a customer's newer message moves it; it opens a session
    // when the previous window had expired (or there was none).
    // The conversation's first customer message, kept once: the bots' "first message" trigger
    // reads it (a conversation the bots never saw is not therefore new). `-`: the first came
    // before the conversation kept it.
    if m.opens_window {
        let first = e.name("first_inbound_wamid");
        let value = if before.last_inbound_at.is_none() {
            msg.wamid.as_str()
        } else {
            FIRST_INBOUND_EARLIER
        };
        let value = e.value(":first_inbound_wamid", s(value));
        e.set
            .push(format!("{first} = if_not_exists({first}, {value})"));
    }
    let first_inbound = m.opens_window && before.last_inbound_at.is_none();
    let mut session_start = false;
    if m.opens_window && before.last_inbound_at.is_none_or(|t| t < at) {
        e.set("last_inbound_at", n(at));
        e.set("last_inbound_wamid", s(&msg.wamid));
        e.set("window_expires_at", n(at + WINDOW_MS));
        if before.window_expires_at.is_none_or(|exp| at > exp) {
            e.set("session_started_at", n(at));
            session_start = true;
        }
    }

    // The conversation's unread contribution, as the counters will hold it.
    let wanted = Contribution {
        unread: (before.unread.unwrap_or(0) + unread_delta).max(0),
        bucket: bucket(f.rel_type.as_str(), f.shard, before.assignee.as_deref()),
    };
    let counted = before.counted_bucket.as_ref().map(|b| Contribution {
        unread: before.counted_unread.unwrap_or(0),
        bucket: b.clone(),
    });
    let mut counters = Vec::new();
    if counted.as_ref() != Some(&wanted) {
        e.set("counted_unread", n(wanted.unread));
        e.set("counted_bucket", s(&wanted.bucket));
        counters = moves(counted.as_ref(), Some(&wanted));
    }

    // Everything above was decided from `before`: it must still hold.
    let pk = e.name("pk");
    if before.exists {
        e.condition.push(format!("attribute_exists({pk})"));
        for (attr, was) in before.values() {
            e.unchanged(attr, was);
        }
    } else {
        e.condition.push(format!("attribute_not_exists({pk})"));
    }
    ConversationWrite {
        expression: e,
        counters,
        first_inbound,
        session_start,
    }
}

impl Store {
    /// Stores a message with everything it changes (see the module): `Duplicate` when it was
    /// stored before, and then nothing changes.
    pub async fn store_message(&self, m: &NewMessage) -> Result<StoreOutcome, StoreError> {
        let msg = &m.message;
        let f = &m.conversation;
        let conv_pk = keys::conversation_pk(&f.phone_number_id, &f.customer.customer_id);
        let conv_id = keys::conversation_id(&f.phone_number_id, &f.customer.customer_id);
        let ttl = self.message_ttl(msg.timestamp);
        let mut item = to_item(msg)?;
        if let Some(t) = ttl {
            item.insert("ttl".into(), n(t));
        }
        let mut dedupe = vec![self.tx_put_new(item)?];
        if msg.direction == Direction::Outbound {
            let mut w = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(keys::wamid_pk(&msg.wamid), keys::WAMID_SK)));
            w = match ttl {
                Some(t) => w
                    .update_expression(
                        "SET msg_pk = :p, msg_sk = :s, conversation_id = :c, direction = :d, #ttl = :ttl",
                    )
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":ttl", n(t)),
                None => w.update_expression(
                    "SET msg_pk = :p, msg_sk = :s, conversation_id = :c, direction = :d",
                ),
            };
            let w = w
                .condition_expression("attribute_not_exists(msg_pk)")
                .expression_attribute_values(":p", s(&conv_pk))
                .expression_attribute_values(":s", s(&msg.sk))
                .expression_attribute_values(":c", s(&conv_id))
                .expression_attribute_values(":d", s(direction_str(msg.direction)))
                .build()
                .expect("update");
            dedupe.push(TransactWriteItem::builder().update(w).build());
        }
        let dedupe_items = dedupe.len();
        for attempt in 0..MAX_ATTEMPTS {
            let before = self.before_message(&conv_pk).await?;
            let write = plan(&before, m);
            let stored = StoreOutcome::Stored(StoredFacts {
                first_inbound: write.first_inbound,
                session_start: write.session_start,
                bots_hold_until: before.bots_hold_until,
                predates_hold: m.opens_window
                    && before.last_inbound_at.is_some()
                    && before.first_inbound_wamid.is_none(),
            });
            let e = write.expression;
            let conv = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(&conv_pk, keys::CONV_SK)))
                .update_expression(e.update_expression())
                .condition_expression(e.condition.join(" AND "))
                .set_expression_attribute_names(Some(e.names))
                .set_expression_attribute_values(Some(e.values))
                .build()
                .expect("conversation update");
            let mut items = dedupe.clone();
            items.push(TransactWriteItem::builder().update(conv).build());
            for (b, messages, conversations) in &write.counters {
                items.push(
                    TransactWriteItem::builder()
                        .update(counter_update(&self.table, b, *messages, *conversations))
                        .build(),
                );
            }
            let r = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let err = match r {
                Ok(_) => return Ok(stored),
                Err(err) => err,
            };
            if cancellation_codes(&err).is_some_and(|codes| {
                codes
                    .iter()
                    .take(dedupe_items)
                    .any(|c| c == "ConditionalCheckFailed")
            }) {
                return Ok(StoreOutcome::Duplicate);
            }
            // The conversation changed since it was read (or another transaction held it).
            if retryable(&err) && attempt + 1 < MAX_ATTEMPTS {
                backoff(attempt).await;
                continue;
            }
            return Err(StoreError::sdk(err));
        }
        Err(StoreError::Dynamo(
            "storing a message: too many concurrent updates of its conversation".into(),
        ))
    }

    /// The conversation as storing a message needs it (strongly consistent).
    async fn before_message(&self, conv_pk: &str) -> Result<Before, StoreError> {
        let names: HashMap<String, String> = std::iter::once("pk")
            .chain(READ)
            .chain(ALSO_READ)
            .map(|a| (format!("#{a}"), a.to_string()))
            .collect();
        let projection = std::iter::once("#pk".to_string())
            .chain(READ.iter().chain(&ALSO_READ).map(|a| format!("#{a}")))
            .collect::<Vec<_>>()
            .join(", ");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(conv_pk, keys::CONV_SK)))
            .consistent_read(true)
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .send()
            .await
            .map_err(StoreError::sdk)?;
        Ok(Before::from_item(out.item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dynamo::ConversationFacts;
    use crate::store::model::{Customer, MessageItem, RelType};

    const HOUR: i64 = 3_600_000;

    fn message(at: i64, unread: bool, opens_window: bool, rel_type: RelType) -> NewMessage {
        let customer = Customer {
            pk: keys::customer_pk("c1"),
            sk: keys::PROFILE_SK.into(),
            customer_id: "c1".into(),
            wa_id: Some("16505551234".into()),
            bsuid: None,
            e164: Some("+16505551234".into()),
            name: Some("Ana".into()),
            marketing_opt_out: false,
            marketing_pref_at: None,
            created_at: 0,
            previous_wa_ids: Vec::new(),
            aliases: Vec::new(),
            phone_number_ids: Vec::new(),
        };
        NewMessage {
            message: MessageItem {
                pk: keys::conversation_pk("p1", "c1"),
                sk: keys::message_sk(at, "wamid.1"),
                wamid: "wamid.1".into(),
                conversation_id: keys::conversation_id("p1", "c1"),
                direction: if unread {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                },
                kind: "text".into(),
                timestamp: at,
                summary: "x".repeat(300),
                raw: "{}".into(),
                source: "inbound".into(),
                context_wamid: None,
                staff_id: None,
                stored_at: at,
                media_id: None,
                media_state: None,
                media_error: None,
            },
            conversation: ConversationFacts {
                phone_number_id: "p1".into(),
                customer,
                rel_type,
                rel_id: None,
                shard: 3,
                now_ms: at,
            },
            unread,
            opens_window,
        }
    }

    fn set_of(w: &ConversationWrite) -> HashMap<String, AttributeValue> {
        let e = &w.expression;
        e.set
            .iter()
            .filter_map(|clause| {
                let (name, value) = clause.split_once(" = ")?;
                Some((e.names[name].clone(), e.values.get(value)?.clone()))
            })
            .collect()
    }

    /// Every placeholder registered is used, and every one used is registered (DynamoDB
    /// refuses both).
    fn assert_placeholders_match(w: &ConversationWrite) {
        let e = &w.expression;
        let text = format!("{} {}", e.update_expression(), e.condition.join(" AND "));
        for k in e.names.keys().chain(e.values.keys()) {
            assert!(text.contains(k.as_str()), "{k} unused in {text}");
        }
        for token in text.split(|c: char| !(c.is_alphanumeric() || "#:_".contains(c))) {
            if token.starts_with('#') {
                assert!(e.names.contains_key(token), "{token} unnamed in {text}");
            }
            if token.starts_with(':') {
                assert!(
                    e.values.contains_key(token),
                    "{token} has no value in {text}"
                );
            }
        }
    }

    #[test]
    fn a_first_message_creates_the_conversation_with_its_window_and_contribution() {
        let w = plan(
            &Before::default(),
            &message(10 * HOUR, true, true, RelType::Leads),
        );
        assert_placeholders_match(&w);
        let set = set_of(&w);
        assert_eq!(set["last_message_at"], n(10 * HOUR));
        assert_eq!(set["last_inbound_at"], n(10 * HOUR));
        assert_eq!(set["window_expires_at"], n(34 * HOUR));
        assert_eq!(set["session_started_at"], n(10 * HOUR));
        assert!(w.first_inbound && w.session_start);
        assert_eq!(set["counted_unread"], n(1));
        let b = bucket("leads", 3, None);
        assert_eq!(set["counted_bucket"], s(&b));
        assert_eq!(
            set["last_message_preview"],
            s(truncate(&"x".repeat(300), 200))
        );
        assert_eq!(w.counters, vec![(b, 1, 1)]);
        assert_eq!(w.expression.condition, vec!["attribute_not_exists(#pk)"]);
        // The conversation's first customer message, kept once.
        assert!(
            w.expression.set.contains(
                &"#first_inbound_wamid = if_not_exists(#first_inbound_wamid, :first_inbound_wamid)"
                    .to_string()
            )
        );
        assert_eq!(w.expression.values[":first_inbound_wamid"], s("wamid.1"));
        // A business message is not the customer's first.
        let w = plan(
            &Before::default(),
            &message(10 * HOUR, false, false, RelType::Leads),
        );
        assert!(!w.expression.values.contains_key(":first_inbound_wamid"));
    }

    #[test]
    fn a_next_message_within_the_window_moves_it_without_a_new_session() {
        let b = bucket("leads", 3, Some("7"));
        let before = Before {
            exists: true,
            unread: Some(2),
            counted_unread: Some(2),
            counted_bucket: Some(b.clone()),
            assignee: Some("7".into()),
            last_message_at: Some(9 * HOUR),
            last_inbound_at: Some(8 * HOUR),
            window_expires_at: Some(32 * HOUR),
            bots_hold_until: None,
            first_inbound_wamid: None,
        };
        let w = plan(&before, &message(10 * HOUR, true, true, RelType::Leads));
        assert_placeholders_match(&w);
        let set = set_of(&w);
        assert_eq!(set["window_expires_at"], n(34 * HOUR));
        assert!(!set.contains_key("session_started_at"));
        assert!(!w.first_inbound && !w.session_start);
        assert_eq!(set["counted_unread"], n(3));
        assert_eq!(w.counters, vec![(b, 1, 0)]);
        // Not the first: a conversation from before the marker gets "earlier" (kept only when
        // it has none).
        assert_eq!(
            w.expression.values[":first_inbound_wamid"],
            s(FIRST_INBOUND_EARLIER)
        );
        let cond = w.expression.condition.join(" AND ");
        for attr in READ {
            assert!(
                cond.contains(&format!("#{attr}")),
                "{attr} unchecked: {cond}"
            );
        }
    }

    #[test]
    fn an_older_message_moves_neither_activity_nor_window() {
        let b = bucket("general", 3, None);
        let before = Before {
            exists: true,
            unread: Some(0),
            counted_unread: Some(0),
            counted_bucket: Some(b.clone()),
            assignee: None,
            last_message_at: Some(12 * HOUR),
            last_inbound_at: Some(11 * HOUR),
            window_expires_at: Some(35 * HOUR),
            bots_hold_until: None,
            first_inbound_wamid: None,
        };
        let w = plan(&before, &message(10 * HOUR, true, true, RelType::General));
        assert_placeholders_match(&w);
        let set = set_of(&w);
        for attr in [
            "last_message_at",
            "gsi1sk",
            "last_inbound_at",
            "window_expires_at",
        ] {
            assert!(!set.contains_key(attr), "{attr} moved back");
        }
        // Still unread, still counted.
        assert_eq!(w.counters, vec![(b, 1, 1)]);
        assert!(
            w.expression
                .condition
                .contains(&"attribute_not_exists(#assignee)".to_string())
        );
    }

    #[test]
    fn a_message_after_the_window_expired_starts_a_session() {
        let before = Before {
            exists: true,
            last_message_at: Some(HOUR),
            last_inbound_at: Some(HOUR),
            window_expires_at: Some(25 * HOUR),
            ..Before::default()
        };
        let w = plan(&before, &message(30 * HOUR, true, true, RelType::General));
        assert_eq!(set_of(&w)["session_started_at"], n(30 * HOUR));
        assert!(w.session_start && !w.first_inbound);
    }

    #[test]
    fn a_message_the_business_sent_counts_nothing_unread_and_leaves_the_window() {
        let b = bucket("contacts", 3, None);
        let before = Before {
            exists: true,
            unread: Some(1),
            counted_unread: Some(1),
            counted_bucket: Some(b),
            last_message_at: Some(HOUR),
            last_inbound_at: Some(HOUR),
            window_expires_at: Some(25 * HOUR),
            ..Before::default()
        };
        let w = plan(&before, &message(2 * HOUR, false, false, RelType::Contacts));
        assert_placeholders_match(&w);
        let set = set_of(&w);
        assert!(!set.contains_key("last_inbound_at"));
        assert!(!set.contains_key("counted_unread"));
        assert!(w.counters.is_empty());
        assert_eq!(set["last_message_at"], n(2 * HOUR));
    }

    #[test]
    fn a_conversation_filed_elsewhere_moves_its_contribution() {
        let old = bucket("general", 3, None);
        let before = Before {
            exists: true,
            unread: Some(2),
            counted_unread: Some(2),
            counted_bucket: Some(old.clone()),
            ..Before::default()
        };
        let w = plan(&before, &message(HOUR, true, true, RelType::Leads));
        let new = bucket("leads", 3, None);
        assert_eq!(w.counters, vec![(old, -2, -1), (new, 3, 1)]);
    }

    #[test]
    fn a_contribution_left_behind_by_a_crash_is_caught_up() {
        let b = bucket("leads", 3, None);
        let before = Before {
            exists: true,
            unread: Some(4),
            counted_unread: Some(1),
            counted_bucket: Some(b.clone()),
            ..Before::default()
        };
        let w = plan(&before, &message(HOUR, true, true, RelType::Leads));
        assert_eq!(w.counters, vec![(b, 4, 0)]);
        assert_eq!(set_of(&w)["counted_unread"], n(5));
    }
}
