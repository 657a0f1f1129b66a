//! Connection credentials kept in Secrets Manager and edited through the staff API settings:
//! the inbox's Meta connection (`MetaSecret`, read as [`MetaSecrets`]), the event-notification
//! module's own Meta credentials (`NotifySecret`, [`NotifySecrets`]) which fall back to the
//! inbox's ([`effective_notify_credentials`]), and the AI settings (`AiSecret`, [`AiSettings`]).
//!
//! Writes merge into the stored JSON object ([`merge_fields`]): keys a request does not name,
//! and keys this code does not know, keep their value.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::secrets::{MetaSecrets, Redacted, SecretError, SecretSource};

/// Meta credentials of the event-notification module (`NotifySecret`). Same keys as
/// [`MetaSecrets`] (no verify token: notifications receive no webhooks) plus the business
/// number notifications are sent from, which must belong to this set's WABA.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NotifySecrets {
    #[serde(default)]
    pub access_token: Redacted,
    #[serde(default)]
    pub app_secret: Redacted,
    #[serde(default)]
    pub waba_id: String,
    #[serde(default)]
    pub app_id: String,
    #[serde(default)]
    pub business_id: String,
    #[serde(default)]
    pub phone_number_id: String,
}

/// Which credential set event notifications use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    /// The notification module's own set (`NotifySecret`).
    Notifications,
    /// The inbox's connection (`MetaSecret`).
    Inbox,
}

impl CredentialSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notifications => "notifications",
            Self::Inbox => "inbox",
        }
    }
}

/// The credentials event notifications use, and why.
#[derive(Debug, Clone)]
pub struct EffectiveCredentials {
    pub source: CredentialSource,
    pub access_token: Redacted,
    pub app_secret: Redacted,
    pub waba_id: String,
    pub app_id: String,
    pub business_id: String,
    /// Sender number of the notification set; `None` with the inbox set (its default number).
    pub phone_number_id: Option<String>,
    /// Fields the chosen set needs but lacks (`access_token` when nothing is configured).
    pub missing: Vec<&'static str>,
    pub reason: String,
}

/// The notification set is used, whole, as soon as it has an access token; otherwise the
/// inbox's set is used, whole. Sets are never mixed field by field: a token of one business
/// with the WABA or number of another would fail at Meta.
pub fn effective_notify_credentials(
    notify: &NotifySecrets,
    inbox: &MetaSecrets,
) -> EffectiveCredentials {
    if !notify.access_token.is_empty() {
        let mut missing = Vec::new();
        if notify.waba_id.trim().is_empty() {
            missing.push("waba_id");
        }
        if notify.phone_number_id.trim().is_empty() {
            missing.push("phone_number_id");
        }
        return EffectiveCredentials {
            source: CredentialSource::Notifications,
            access_token: notify.access_token.clone(),
            app_secret: notify.app_secret.clone(),
            waba_id: notify.waba_id.clone(),
            app_id: notify.app_id.clone(),
            business_id: notify.business_id.clone(),
            phone_number_id: Some(notify.phone_number_id.clone()).filter(|p| !p.is_empty()),
            missing,
            reason: "the notification credentials have an access token".into(),
        };
    }
    let mut missing = Vec::new();
    if inbox.access_token.is_empty() {
        missing.push("access_token");
    }
    if inbox.waba_id.trim().is_empty() {
        missing.push("waba_id");
    }
    let reason = if notify_has_any(notify) {
        "the notification credentials have no access token, so the inbox connection is used"
    } else {
        "no notification credentials are set, so the inbox connection is used"
    };
    EffectiveCredentials {
        source: CredentialSource::Inbox,
        access_token: inbox.access_token.clone(),
        app_secret: inbox.app_secret.clone(),
        waba_id: inbox.waba_id.clone(),
        app_id: inbox.app_id.clone(),
        business_id: inbox.business_id.clone(),
        phone_number_id: None,
        missing,
        reason: reason.into(),
    }
}

