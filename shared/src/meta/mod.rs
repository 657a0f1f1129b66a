//! Meta WhatsApp Cloud API: webhook wire types and signature, outbound messages and the Graph
//! API client.
pub mod graph;
pub mod outbound;
pub mod signature;
pub mod webhook;
