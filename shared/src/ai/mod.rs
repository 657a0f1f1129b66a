//! AI replies: the recent conversation, the admin's system prompt and the bot's instructions go
//! to OpenAI (Chat Completions) or Google Gemini (generateContent) over HTTP; the answer is a
//! reply for the customer and, when the conversation collected a support request, a ticket
//! draft ([`answer`]). Base URLs are configuration (tests and `make dev` point them at a local
//! fake; a proxy works too). Each attempt is bounded by a timeout and by the caller's deadline;
//! a 429, a 5xx or a failed connection is retried once. The API key travels in a header and is
//! never logged: error texts are redacted of it.
pub mod answer;
pub mod gemini;
pub mod openai;
pub mod prompt;

use std::time::{Duration, Instant};

use serde_json::Value;

pub use answer::{AiAnswer, TicketDraft};
pub use prompt::{Context, ContextLimits, Line, Prompt};

use crate::credentials::AiSettings;

/// The providers we can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Gemini,
}

impl Provider {
    /// The settings' provider name (`google` is Gemini too).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "openai" => Some(Self::OpenAi),
            "gemini" | "google" => Some(Self::Gemini),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Gemini => "gemini",
        }
    }
}

/// Where the providers are and how long they may take.
#[derive(Debug, Clone)]
pub struct AiConfig {
    /// `https://api.openai.com/v1`
    pub openai_base_url: String,
    /// `https://generativelanguage.googleapis.com/v1beta`
    pub gemini_base_url: String,
    /// Bound on each attempt.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_output_tokens: u32,
    /// Bound on an answer's body.
    pub max_response_bytes: usize,
    /// Wait before the one retry when the provider names none (`Retry-After`, capped by this).
    pub retry_wait: Duration,
    pub limits: ContextLimits,
}

impl Default for AiConfig {
    fn default() -> Self {
        Self {
            openai_base_url: "https://api.openai.com/v1".into(),
            gemini_base_url: "https://generativelanguage.googleapis.com/v1beta".into(),
            timeout: Duration::from_secs(8),
            connect_timeout: Duration::from_secs(3),
            max_output_tokens: 800,
            max_response_bytes: 512 * 1024,
            retry_wait: Duration::from_secs(1),
            limits: ContextLimits::default(),
        }
    }
}

impl AiConfig {
    pub fn from_app_config(cfg: &crate::config::Config) -> Self {
        Self {
            openai_base_url: cfg.openai_base_url.clone(),
            gemini_base_url: cfg.gemini_base_url.clone(),
            timeout: Duration::from_millis(cfg.ai_timeout_ms),
            connect_timeout: Duration::from_millis(cfg.ai_timeout_ms.min(3_000)),
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AiError {
    #[error("AI is not configured: {0}")]
    NotConfigured(String),
    #[error("AI provider {0:?} is not supported (openai or gemini)")]
    Unsupported(String),
    #[error("the AI provider did not answer in time")]
    Timeout,
    #[error("the AI provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the AI provider refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("the AI provider's answer is unusable: {0}")]
    BadAnswer(String),
}

impl AiError {
    /// Worth the one retry: rate limited, the provider's own failure, no connection.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// A short name for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            Self::NotConfigured(_) => "not_configured",
            Self::Unsupported(_) => "unsupported",
            Self::Timeout => "timeout",
            Self::Unreachable(_) => "unreachable",
            Self::Refused { status: 429, .. } => "rate_limited",
            Self::Refused { status, .. } if *status >= 500 => "provider_error",
            Self::Refused { .. } => "refused",
            Self::BadAnswer(_) => "bad_answer",
        }
    }
}

/// Calls the configured provider.
pub struct AiClient {
    http: reqwest::Client,
    cfg: AiConfig,
}

fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// Removes the key (and anything shaped like a bearer token after it) from a provider's text.
fn redact(text: &str, key: &str) -> String {
    let mut t = if key.len() >= 4 {
        text.replace(key, "[redacted]")
    } else {
        text.to_string()
    };
    if let Some((i, _)) = t.char_indices().nth(300) {
        t.truncate(i);
    }
    t
}

impl AiClient {
    pub fn new(cfg: AiConfig) -> Result<Self, AiError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("whatsapp-crm/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(crate::tls::client_config().map_err(AiError::NotConfigured)?)
            .build()
            .map_err(|e| AiError::NotConfigured(describe(&e)))?;
        Ok(Self { http, cfg })
    }

    pub fn config(&self) -> &AiConfig {
        &self.cfg
    }

