//! Local stand-ins for the providers the system calls over HTTP: Meta's Graph API ([`graph`])
//! and the AI providers ([`ai`]: OpenAI Chat Completions and Gemini generateContent). Each
//! records every request, checks it against the provider's documented shape, and answers from
//! a script. The integration tests start them per test; `make dev` starts them beside the
//! local stack so messages, bots and AI replies work without any account.
pub mod ai;
pub mod graph;
