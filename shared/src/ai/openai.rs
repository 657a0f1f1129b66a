//! OpenAI's Chat Completions API (`POST {base}/chat/completions`, bearer key): the request body
//! and the reading of its answer. Structured outputs ask for the answer's strict JSON Schema.
use serde_json::{Value, json};

use super::AiError;
use super::answer::openai_schema;
use super::prompt::{Prompt, Role};

/// The request body.
pub fn request(model: &str, prompt: &Prompt, max_output_tokens: u32) -> Value {
    let mut messages = vec![json!({"role": "system", "content": prompt.system})];
    messages.extend(prompt.turns.iter().map(|t| {
        json!({
            "role": match t.role { Role::User => "user", Role::Assistant => "assistant" },
            "content": t.text,
        })
    }));
    json!({
        "model": model,
        "messages": messages,
        "max_completion_tokens": max_output_tokens,
        "n": 1,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "whatsapp_reply", "strict": true, "schema": openai_schema()},
        },
    })
}

/// The model's text from a 200 answer (`choices[0].message.content`); a refusal or a cut
/// answer is unusable.
pub fn answer_text(body: &Value) -> Result<String, AiError> {
    let choice = body
        .pointer("/choices/0")
        .ok_or_else(|| AiError::BadAnswer("no choices in the answer".into()))?;
    let message = &choice["message"];
    if let Some(r) = message.get("refusal").and_then(Value::as_str) {
        return Err(AiError::BadAnswer(format!("the model refused: {r}")));
    }
    if choice.get("finish_reason").and_then(Value::as_str) == Some("length") {
        return Err(AiError::BadAnswer(
            "the answer was cut at the token limit".into(),
        ));
    }
    message
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| AiError::BadAnswer("the answer has no content".into()))
}

/// `error.message` of an error answer.
pub fn error_message(body: &Value) -> Option<String> {
    body.pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ai::prompt::Turn;

    #[test]
    fn the_request_has_system_then_the_turns_and_a_strict_schema() {
        let p = Prompt {
            system: "rules".into(),
            turns: vec![Turn {
                role: Role::User,
                text: "hi".into(),
            }],
        };
        let b = request("gpt-4o-mini", &p, 300);
        assert_eq!(
            b["messages"][0],
            json!({"role": "system", "content": "rules"})
        );
        assert_eq!(b["messages"][1], json!({"role": "user", "content": "hi"}));
        assert_eq!(b["response_format"]["json_schema"]["strict"], true);
        assert_eq!(b["max_completion_tokens"], 300);
    }

    #[test]
    fn reads_content_and_refuses_refusals_and_cut_answers() {
        let ok = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"reply\":\"x\",\"ticket\":null}", "refusal": null}, "finish_reason": "stop"}]});
        assert!(answer_text(&ok).unwrap().contains("reply"));
        let refused = json!({"choices": [{"message": {"role": "assistant", "content": null, "refusal": "no"}, "finish_reason": "stop"}]});
        assert!(answer_text(&refused).is_err());
        let cut =
            json!({"choices": [{"message": {"content": "{\"re"}, "finish_reason": "length"}]});
        assert!(answer_text(&cut).is_err());
        assert!(answer_text(&json!({})).is_err());
    }
}
