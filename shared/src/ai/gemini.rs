//! Google's Gemini API (`POST {base}/models/{model}:generateContent`, key in the
//! `x-goog-api-key` header, never in the URL): the request body and the reading of its answer.
//! The conversation goes in `contents` (roles `user` / `model`), the rules in
//! `systemInstruction`, the answer's schema in `generationConfig.responseSchema`.
use serde_json::{Value, json};

use super::AiError;
use super::answer::gemini_schema;
use super::prompt::{Prompt, Role};

/// The model's path segment: `gemini-2.0-flash` or `models/gemini-2.0-flash` both name it.
pub fn model_path(model: &str) -> String {
    format!("models/{}", model.trim().trim_start_matches("models/"))
}

/// The request body.
pub fn request(prompt: &Prompt, max_output_tokens: u32) -> Value {
    let contents: Vec<Value> = prompt
        .turns
        .iter()
        .map(|t| {
            json!({
                "role": match t.role { Role::User => "user", Role::Assistant => "model" },
                "parts": [{"text": t.text}],
            })
        })
        .collect();
    json!({
        "systemInstruction": {"parts": [{"text": prompt.system}]},
        "contents": contents,
        "generationConfig": {
            "candidateCount": 1,
            "maxOutputTokens": max_output_tokens,
            "responseMimeType": "application/json",
            "responseSchema": gemini_schema(),
        },
    })
}

/// The model's text from a 200 answer (the parts of `candidates[0].content`); a blocked prompt,
/// a blocked or cut candidate is unusable.
pub fn answer_text(body: &Value) -> Result<String, AiError> {
    if let Some(r) = body
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
    {
        return Err(AiError::BadAnswer(format!("the prompt was blocked: {r}")));
    }
    let c = body
        .pointer("/candidates/0")
        .ok_or_else(|| AiError::BadAnswer("no candidates in the answer".into()))?;
    match c.get("finishReason").and_then(Value::as_str) {
        None | Some("STOP") => {}
        Some("MAX_TOKENS") => {
            return Err(AiError::BadAnswer(
                "the answer was cut at the token limit".into(),
            ));
        }
        Some(other) => return Err(AiError::BadAnswer(format!("the answer stopped: {other}"))),
    }
    let text: String = c
        .pointer("/content/parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    if text.trim().is_empty() {
        return Err(AiError::BadAnswer("the answer has no text".into()));
    }
    Ok(text)
}

/// `error.message` (and `error.status`) of an error answer.
pub fn error_message(body: &Value) -> Option<String> {
    let m = body.pointer("/error/message").and_then(Value::as_str)?;
    Some(
        match body.pointer("/error/status").and_then(Value::as_str) {
            Some(s) => format!("{s}: {m}"),
            None => m.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::prompt::Turn;

    #[test]
    fn the_request_maps_roles_and_asks_for_json() {
        let p = Prompt {
            system: "rules".into(),
            turns: vec![
                Turn {
                    role: Role::User,
                    text: "hi".into(),
                },
                Turn {
                    role: Role::Assistant,
                    text: "hello".into(),
                },
                Turn {
                    role: Role::User,
                    text: "price?".into(),
                },
            ],
        };
        let b = request(&p, 256);
        assert_eq!(b["systemInstruction"]["parts"][0]["text"], "rules");
        assert_eq!(b["contents"][1]["role"], "model");
        assert_eq!(b["contents"][2]["parts"][0]["text"], "price?");
        assert_eq!(
            b["generationConfig"]["responseMimeType"],
            "application/json"
        );
        assert_eq!(
            model_path("models/gemini-2.0-flash"),
            "models/gemini-2.0-flash"
        );
        assert_eq!(model_path("gemini-2.0-flash"), "models/gemini-2.0-flash");
    }

    #[test]
    fn reads_the_parts_and_refuses_blocked_or_cut_answers() {
        let ok = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "{\"reply\":"}, {"text": "\"x\"}"}]}, "finishReason": "STOP"}]});
        assert_eq!(answer_text(&ok).unwrap(), "{\"reply\":\"x\"}");
        assert!(answer_text(&json!({"promptFeedback": {"blockReason": "SAFETY"}})).is_err());
        assert!(answer_text(&json!({"candidates": [{"finishReason": "SAFETY"}]})).is_err());
        assert!(
            answer_text(
                &json!({"candidates": [{"content": {"parts": []}, "finishReason": "MAX_TOKENS"}]})
            )
            .is_err()
        );
        assert_eq!(
            error_message(
                &json!({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
            )
            .unwrap(),
            "RESOURCE_EXHAUSTED: quota"
        );
    }
}
