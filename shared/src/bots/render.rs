//! Placeholders, and a bot response turned into the [`OutboundContent`]s it sends.
//!
//! Placeholders are `{{name}}` (spaces inside the braces allowed):
//! - `{{customer_name}}`, `{{customer_first_name}}`, `{{customer_phone}}`;
//! - `{{lead.field}}`, `{{contact.field}}`, `{{staff.field}}`: a field of the customer's CRM
//!   record, only when the customer is of that `rel_type` (`{{lead.email}}` is empty for a
//!   contact);
//! - `{{var}}`: a flow variable;
//! - anything unknown renders as nothing. An unclosed `{{` is kept as written.
//!
//! Rendered texts are cut to Meta's limits (text 4096, interactive body 1024, header and footer
//! 60, caption 1024) so a long customer name never makes a send fail.

use std::collections::BTreeMap;

use crate::meta::outbound::{
    CAPTION_MAX, FOOTER_MAX, HEADER_TEXT_MAX, INTERACTIVE_BODY_MAX, ListRow, ListSection,
    MediaSource, OutboundContent, ReplyButton, TEXT_BODY_MAX, TemplateComponent, TemplateParameter,
};
use crate::store::model::RelType;

use super::model::{BotResponse, MenuNode, RatingStyle};

/// The customer a bot answers, for placeholders and the opt-out rule.
#[derive(Debug, Clone, Copy)]
pub struct Customer<'a> {
    pub name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub wa_id: Option<&'a str>,
    pub rel_type: RelType,
    /// The directory record's fields (name, email, company, …) for placeholders
    /// `{{lead.x}}` / `{{contact.x}}` / `{{staff.x}}`.
    pub fields: &'a serde_json::Map<String, serde_json::Value>,
    /// Opted out of marketing: no marketing bot and no template response.
    pub opted_out: bool,
}

/// Label of the list button of a rating request.
pub const RATING_BUTTON: &str = "⭐ 1-5";
/// Label of the list button of a flow question with more than three choices.
pub const QUESTION_LIST_BUTTON: &str = "Options";

/// Render the placeholders of `template` (see the module documentation).
pub fn render_text(template: &str, customer: &Customer, vars: &BTreeMap<String, String>) -> String {
    if !template.contains("{{") {
        return template.to_string();
    }
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            break;
        };
        out.push_str(&rest[..open]);
        let key = after[..close].trim();
        placeholder(key, customer, vars, &mut out);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

fn placeholder(key: &str, c: &Customer, vars: &BTreeMap<String, String>, out: &mut String) {
    match key {
        "customer_name" => out.push_str(c.name.unwrap_or("").trim()),
        "customer_first_name" => out.push_str(
            c.name
                .and_then(|n| n.split_whitespace().next())
                .unwrap_or(""),
        ),
        "customer_phone" => out.push_str(c.phone.or(c.wa_id).unwrap_or("")),
        _ => {
            if let Some((scope, field)) = key.split_once('.') {
                let rel = match scope {
                    "lead" | "leads" => Some(RelType::Leads),
                    "contact" | "contacts" => Some(RelType::Contacts),
                    "staff" => Some(RelType::Staff),
                    _ => None,
                };
                if let Some(rel) = rel {
                    if rel == c.rel_type
                        && let Some(v) = c.fields.get(field.trim())
                    {
                        push_value(v, out);
                    }
                    return;
                }
            }
            if let Some(v) = vars.get(key) {
                out.push_str(v);
            }
        }
    }
}

fn push_value(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        other => out.push_str(&other.to_string()),
    }
}

/// `s` cut to at most `max` characters.
pub fn clip(mut s: String, max: usize) -> String {
    if s.len() > max
        && let Some((i, _)) = s.char_indices().nth(max)
    {
        s.truncate(i);
    }
    s
}

/// Renders (or, for validation, copies) one text field with its limit.
pub(crate) trait Fill {
    fn fill(&self, s: &str, max: usize) -> String;
}

/// Copies texts as written (to validate a response's own texts against Meta's limits).
pub(crate) struct Raw;

impl Fill for Raw {
    fn fill(&self, s: &str, _max: usize) -> String {
        s.to_string()
    }
}

