//! The context an AI answer is asked with: fixed rules, the admin's system prompt, the bot's own
//! instructions, and the recent conversation, bounded in messages and characters (newest kept)
//! so a long conversation costs the same as a short one.
use serde_json::Value;

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The customer.
    User,
    /// The business (staff, bots, the AI).
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

/// What the provider is asked with. `turns` is never empty, alternates roles, starts and ends
/// with the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub system: String,
    pub turns: Vec<Turn>,
}

/// Bounds of the conversation given as context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContextLimits {
    pub max_messages: usize,
    /// All turns together.
    pub max_chars: usize,
    /// One message (longer ones are cut).
    pub max_message_chars: usize,
    /// The admin's system prompt and the bot's instructions, each.
    pub max_instruction_chars: usize,
}

impl Default for ContextLimits {
    fn default() -> Self {
        Self {
            max_messages: 20,
            max_chars: 6_000,
            max_message_chars: 1_000,
            max_instruction_chars: 4_000,
        }
    }
}

/// One message of the conversation, oldest first.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub from_customer: bool,
    pub text: &'a str,
}

/// What the prompt says besides the conversation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The admin's system prompt (`/settings/ai`).
    pub system_prompt: &'a str,
    /// The AI bot's own instructions.
    pub instructions: Option<&'a str>,
    pub customer_name: Option<&'a str>,
    /// A ticket was already requested from this conversation.
    pub ticket_open: bool,
}

const RULES: &str = "You are the WhatsApp assistant of a business, writing to one of its customers. \
Answer briefly, in the customer's language, as plain text suitable for WhatsApp. \
Use only what you were told here; when you do not know, say that a member of the team will follow up. \
Answer with JSON: `reply` is the message to send to the customer; `ticket` is null, unless the customer \
described a problem the team must follow up and gave enough detail for it, in which case it holds a short \
`subject`, a `description` with the details, and a `priority` (low, medium, high or urgent); the reply then \
tells the customer that the request was passed to the team.";

fn clip(s: &str, max: usize) -> &str {
    let t = s.trim();
    match t.char_indices().nth(max) {
        Some((i, _)) => &t[..i],
        None => t,
    }
}

/// Builds the prompt. The newest messages are kept within the limits; consecutive messages of
/// one side are joined; the business's messages before the customer's first are dropped (both
/// providers expect the customer to speak first). With no customer text in the window, the
/// last turn says so, so the model still has something to answer.
pub fn build(ctx: &Context, history: &[Line], limits: &ContextLimits) -> Prompt {
    let mut system = RULES.to_string();
    if ctx.ticket_open {
        system.push_str(
            "\nA support request was already passed to the team from this conversation: do not \
             open another one for the same problem.",
        );
    }
    if let Some(name) = ctx.customer_name.map(str::trim).filter(|n| !n.is_empty()) {
        system.push_str("\nThe customer's name: ");
        system.push_str(clip(name, 100));
    }
    let sp = clip(ctx.system_prompt, limits.max_instruction_chars);
    if !sp.is_empty() {
        system.push_str("\n\nThe business's instructions:\n");
        system.push_str(sp);
    }
    if let Some(i) = ctx
        .instructions
        .map(|i| clip(i, limits.max_instruction_chars))
        && !i.is_empty()
    {
        system.push_str("\n\nFor this answer:\n");
        system.push_str(i);
    }

    // Newest first, within the bounds.
    let mut kept: Vec<Line> = Vec::new();
    let mut total = 0;
    for l in history.iter().rev() {
        if kept.len() == limits.max_messages {
            break;
        }
        let text = clip(l.text, limits.max_message_chars);
        if text.is_empty() {
            continue;
        }
        let n = text.chars().count();
        if total + n > limits.max_chars && !kept.is_empty() {
            break;
        }
        total += n;
        kept.push(Line {
            from_customer: l.from_customer,
            text,
        });
    }
    kept.reverse();
    let first_customer = kept.iter().position(|l| l.from_customer);
    let mut turns: Vec<Turn> = Vec::new();
    for l in kept.into_iter().skip(first_customer.unwrap_or(usize::MAX)) {
        let role = if l.from_customer {
            Role::User
        } else {
            Role::Assistant
        };
        match turns.last_mut() {
            Some(t) if t.role == role => {
                t.text.push('\n');
                t.text.push_str(l.text);
            }
            _ => turns.push(Turn {
                role,
                text: l.text.to_string(),
            }),
        }
    }
    if turns.last().is_none_or(|t| t.role != Role::User) {
        turns.push(Turn {
            role: Role::User,
            text: "(The customer wrote again without text, e.g. a photo or a sticker.)".into(),
        });
    }
    Prompt { system, turns }
}

