//! Meta WhatsApp Cloud API: webhook wire types and signature.
pub mod signature;
pub mod webhook;