/// Renders placeholders and cuts to the limit.
pub(crate) struct Rendered<'a, 'c> {
    pub customer: &'a Customer<'c>,
    pub vars: &'a BTreeMap<String, String>,
}

impl Fill for Rendered<'_, '_> {
    fn fill(&self, s: &str, max: usize) -> String {
        clip(render_text(s, self.customer, self.vars), max)
    }
}

/// Optional header / footer / caption: blank (as written or once rendered) → left out.
fn opt(f: &dyn Fill, s: Option<&str>, max: usize) -> Option<String> {
    s.map(|s| f.fill(s, max)).filter(|s| !s.trim().is_empty())
}

/// The single message of a response, its texts filled by `f`. `None` for the kinds that send
/// no fixed message (flow, AI). A menu sends its main level.
pub(crate) fn build(resp: &BotResponse, f: &dyn Fill) -> Option<OutboundContent> {
    Some(match resp {
        BotResponse::Text { text } => OutboundContent::Text {
            body: f.fill(text, TEXT_BODY_MAX),
            preview_url: false,
        },
        BotResponse::Template { template } => {
            let mut t = template.clone();
            for c in &mut t.components {
                let params = match c {
                    TemplateComponent::Header { parameters }
                    | TemplateComponent::Body { parameters }
                    | TemplateComponent::Button { parameters, .. } => parameters,
                };
                for p in params {
                    if let TemplateParameter::Text { text, .. } = p {
                        *text = f.fill(text, usize::MAX);
                    }
                }
            }
            OutboundContent::Template(t)
        }
        BotResponse::Menu { menu, .. } => menu_level(menu, f),
        BotResponse::Flow { .. } | BotResponse::Ai { .. } => return None,
        BotResponse::Media {
            kind,
            link,
            media_id,
            caption,
            filename,
        } => OutboundContent::Media {
            kind: *kind,
            source: match (link, media_id) {
                (Some(l), _) => MediaSource::Link(l.trim().to_string()),
                (None, Some(id)) => MediaSource::Id(id.trim().to_string()),
                (None, None) => return None,
            },
            caption: opt(f, caption.as_deref(), CAPTION_MAX),
            filename: filename.clone(),
        },
        BotResponse::Location {
            latitude,
            longitude,
            name,
            address,
        } => OutboundContent::Location {
            latitude: *latitude,
            longitude: *longitude,
            name: opt(f, name.as_deref(), 1000),
            address: opt(f, address.as_deref(), 1000),
        },
        BotResponse::Buttons {
            body,
            header,
            footer,
            buttons,
        } => OutboundContent::Buttons {
            body: f.fill(body, INTERACTIVE_BODY_MAX),
            header: opt(f, header.as_deref(), HEADER_TEXT_MAX),
            footer: opt(f, footer.as_deref(), FOOTER_MAX),
            buttons: buttons.clone(),
        },
        BotResponse::Contacts { contacts } => OutboundContent::Contacts {
            contacts: contacts.clone(),
        },
        BotResponse::Rating { question, style } => rating_request(question, *style, f),
    })
}

/// The response's message with its texts as written (for validation).
pub(crate) fn raw_content(resp: &BotResponse) -> Option<OutboundContent> {
    build(resp, &Raw)
}

/// The message a response sends, rendered for `customer` (flow variables `vars`). `None` for a
/// flow (see [`super::flow`]) and an AI response (the caller asks the provider).
pub fn render_response(
    resp: &BotResponse,
    customer: &Customer,
    vars: &BTreeMap<String, String>,
) -> Option<OutboundContent> {
    build(resp, &Rendered { customer, vars })
}

/// One menu level as a list message (row id = option id).
pub(crate) fn menu_level(node: &MenuNode, f: &dyn Fill) -> OutboundContent {
    OutboundContent::List {
        body: f.fill(&node.body, INTERACTIVE_BODY_MAX),
        header: opt(f, node.header.as_deref(), HEADER_TEXT_MAX),
        footer: opt(f, node.footer.as_deref(), FOOTER_MAX),
        button: node.button.clone(),
        sections: vec![ListSection {
            title: None,
            rows: node
                .options
                .iter()
                .map(|o| ListRow {
                    id: o.id.clone(),
                    title: o.title.clone(),
                    description: o.description.clone().filter(|d| !d.trim().is_empty()),
                })
                .collect(),
        }],
    }
}