/// The text of a stored message for the context: the body of a text, the title of a button or
/// list answer, the caption of media, the body of an interactive message we sent, a template's
/// name; otherwise its summary.
pub fn message_text(raw: &str, summary: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(raw) else {
        return summary.to_string();
    };
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
    let found = match kind {
        "text" => s("/text/body"),
        "interactive" => s("/interactive/button_reply/title")
            .or_else(|| s("/interactive/list_reply/title"))
            .or_else(|| s("/interactive/body/text")),
        "button" => s("/button/text"),
        "image" | "video" | "document" => s(&format!("/{kind}/caption")),
        "template" => s("/template/name").map(|n| format!("(template {n})")),
        _ => None,
    };
    found
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| summary.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(from_customer: bool, text: &str) -> Line<'_> {
        Line {
            from_customer,
            text,
        }
    }

    #[test]
    fn turns_alternate_start_and_end_with_the_customer() {
        let h = [
            l(false, "Welcome!"),
            l(true, "hi"),
            l(true, "anyone?"),
            l(false, "Yes, how can I help?"),
            l(true, "my order"),
        ];
        let p = build(&Context::default(), &h, &ContextLimits::default());
        let roles: Vec<Role> = p.turns.iter().map(|t| t.role).collect();
        assert_eq!(roles, [Role::User, Role::Assistant, Role::User]);
        assert_eq!(p.turns[0].text, "hi\nanyone?");
        let p = build(
            &Context::default(),
            &[l(true, "hi"), l(false, "Hello")],
            &ContextLimits::default(),
        );
        assert_eq!(p.turns.last().unwrap().role, Role::User);
        let p = build(&Context::default(), &[], &ContextLimits::default());
        assert_eq!(p.turns.len(), 1);
    }

    #[test]
    fn the_context_is_bounded_keeping_the_newest() {
        let long = "x".repeat(5_000);
        let mut h: Vec<Line> = (0..50).map(|_| l(true, "old")).collect();
        h.push(l(false, &long));
        h.push(l(true, "newest question"));
        let limits = ContextLimits::default();
        let p = build(&Context::default(), &h, &limits);
        let chars: usize = p.turns.iter().map(|t| t.text.chars().count()).sum();
        assert!(chars <= limits.max_chars + limits.max_messages, "{chars}");
        assert!(p.turns.last().unwrap().text.ends_with("newest question"));
        let lines: usize = p.turns.iter().map(|t| t.text.lines().count()).sum();
        assert!(lines <= limits.max_messages);
    }

    #[test]
    fn the_system_text_carries_the_admin_prompt_the_instructions_and_the_name() {
        let ctx = Context {
            system_prompt: "We sell bikes.",
            instructions: Some("Answer about opening hours."),
            customer_name: Some("Ana"),
            ticket_open: true,
        };
        let p = build(&ctx, &[l(true, "hi")], &ContextLimits::default());
        for part in ["We sell bikes.", "opening hours", "Ana", "already passed"] {
            assert!(p.system.contains(part), "{part}");
        }
    }

    #[test]
    fn message_text_reads_bodies_titles_and_captions() {
        assert_eq!(
            message_text(r#"{"type":"text","text":{"body":"full text"}}"#, "full…"),
            "full text"
        );
        assert_eq!(
            message_text(
                r#"{"type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"a","title":"Sales"}}}"#,
                ""
            ),
            "Sales"
        );
        assert_eq!(
            message_text(r#"{"type":"image","image":{"id":"1"}}"#, "[image]"),
            "[image]"
        );
        assert_eq!(message_text("not json", "summary"), "summary");
    }
}
