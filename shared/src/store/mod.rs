//! Storage: one DynamoDB table (`MainTable`) designed from its access patterns.
//!
//! Keys are built only in [`keys`]; items are typed structs in [`model`] converted with
//! `serde_dynamo`; [`dynamo::Store`] is the table's client, and each kind of item has the module
//! that holds its queries and conditional writes (`impl Store` blocks).
//! The access-pattern table lives in `docs/dynamodb.md` (and is summarised here):
//!
//! | access pattern | key |
//! |---|---|
//! | conversation by (business number, customer) | `pk=CONV#{phone_number_id}#{customer_id}`, `sk=CONV` |
//! | inbox per `rel_type`, newest activity first | GSI1 `gsi1pk=INBOX#{rel_type}#{shard}`, `gsi1sk={last_activity_ms:013}#{conversation_id}` |
//! | message history in order | `pk=CONV#…`, `sk=MSG#{meta_ts_ms:013}#{wamid}` |
//! | message / delivery state by wamid | `pk=WAMID#{wamid}`, `sk=WAMID` |
//! | customer by internal id | `pk=CUST#{customer_id}`, `sk=PROFILE` |
//! | customer by wa_id / BSUID / E.164 | `pk=ALIAS#{WA|BSUID|E164}#{value}`, `sk=ALIAS` |
//! | directory entry by normalised phone | `pk=PHONE#{canonical E.164}`, `sk={kind}#{id}` |
//! | directory record by id | `pk=DIR#{kind}#{id}`, `sk=RECORD` |
//! | auto-lead claim of a phone | `pk=LEADCLAIM#{canonical E.164 or BSUID}`, `sk=CLAIM` |
//! | processed CRM event (dedupe) | `pk=EVENT#{event_id}`, `sk=EVENT` (TTL) |
//! | settings | `pk=SETTINGS`, `sk={name}` |
//! | activity log, newest first per UTC day ([`activity`]) | `pk=LOG#{yyyy-mm-dd}`, `sk={at_ms:013}#{seq}` (TTL) |
//! | templates by name + language (synced content, webhook status) | `pk=TPL#{waba_id}`, `sk={name}#{language}` |
//! | last template sync of a WABA | `pk=TPLSYNC#{waba_id}`, `sk=SYNC` |
//! | quick replies ([`quick_replies`]); unique shortcut | `pk=QUICKREPLIES`, `sk={id}`; `pk=QRSHORTCUT#{shortcut}`, `sk=CLAIM` |
//! | business numbers ([`numbers`]); the default sender | `pk=NUMBERS`, `sk={phone_number_id}`; `pk=SETTINGS`, `sk=default_number` |
//! | WhatsApp contacts, groups ([`audiences`]); unique phone | `pk=WACONTACTS` / `WAGROUPS`, `sk={id}`; `pk=WAPHONE#{canonical E.164}`, `sk=CLAIM` |
//! | members of a group | `pk=WAGROUP#{group_id}`, `sk=MEMBER#{contact_id}` |
//! | notification mappings; log per UTC day ([`notifications`]) | `pk=NOTIFMAP`, `sk={id}`; `pk=NOTIFLOG#{yyyy-mm-dd}`, `sk={event_ms:013}#{send key}` (TTL) |
//! | unread counters per rel_type, shard and assignee ([`unread`]) | `pk=UNREAD#{rel_type}#{shard}`, `sk=A#{assignee or -}` |
pub mod activity;
pub mod audiences;
pub mod bot_timers;
pub mod bots;
pub mod campaigns;
pub mod conversation_state;
pub mod crud;
pub mod customers;
pub mod directory_list;
pub mod directory_records;
pub mod dynamo;
pub mod erasure;
pub mod keys;
pub mod lead_claims;
pub mod messages;
pub mod model;
pub mod notifications;
pub mod numbers;
pub mod quick_replies;
pub mod settings;
pub mod statuses;
pub mod templates;
pub mod unread;

pub use dynamo::{Store, StoreError};
