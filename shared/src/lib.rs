//! Library shared by every Lambda of the WhatsApp ↔ CRM integration.
//!
//! Organised by capability, not by technical layer:
//! - [`meta`]: Meta's wire types and webhook signature;
//! - [`envelope`]: the versioned queue envelope and the split of a webhook batch into it;
//! - [`phone`]: phone-number normalisation and matching keys;
//! - [`store`]: DynamoDB key design and the repository;
//! - [`pacing`]: per-business-number send pacing shared by concurrent invocations;
//! - [`identify`]: sender identification (leads → contacts → staff → auto-lead / general);
//! - [`directory`]: the CRM directory kept from CRM events and the bulk import;
//! - [`auth`]: staff JWT verification and permissions; [`cursor`]: signed page cursors;
//! - [`media`]: inbound media copied to S3, presigned URLs, uploads;
//! - [`privacy`]: forgetting a customer (erasure across the table and the bucket);
//! - [`crm_events`]: events exchanged with the CRM over EventBridge;
//! - [`templates`]: message-template sync from Meta and the check of a template send;
//! - [`http_edge`]: API Gateway HTTP API adaptation of the routers;
//! - [`bots`]: the bot engine: trigger matching, responses, menus, flows, evaluation rules;
//! - [`sending`]: one message sent through the outbound layer (intent, pace, Meta, record),
//!   by staff or by a bot;
//! - [`sqs_batch`]: SQS batches with Lambda's semantics (partial failures, parking, FIFO
//!   order, the deadline);
//! - [`queue`], [`archive`], [`secrets`], [`config`], [`telemetry`]: AWS adapters and plumbing.
//!
//! The library knows nothing of the Lambda binaries or of the local runner.
pub mod activity;
pub mod ai;
pub mod archive;
pub mod auth;
pub mod bots;
pub mod campaigns;
pub mod config;
pub mod credentials;
pub mod crm_events;
pub mod cursor;
pub mod directory;
pub mod envelope;
pub mod http_edge;
pub mod identify;
pub mod media;
pub mod meta;
pub mod metrics;
pub mod notifications;
pub mod pacing;
pub mod phone;
pub mod privacy;
pub mod queue;
pub mod secrets;
pub mod sending;
pub mod sqs_batch;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod tls;