    /// Asks the provider of `settings` for an answer to `prompt`, within `deadline` (one retry
    /// on 429 / 5xx / no connection when time is left).
    pub async fn answer(
        &self,
        settings: &AiSettings,
        prompt: &Prompt,
        deadline: Instant,
    ) -> Result<AiAnswer, AiError> {
        if !settings.enabled {
            return Err(AiError::NotConfigured(
                "AI is disabled in the settings".into(),
            ));
        }
        let provider = Provider::parse(&settings.provider)
            .ok_or_else(|| AiError::Unsupported(settings.provider.clone()))?;
        if settings.model.trim().is_empty() || settings.api_key.is_empty() {
            return Err(AiError::NotConfigured(
                "the settings have no model or no API key".into(),
            ));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            if left < Duration::from_millis(200) {
                return Err(AiError::Timeout);
            }
            let started = Instant::now();
            let r = self
                .attempt(provider, settings, prompt, left.min(self.cfg.timeout))
                .await;
            let elapsed = started.elapsed();
            match r {
                Ok(a) => {
                    tracing::info!(provider = provider.as_str(), model = %settings.model, attempt, latency_ms = elapsed.as_millis() as u64, "AI answered");
                    crate::metrics::count("AiCalls", 1)
                        .millis("AiLatency", elapsed)
                        .dim("Provider", provider.as_str())
                        .dim("Outcome", "ok")
                        .emit();
                    return Ok(a);
                }
                Err((e, retry_after)) => {
                    tracing::warn!(provider = provider.as_str(), model = %settings.model, attempt, class = e.class(), error = %e, latency_ms = elapsed.as_millis() as u64, "AI call failed");
                    crate::metrics::count("AiCalls", 1)
                        .millis("AiLatency", elapsed)
                        .dim("Provider", provider.as_str())
                        .dim("Outcome", e.class())
                        .emit();
                    if attempt > 1 || !e.retryable() {
                        return Err(e);
                    }
                    let wait = retry_after
                        .unwrap_or(self.cfg.retry_wait)
                        .min(self.cfg.retry_wait.max(Duration::from_millis(50)));
                    let left = deadline.saturating_duration_since(Instant::now());
                    if wait + Duration::from_millis(500) >= left {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(
        &self,
        provider: Provider,
        s: &AiSettings,
        prompt: &Prompt,
        timeout: Duration,
    ) -> Result<AiAnswer, (AiError, Option<Duration>)> {
        let key = s.api_key.expose();
        let req = match provider {
            Provider::OpenAi => self
                .http
                .post(format!(
                    "{}/chat/completions",
                    self.cfg.openai_base_url.trim_end_matches('/')
                ))
                .bearer_auth(key)
                .json(&openai::request(
                    s.model.trim(),
                    prompt,
                    self.cfg.max_output_tokens,
                )),
            Provider::Gemini => self
                .http
                .post(format!(
                    "{}/{}:generateContent",
                    self.cfg.gemini_base_url.trim_end_matches('/'),
                    gemini::model_path(&s.model)
                ))
                .header("x-goog-api-key", key)
                .json(&gemini::request(prompt, self.cfg.max_output_tokens)),
        };
        let resp = req.timeout(timeout).send().await.map_err(|e| {
            let err = if e.is_timeout() {
                AiError::Timeout
            } else {
                AiError::Unreachable(redact(&describe(&e.without_url()), key))
            };
            (err, None)
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = self.read_body(resp).await.map_err(|e| (e, None))?;
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let message = match provider {
                Provider::OpenAi => openai::error_message(&json),
                Provider::Gemini => gemini::error_message(&json),
            }
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into());
            return Err((
                AiError::Refused {
                    status,
                    message: redact(&message, key),
                },
                retry_after,
            ));
        }
        if json.is_null() {
            return Err((AiError::BadAnswer("the answer is not JSON".into()), None));
        }
        let text = match provider {
            Provider::OpenAi => openai::answer_text(&json),
            Provider::Gemini => gemini::answer_text(&json),
        }
        .map_err(|e| (e, None))?;
        answer::parse(&text).map_err(|e| (e, None))
    }

    async fn read_body(&self, mut resp: reqwest::Response) -> Result<Vec<u8>, AiError> {
        let mut out = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    if out.len() + c.len() > self.cfg.max_response_bytes {
                        return Err(AiError::BadAnswer(format!(
                            "the answer is larger than {} bytes",
                            self.cfg.max_response_bytes
                        )));
                    }
                    out.extend_from_slice(&c);
                }
                Ok(None) => return Ok(out),
                Err(e) if e.is_timeout() => return Err(AiError::Timeout),
                Err(e) => return Err(AiError::Unreachable(describe(&e.without_url()))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_of_the_settings() {
        assert_eq!(Provider::parse("OpenAI"), Some(Provider::OpenAi));
        assert_eq!(Provider::parse("gemini"), Some(Provider::Gemini));
        assert_eq!(Provider::parse("google"), Some(Provider::Gemini));
        assert_eq!(Provider::parse("anthropic"), None);
    }

    #[test]
    fn errors_redact_the_key_and_say_what_may_be_retried() {
        assert_eq!(
            redact("Incorrect API key provided: sk-secret-123", "sk-secret-123"),
            "Incorrect API key provided: [redacted]"
        );
        assert!(
            AiError::Refused {
                status: 429,
                message: String::new()
            }
            .retryable()
        );
        assert!(
            AiError::Refused {
                status: 503,
                message: String::new()
            }
            .retryable()
        );
        assert!(
            !AiError::Refused {
                status: 401,
                message: String::new()
            }
            .retryable()
        );
        assert!(!AiError::Timeout.retryable());
        assert_eq!(
            AiError::Refused {
                status: 429,
                message: String::new()
            }
            .class(),
            "rate_limited"
        );
    }

    #[tokio::test]
    async fn settings_that_cannot_work_are_refused_before_any_call() {
        let c = AiClient::new(AiConfig {
            openai_base_url: "http://127.0.0.1:9".into(),
            ..AiConfig::default()
        })
        .unwrap();
        let p = prompt::build(&Context::default(), &[], &ContextLimits::default());
        let soon = Instant::now() + Duration::from_secs(1);
        let mut s = AiSettings::default();
        assert!(matches!(
            c.answer(&s, &p, soon).await,
            Err(AiError::NotConfigured(_))
        ));
        s.enabled = true;
        s.provider = "anthropic".into();
        assert!(matches!(
            c.answer(&s, &p, soon).await,
            Err(AiError::Unsupported(_))
        ));
        s.provider = "openai".into();
        assert!(matches!(
            c.answer(&s, &p, soon).await,
            Err(AiError::NotConfigured(_))
        ));
    }
}