fn notify_has_any(n: &NotifySecrets) -> bool {
    !(n.app_secret.is_empty()
        && n.waba_id.is_empty()
        && n.app_id.is_empty()
        && n.business_id.is_empty()
        && n.phone_number_id.is_empty())
}

// ---------------------------------------------------------------------------------------------
// AI settings
// ---------------------------------------------------------------------------------------------

/// AI providers the settings accept (the seed's names; `google` is taken as `gemini`).
pub const AI_PROVIDERS: [&str; 2] = ["openai", "gemini"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AiMode {
    /// Replies are sent by the AI.
    Auto,
    /// The AI drafts, staff send.
    #[default]
    Manual,
}

/// AI settings (`AiSecret`): everything in the secret, so a reader gets the key and its
/// settings in one consistent read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AiSettings {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub mode: AiMode,
    #[serde(default)]
    pub api_key: Redacted,
    /// The admin's instructions given to the AI with every conversation.
    #[serde(default)]
    pub system_prompt: String,
    /// Sent when the AI fails in `auto` mode (a default text when empty).
    #[serde(default)]
    pub fallback_text: String,
}

// ---------------------------------------------------------------------------------------------
// Merge and validation helpers (pure)
// ---------------------------------------------------------------------------------------------

/// One field of a settings update.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldUpdate {
    /// Keep the stored value (the field was absent or `null`).
    Keep,
    Set(Value),
}

/// Applies updates to a stored secret object; every other key is kept as it was.
pub fn merge_fields(
    mut stored: Map<String, Value>,
    updates: &[(&str, FieldUpdate)],
) -> Map<String, Value> {
    for (k, u) in updates {
        if let FieldUpdate::Set(v) = u {
            stored.insert((*k).to_owned(), v.clone());
        }
    }
    stored
}

/// `appsecret_proof` of a Graph API call: hex HMAC-SHA256 of the access token keyed by the app
/// secret. Meta refuses a call whose proof does not match the token's app secret, so a call
/// carrying it proves the stored app secret.
pub fn appsecret_proof(access_token: &str, app_secret: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(access_token.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Why a credential value is refused (the caller names the field).
pub fn check_graph_id(v: &str) -> Result<(), &'static str> {
    if v.is_empty() {
        return Ok(());
    }
    if v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("must be a Meta id (digits, letters, '_' or '-', at most 64)");
    }
    Ok(())
}

/// A token-like secret: printable ASCII without spaces, at most `max` characters.
pub fn check_secret_text(v: &str, max: usize) -> Result<(), String> {
    if v.len() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Secrets Manager as a read/write store of JSON objects
// ---------------------------------------------------------------------------------------------

/// A secret read and written as a JSON object (uncached: settings routes need the stored value).
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync {
    async fn read_object(&self, id: &str) -> Result<Map<String, Value>, SecretError>;
    async fn write_object(&self, id: &str, value: &Map<String, Value>) -> Result<(), SecretError>;
}

/// Parses a secret string as a JSON object without ever quoting it in an error.
pub fn parse_object(id: &str, text: &str) -> Result<Map<String, Value>, SecretError> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(SecretError::Invalid {
            id: id.to_owned(),
            reason: "not a JSON object".into(),
        }),
        Err(e) => Err(SecretError::Invalid {
            id: id.to_owned(),
            reason: format!("line {} column {}", e.line(), e.column()),
        }),
    }
}

#[async_trait::async_trait]
impl SecretStore for aws_sdk_secretsmanager::Client {
    async fn read_object(&self, id: &str) -> Result<Map<String, Value>, SecretError> {
        let text = self.secret_string(id).await?;
        parse_object(id, &text)
    }

