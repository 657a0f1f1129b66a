//! Per-recipient template parameters: a campaign's template carries text parameters with
//! placeholders over the recipient (`{name}`, `{first_name}`, `{phone}`, any field of the
//! recipient's record such as `{email}`), each with an optional fallback (`{first_name|there}`).
//! A placeholder with no value and no fallback fails the recipient (Meta refuses an empty
//! parameter) rather than sending a broken message.
use std::collections::BTreeMap;

use crate::meta::outbound::{TemplateComponent, TemplateMessage, TemplateParameter};

/// What a recipient offers the placeholders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientFields {
    pub name: Option<String>,
    pub phone: Option<String>,
    /// The record's other fields (lowercase keys).
    pub extra: BTreeMap<String, String>,
}

/// Where placeholders take their values (a campaign's recipient, a CRM event).
pub trait Fields {
    /// The value of a placeholder key (lower case), `None` when absent or empty.
    fn field(&self, key: &str) -> Option<String>;
}

impl Fields for RecipientFields {
    fn field(&self, key: &str) -> Option<String> {
        self.get(key)
    }
}

impl RecipientFields {
    fn get(&self, key: &str) -> Option<String> {
        let v = match key {
            "name" => self.name.clone(),
            "first_name" => self
                .name
                .as_deref()
                .and_then(|n| n.split_whitespace().next())
                .map(str::to_string),
            "phone" => self.phone.clone(),
            other => self.extra.get(other).cloned(),
        };
        v.filter(|s| !s.trim().is_empty())
    }
}

/// A placeholder with no value and no fallback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no value for {{{0}}} and the placeholder has no fallback")]
pub struct MissingField(pub String);

/// The placeholder keys a text uses (for validation on save).
pub fn placeholders(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        let (key, fallback) = match inner.split_once('|') {
            Some((k, f)) => (k.trim(), Some(f.to_string())),
            None => (inner.trim(), None),
        };
        let ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':'));
        if ok {
            out.push((key.to_ascii_lowercase(), fallback));
        }
        rest = &after[end + 1..];
    }
    out
}

/// Fills one text.
pub fn fill<F: Fields + ?Sized>(text: &str, f: &F) -> Result<String, MissingField> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (key, fallback) = match inner.split_once('|') {
            Some((k, fb)) => (k.trim(), Some(fb)),
            None => (inner.trim(), None),
        };
        let is_key = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':'));
        if is_key {
            match (f.field(&key.to_ascii_lowercase()), fallback) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(fb)) => out.push_str(fb),
                (None, None) => return Err(MissingField(key.to_string())),
            }
        } else {
            // Not a placeholder (e.g. JSON-looking text): kept as written.
            out.push('{');
            out.push_str(inner);
            out.push('}');
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The template for one recipient: every text parameter filled.
pub fn render<F: Fields + ?Sized>(
    t: &TemplateMessage,
    f: &F,
) -> Result<TemplateMessage, MissingField> {
    let mut t = t.clone();
    for c in &mut t.components {
        let params = match c {
            TemplateComponent::Header { parameters }
            | TemplateComponent::Body { parameters }
            | TemplateComponent::Button { parameters, .. } => parameters,
        };
        for p in params {
            if let TemplateParameter::Text { text, .. } = p {
                *text = fill(text, f)?;
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ana() -> RecipientFields {
        RecipientFields {
            name: Some("Ana Lima".into()),
            phone: Some("+15551230001".into()),
            extra: BTreeMap::from([("email".into(), "ana@example.com".into())]),
        }
    }

    #[test]
    fn placeholders_fill_with_values_then_fallbacks() {
        assert_eq!(fill("Hi {first_name}!", &ana()).unwrap(), "Hi Ana!");
        assert_eq!(
            fill("{name} <{email}>", &ana()).unwrap(),
            "Ana Lima <ana@example.com>"
        );
        let nobody = RecipientFields::default();
        assert_eq!(
            fill("Hi {first_name|there}!", &nobody).unwrap(),
            "Hi there!"
        );
        assert_eq!(
            fill("Hi {first_name}!", &nobody).unwrap_err(),
            MissingField("first_name".into())
        );
        assert_eq!(
            fill("{ \"a\": 1 } and {", &ana()).unwrap(),
            "{ \"a\": 1 } and {"
        );
    }

    #[test]
    fn placeholders_are_listed_with_their_fallbacks() {
        assert_eq!(
            placeholders("{Name} {code|none} {not a key}"),
            vec![("name".into(), None), ("code".into(), Some("none".into()))]
        );
    }
}
