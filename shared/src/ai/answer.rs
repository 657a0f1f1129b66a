//! What we ask the AI to answer, and how its answer is read: a JSON object with the `reply` to
//! send and, when the customer described a problem staff must follow up, a `ticket` draft
//! (subject, description, priority). Both providers are given the schema (OpenAI as a strict
//! JSON Schema, Gemini as its OpenAPI subset); the answer is still checked here, and a model
//! that ignored the schema and answered plain text is taken as a plain reply.
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AiError;
use crate::meta::outbound::TEXT_BODY_MAX;

/// The ticket priorities the CRM knows.
pub const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
/// Bounds of a ticket draft's fields (characters).
pub const SUBJECT_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 4000;

/// The AI's answer, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AiAnswer {
    /// The message for the customer (trimmed, non-empty, within Meta's text limit).
    pub reply: String,
    /// A support request the conversation collected.
    pub ticket: Option<TicketDraft>,
}

/// A support request collected by the AI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketDraft {
    pub subject: String,
    pub description: String,
    /// One of [`PRIORITIES`] (anything else is read as `medium`).
    pub priority: String,
}

/// The answer's JSON Schema for OpenAI's strict structured outputs (every property required,
/// no other property; the ticket is `null` when there is none).
pub fn openai_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "reply": {"type": "string", "description": "The WhatsApp message to send to the customer."},
            "ticket": {
                "description": "A support request for staff, or null when none is needed yet.",
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "subject": {"type": "string"},
                            "description": {"type": "string"},
                            "priority": {"type": "string", "enum": PRIORITIES},
                        },
                        "required": ["subject", "description", "priority"],
                        "additionalProperties": false,
                    }
                ]
            }
        },
        "required": ["reply", "ticket"],
        "additionalProperties": false,
    })
}

/// The same schema in the OpenAPI subset Gemini's `responseSchema` takes.
pub fn gemini_schema() -> Value {
    json!({
        "type": "OBJECT",
        "properties": {
            "reply": {"type": "STRING", "description": "The WhatsApp message to send to the customer."},
            "ticket": {
                "type": "OBJECT",
                "nullable": true,
                "description": "A support request for staff, or null when none is needed yet.",
                "properties": {
                    "subject": {"type": "STRING"},
                    "description": {"type": "STRING"},
                    "priority": {"type": "STRING", "format": "enum", "enum": PRIORITIES},
                },
                "required": ["subject", "description", "priority"],
                "propertyOrdering": ["subject", "description", "priority"],
            }
        },
        "required": ["reply"],
        "propertyOrdering": ["reply", "ticket"],
    })
}

#[derive(Deserialize)]
struct Wire {
    reply: Option<String>,
    #[serde(default)]
    ticket: Option<WireTicket>,
}

#[derive(Deserialize)]
struct WireTicket {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: String,
}

fn clip(s: &str, max: usize) -> String {
    let t = s.trim();
    match t.char_indices().nth(max) {
        Some((i, _)) => t[..i].trim_end().to_string(),
        None => t.to_string(),
    }
}

/// Reads the model's text: the JSON answer (inside a Markdown code fence too), or plain text
/// taken as the reply.
pub fn parse(text: &str) -> Result<AiAnswer, AiError> {
    let t = text.trim();
    let unfenced = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|r| r.trim_end().strip_suffix("```"))
        .map(str::trim)
        .unwrap_or(t);
    let (reply, ticket) = match serde_json::from_str::<Wire>(unfenced) {
        Ok(w) => (w.reply.unwrap_or_default(), w.ticket),
        // Something shaped like JSON that is not our answer is not a reply to send.
        Err(_) if unfenced.starts_with('{') || unfenced.starts_with('[') => {
            return Err(AiError::BadAnswer(
                "the answer is JSON but not {reply, ticket}".into(),
            ));
        }
        Err(_) => (unfenced.to_string(), None),
    };
    let reply = clip(&reply, TEXT_BODY_MAX);
    if reply.is_empty() {
        return Err(AiError::BadAnswer("the answer has no reply text".into()));
    }
    let ticket = ticket.and_then(|t| {
        let subject = clip(&t.subject, SUBJECT_MAX);
        let description = clip(&t.description, DESCRIPTION_MAX);
        if subject.is_empty() && description.is_empty() {
            return None;
        }
        let p = t.priority.trim().to_lowercase();
        Some(TicketDraft {
            subject: if subject.is_empty() {
                clip(&description, SUBJECT_MAX)
            } else {
                subject
            },
            description,
            priority: if PRIORITIES.contains(&p.as_str()) {
                p
            } else {
                "medium".into()
            },
        })
    });
    Ok(AiAnswer { reply, ticket })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_json_answer_with_and_without_a_ticket() {
        let a = parse(r#"{"reply":" Hello! ","ticket":null}"#).unwrap();
        assert_eq!((a.reply.as_str(), a.ticket), ("Hello!", None));
        let a = parse(
            "```json\n{\"reply\":\"Noted\",\"ticket\":{\"subject\":\"Broken pump\",\"description\":\"It leaks\",\"priority\":\"HIGH\"}}\n```",
        )
        .unwrap();
        assert_eq!(
            a.ticket,
            Some(TicketDraft {
                subject: "Broken pump".into(),
                description: "It leaks".into(),
                priority: "high".into()
            })
        );
    }

    #[test]
    fn an_odd_priority_is_medium_and_a_missing_subject_comes_from_the_description() {
        let a = parse(r#"{"reply":"ok","ticket":{"subject":"","description":"Invoice 12 is wrong","priority":"asap"}}"#).unwrap();
        let t = a.ticket.unwrap();
        assert_eq!(
            (t.subject.as_str(), t.priority.as_str()),
            ("Invoice 12 is wrong", "medium")
        );
        let a = parse(r#"{"reply":"ok","ticket":{"subject":" ","description":""}}"#).unwrap();
        assert_eq!(a.ticket, None);
    }

    #[test]
    fn plain_text_is_a_reply_and_empty_or_foreign_json_is_refused() {
        assert_eq!(
            parse("Sure, we open at 9.").unwrap().reply,
            "Sure, we open at 9."
        );
        assert!(matches!(parse("  "), Err(AiError::BadAnswer(_))));
        assert!(matches!(
            parse(r#"{"reply":""}"#),
            Err(AiError::BadAnswer(_))
        ));
        assert!(matches!(
            parse(r#"{"answer":"x"}"#),
            Err(AiError::BadAnswer(_))
        ));
        assert!(matches!(parse("[1,2]"), Err(AiError::BadAnswer(_))));
    }

    #[test]
    fn a_long_reply_is_clipped_to_what_meta_takes() {
        let long = format!(
            r#"{{"reply":"{}","ticket":null}}"#,
            "é".repeat(TEXT_BODY_MAX + 10)
        );
        assert_eq!(parse(&long).unwrap().reply.chars().count(), TEXT_BODY_MAX);
    }

    #[test]
    fn the_schemas_name_the_same_fields() {
        let o = openai_schema();
        let g = gemini_schema();
        assert_eq!(o["required"], json!(["reply", "ticket"]));
        assert_eq!(g["propertyOrdering"], json!(["reply", "ticket"]));
        assert_eq!(
            o["properties"]["ticket"]["anyOf"][1]["properties"]["priority"]["enum"],
            g["properties"]["ticket"]["properties"]["priority"]["enum"]
        );
    }
}