    async fn write_object(&self, id: &str, value: &Map<String, Value>) -> Result<(), SecretError> {
        let text = serde_json::to_string(value).map_err(|e| SecretError::Invalid {
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        self.put_secret_value()
            .secret_id(id)
            .secret_string(text)
            .send()
            .await
            .map_err(|e| SecretError::Unavailable {
                id: id.to_owned(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inbox() -> MetaSecrets {
        MetaSecrets {
            access_token: Redacted::new("inbox-token-123456"),
            app_secret: Redacted::new("inbox-app-secret"),
            verify_token: Redacted::new("verify"),
            waba_id: "111".into(),
            app_id: "222".into(),
            business_id: "333".into(),
        }
    }

    #[test]
    fn notifications_use_their_own_set_when_it_has_a_token() {
        let n = NotifySecrets {
            access_token: Redacted::new("notify-token-999999"),
            waba_id: "444".into(),
            phone_number_id: "555".into(),
            ..Default::default()
        };
        let e = effective_notify_credentials(&n, &inbox());
        assert_eq!(e.source, CredentialSource::Notifications);
        assert_eq!(e.access_token.expose(), "notify-token-999999");
        assert_eq!(e.waba_id, "444");
        assert_eq!(e.phone_number_id.as_deref(), Some("555"));
        // Never mixed with the inbox's fields.
        assert_eq!(e.app_id, "");
        assert!(e.missing.is_empty());
        // A token without WABA or number: still the notification set, with what it lacks.
        let partial = NotifySecrets {
            access_token: Redacted::new("notify-token-999999"),
            ..Default::default()
        };
        let e = effective_notify_credentials(&partial, &inbox());
        assert_eq!(e.source, CredentialSource::Notifications);
        assert_eq!(e.missing, vec!["waba_id", "phone_number_id"]);
    }

    #[test]
    fn notifications_fall_back_to_the_inbox() {
        let e = effective_notify_credentials(&NotifySecrets::default(), &inbox());
        assert_eq!(e.source, CredentialSource::Inbox);
        assert_eq!(e.access_token.expose(), "inbox-token-123456");
        assert_eq!(e.waba_id, "111");
        assert_eq!(e.phone_number_id, None);
        assert!(
            e.reason.contains("no notification credentials"),
            "{}",
            e.reason
        );
        // Fields without a token do not count as a set.
        let no_token = NotifySecrets {
            waba_id: "444".into(),
            ..Default::default()
        };
        let e = effective_notify_credentials(&no_token, &inbox());
        assert_eq!(e.source, CredentialSource::Inbox);
        assert!(e.reason.contains("no access token"), "{}", e.reason);
        // Nothing anywhere: the inbox set, reported as missing its token.
        let e = effective_notify_credentials(&NotifySecrets::default(), &MetaSecrets::default());
        assert_eq!(e.missing, vec!["access_token", "waba_id"]);
    }

    #[test]
    fn merge_keeps_what_is_not_named() {
        let stored = json!({"access_token": "a", "waba_id": "1", "custom": true})
            .as_object()
            .unwrap()
            .clone();
        let m = merge_fields(
            stored,
            &[
                ("access_token", FieldUpdate::Set(json!("b"))),
                ("waba_id", FieldUpdate::Keep),
                ("app_id", FieldUpdate::Set(json!("9"))),
            ],
        );
        assert_eq!(
            Value::Object(m),
            json!({"access_token": "b", "waba_id": "1", "custom": true, "app_id": "9"})
        );
    }

    #[test]
    fn proof_and_checks() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            appsecret_proof("The quick brown fox jumps over the lazy dog", "key"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert!(check_graph_id("102290129340398").is_ok());
        assert!(check_graph_id("").is_ok());
        assert!(check_graph_id("../x").is_err());
        assert!(check_secret_text("EAAB", 10).is_ok());
        assert!(check_secret_text("a b", 10).is_err());
        assert!(check_secret_text("ééé", 10).is_err());
        assert!(check_secret_text(&"a".repeat(11), 10).is_err());
    }

    #[test]
    fn secret_objects_parse_without_echo() {
        assert!(parse_object("id", "").unwrap().is_empty());
        let e = parse_object("id", "TOPSECRET not json")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("TOPSECRET"), "{e}");
        assert!(parse_object("id", "[1]").is_err());
        let ai: AiSettings = serde_json::from_str("{}").unwrap();
        assert_eq!((ai.enabled, ai.mode), (false, AiMode::Manual));
    }
}