/// A menu level rendered for a customer.
pub fn render_menu_level(node: &MenuNode, customer: &Customer) -> OutboundContent {
    let vars = BTreeMap::new();
    menu_level(
        node,
        &Rendered {
            customer,
            vars: &vars,
        },
    )
}

/// The reply id of a rating of `stars`.
pub fn rating_id(stars: u8) -> String {
    format!("rating_{stars}")
}

fn stars(n: u8) -> String {
    "⭐".repeat(n as usize)
}

/// The rating request: a list of five rows (5 to 1 stars) or three buttons (1, 3, 5 stars).
pub(crate) fn rating_request(question: &str, style: RatingStyle, f: &dyn Fill) -> OutboundContent {
    let body = f.fill(question, INTERACTIVE_BODY_MAX);
    match style {
        RatingStyle::List => OutboundContent::List {
            body,
            header: None,
            footer: None,
            button: RATING_BUTTON.into(),
            sections: vec![ListSection {
                title: None,
                rows: (1..=5u8)
                    .rev()
                    .map(|n| ListRow {
                        id: rating_id(n),
                        title: stars(n),
                        description: None,
                    })
                    .collect(),
            }],
        },
        RatingStyle::Buttons => OutboundContent::Buttons {
            body,
            header: None,
            footer: None,
            buttons: [1u8, 3, 5]
                .into_iter()
                .map(|n| ReplyButton {
                    id: rating_id(n),
                    title: stars(n),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::model::{MenuOption, MenuSettings};
    use crate::meta::outbound::{
        ContactCard, ContactName, MediaKind, OutboundMessage, TemplateMessage,
    };
    use serde_json::json;

    fn fields() -> serde_json::Map<String, serde_json::Value> {
        json!({"email": "ada@example.com", "company": "Analytical", "score": 42, "vip": true, "none": null})
            .as_object()
            .unwrap()
            .clone()
    }

    fn customer<'a>(
        f: &'a serde_json::Map<String, serde_json::Value>,
        rel: RelType,
    ) -> Customer<'a> {
        Customer {
            name: Some("Ada Lovelace"),
            phone: Some("+34600111222"),
            wa_id: Some("34600111222"),
            rel_type: rel,
            fields: f,
            opted_out: false,
        }
    }

    #[test]
    fn placeholders() {
        let f = fields();
        let c = customer(&f, RelType::Leads);
        let mut vars = BTreeMap::new();
        vars.insert("order".to_string(), "A-17".to_string());
        let r = |t: &str| render_text(t, &c, &vars);
        assert_eq!(r("Hi {{customer_first_name}}!"), "Hi Ada!");
        assert_eq!(
            r("{{ customer_name }} / {{customer_phone}}"),
            "Ada Lovelace / +34600111222"
        );
        assert_eq!(
            r("{{lead.email}} {{lead.company}} {{lead.score}} {{lead.vip}}"),
            "ada@example.com Analytical 42 true"
        );
        assert_eq!(
            r("[{{contact.email}}][{{lead.none}}][{{lead.missing}}]"),
            "[][][]"
        );
        assert_eq!(r("order {{order}} {{unknown}}."), "order A-17 .");
        assert_eq!(r("broken {{customer_name"), "broken {{customer_name");
        assert_eq!(r("no placeholders"), "no placeholders");
        let contact = customer(&f, RelType::Contacts);
        assert_eq!(
            render_text("{{contact.email}}|{{lead.email}}", &contact, &vars),
            "ada@example.com|"
        );
        let anon = Customer {
            name: None,
            phone: None,
            ..contact
        };
        assert_eq!(
            render_text(
                "[{{customer_first_name}}][{{customer_phone}}]",
                &anon,
                &vars
            ),
            "[][34600111222]"
        );
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("ñandú".into(), 3), "ñan");
        assert_eq!(clip("abc".into(), 3), "abc");
    }

    fn valid(c: &OutboundContent) {
        OutboundMessage {
            to: "34600111222".into(),
            reply_to: None,
            biz_opaque_callback_data: None,
            content: c.clone(),
        }
        .validate()
        .unwrap_or_else(|e| panic!("{e}: {c:?}"));
    }

    #[test]
    fn every_response_kind_renders_to_a_valid_message() {
        let f = fields();
        let c = customer(&f, RelType::Leads);
        let vars = BTreeMap::new();
        let long_name = "N".repeat(100);
        let long = Customer {
            name: Some(&long_name),
            ..c
        };
        let cases = vec![
            BotResponse::Text {
                text: "Hello {{customer_first_name}}".into(),
            },
            BotResponse::Template {
                template: TemplateMessage {
                    name: "welcome".into(),
                    language: "es".into(),
                    components: vec![TemplateComponent::Body {
                        parameters: vec![TemplateParameter::Text {
                            text: "{{customer_first_name}}".into(),
                            parameter_name: None,
                        }],
                    }],
                },
            },
            BotResponse::Menu {
                menu: MenuNode {
                    body: "Hi {{customer_name}}, choose".into(),
                    button: "Options".into(),
                    header: Some("{{customer_name}}".into()),
                    footer: Some("".into()),
                    options: vec![MenuOption {
                        id: "1".into(),
                        title: "Sales".into(),
                        description: Some("Buy".into()),
                        reply: Some("ok".into()),
                        submenu: None,
                        handover: false,
                    }],
                },
                settings: MenuSettings::default(),
            },
            BotResponse::Media {
                kind: MediaKind::Document,
                link: Some("https://x.example/a.pdf".into()),
                media_id: None,
                caption: Some("For {{customer_name}}".into()),
                filename: Some("a.pdf".into()),
            },
            BotResponse::Media {
                kind: MediaKind::Image,
                link: None,
                media_id: Some("1234".into()),
                caption: None,
                filename: None,
            },
            BotResponse::Location {
                latitude: 40.4,
                longitude: -3.7,
                name: Some("Office".into()),
                address: None,
            },
            BotResponse::Buttons {
                body: "Hi {{customer_name}}".into(),
                header: Some("Dear {{customer_name}}".into()),
                footer: Some("{{unknown}}".into()),
                buttons: vec![ReplyButton {
                    id: "y".into(),
                    title: "Yes".into(),
                }],
            },
            BotResponse::Contacts {
                contacts: vec![ContactCard {
                    name: ContactName {
                        formatted_name: "Support".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                }],
            },
            BotResponse::Rating {
                question: "How did we do?".into(),
                style: RatingStyle::List,
            },
            BotResponse::Rating {
                question: "How did we do?".into(),
                style: RatingStyle::Buttons,
            },
        ];
        for r in &cases {
            for cust in [&c, &long] {
                let out = render_response(r, cust, &vars).unwrap();
                valid(&out);
            }
        }
        let OutboundContent::Text { body, .. } = render_response(&cases[0], &c, &vars).unwrap()
        else {
            panic!()
        };
        assert_eq!(body, "Hello Ada");
        let OutboundContent::Template(t) = render_response(&cases[1], &c, &vars).unwrap() else {
            panic!()
        };
        assert!(
            matches!(&t.components[0], TemplateComponent::Body { parameters }
            if matches!(&parameters[0], TemplateParameter::Text { text, .. } if text == "Ada"))
        );
        let OutboundContent::Buttons { footer, header, .. } =
            render_response(&cases[6], &long, &vars).unwrap()
        else {
            panic!()
        };
        assert_eq!(footer, None);
        assert_eq!(header.unwrap().chars().count(), 60);
        let OutboundContent::List {
            sections, button, ..
        } = render_response(&cases[8], &c, &vars).unwrap()
        else {
            panic!()
        };
        assert_eq!(button, RATING_BUTTON);
        let ids: Vec<_> = sections[0].rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["rating_5", "rating_4", "rating_3", "rating_2", "rating_1"]
        );
        let OutboundContent::Buttons { buttons, .. } =
            render_response(&cases[9], &c, &vars).unwrap()
        else {
            panic!()
        };
        let ids: Vec<_> = buttons.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["rating_1", "rating_3", "rating_5"]);
        assert!(render_response(&BotResponse::Ai { instructions: None }, &c, &vars).is_none());
        assert!(
            render_response(
                &BotResponse::Flow {
                    nodes: vec![],
                    edges: vec![]
                },
                &c,
                &vars
            )
            .is_none()
        );
    }
}
