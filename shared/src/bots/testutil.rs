//! Fixtures shared by the bot engine's unit tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use crate::store::model::RelType;

use super::matcher::MessageFacts;
use super::model::*;
use super::render::Customer;

pub fn text_bot(id: &str, t: Trigger, trigger: Option<&str>, text: &str) -> Bot {
    Bot {
        id: id.into(),
        name: format!("bot {id}"),
        reply_type: t,
        trigger: trigger.map(String::from),
        minutes: None,
        business_hours: None,
        bot_type: ResponseKind::Text,
        response: BotResponse::Text { text: text.into() },
        rel_types: vec![],
        priority: 0,
        is_bot_active: true,
        marketing: false,
        send_count: 0,
        last_fired_at: None,
        version: 1,
        created_at: 0,
        updated_at: 0,
    }
}

pub fn with_response(mut b: Bot, r: BotResponse) -> Bot {
    b.bot_type = r.kind();
    b.response = r;
    b
}

pub fn group(id: &str, name: &str, words: &[&str]) -> SynonymGroup {
    SynonymGroup {
        id: id.into(),
        name: name.into(),
        words: words.iter().map(|w| w.to_string()).collect(),
        version: 1,
    }
}

pub fn hours(schedule: &str, tz: &str) -> BusinessHours {
    BusinessHours {
        schedule: schedule.into(),
        timezone: tz.into(),
        holidays: vec![],
    }
}

pub fn fields() -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("email".into(), "ada@example.com".into());
    m.insert("company".into(), "Analytical Engines".into());
    m
}

pub fn customer(f: &serde_json::Map<String, serde_json::Value>) -> Customer<'_> {
    Customer {
        name: Some("Ada Lovelace"),
        phone: Some("+34600111222"),
        wa_id: Some("34600111222"),
        rel_type: RelType::Leads,
        fields: f,
        opted_out: false,
    }
}

/// Wednesday 2025-06-11 12:00:00 UTC.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 11, 12, 0, 0).unwrap()
}

pub fn text_facts(text: &str) -> MessageFacts<'_> {
    MessageFacts {
        text: Some(text),
        reply_id: None,
        reply_title: None,
        rel_type: RelType::Leads,
        first_ever: false,
        session_start: false,
        at: t0(),
    }
}

pub fn option(id: &str, title: &str, reply: Option<&str>) -> MenuOption {
    MenuOption {
        id: id.into(),
        title: title.into(),
        description: None,
        reply: reply.map(String::from),
        submenu: None,
        handover: false,
    }
}

/// Main menu: 1 sales (reply), 2 support (submenu: 1 billing, 2 technical), 3 agent (handover).
pub fn sample_menu() -> MenuNode {
    let mut support = option("support", "Soporte técnico", Some("Support it is."));
    support.submenu = Some(MenuNode {
        body: "Which kind of support?".into(),
        button: "Support".into(),
        header: None,
        footer: None,
        options: vec![
            option("billing", "Billing", Some("Billing: billing@example.com")),
            option(
                "tech",
                "Technical",
                Some("Technical: see https://example.com/help"),
            ),
        ],
    });
    let mut agent = option("agent", "Talk to an agent", None);
    agent.handover = true;
    MenuNode {
        body: "Hi {{customer_first_name}}, what do you need?".into(),
        button: "Options".into(),
        header: Some("Main menu".into()),
        footer: None,
        options: vec![
            option("sales", "Sales", Some("Our sales team: sales@example.com")),
            support,
            agent,
        ],
    }
}

fn node(id: &str, kind: FlowNodeKind, data: FlowNodeData) -> FlowNode {
    FlowNode {
        id: id.into(),
        kind,
        data,
        position: Some(FlowPosition { x: 0.0, y: 0.0 }),
    }
}

fn edge(s: &str, t: &str, h: Option<&str>) -> FlowEdge {
    FlowEdge {
        id: format!("e-{s}-{t}"),
        source: s.into(),
        target: t.into(),
        source_handle: h.map(String::from),
    }
}

/// start → question (quote | human); quote → email input → quantity input → condition
/// (qty > 100: tier vip, else standard) → ticket → end; human → handover.
pub fn sample_flow() -> BotResponse {
    let d = FlowNodeData::default;
    let nodes = vec![
        node("start", FlowNodeKind::Start, d()),
        node(
            "q1",
            FlowNodeKind::Question,
            FlowNodeData {
                text: Some("How can we help, {{customer_first_name}}?".into()),
                options: vec![
                    FlowChoice {
                        id: "quote".into(),
                        title: "Get a quote".into(),
                    },
                    FlowChoice {
                        id: "human".into(),
                        title: "Talk to a human".into(),
                    },
                ],
                variable: Some("topic".into()),
                ..d()
            },
        ),
        node(
            "email",
            FlowNodeKind::Input,
            FlowNodeData {
                text: Some("Your email?".into()),
                variable: Some("email".into()),
                validation: Some(InputValidation::Email),
                invalid: Some("That is not an email address.".into()),
                ..d()
            },
        ),
        node(
            "qty",
            FlowNodeKind::Input,
            FlowNodeData {
                text: Some("How many units?".into()),
                variable: Some("qty".into()),
                validation: Some(InputValidation::Number),
                ..d()
            },
        ),
        node(
            "cond",
            FlowNodeKind::Condition,
            FlowNodeData {
                conditions: vec![FlowCondition {
                    id: "big".into(),
                    variable: "qty".into(),
                    op: ConditionOp::GreaterThan,
                    value: Some("100".into()),
                }],
                ..d()
            },
        ),
        node(
            "setvip",
            FlowNodeKind::SetVariable,
            FlowNodeData {
                variable: Some("tier".into()),
                value: Some("vip".into()),
                ..d()
            },
        ),
        node(
            "setstd",
            FlowNodeKind::SetVariable,
            FlowNodeData {
                variable: Some("tier".into()),
                value: Some("standard".into()),
                ..d()
            },
        ),
        node(
            "ticket",
            FlowNodeKind::Ticket,
            FlowNodeData {
                subject: Some("Quote for {{email}}".into()),
                description: Some("{{qty}} units, tier {{tier}}".into()),
                priority: Some("high".into()),
                ..d()
            },
        ),
        node(
            "end",
            FlowNodeKind::End,
            FlowNodeData {
                text: Some("Thanks! We will write to {{email}}.".into()),
                ..d()
            },
        ),
        node(
            "ho",
            FlowNodeKind::Handover,
            FlowNodeData {
                reason: Some("customer asked".into()),
                ..d()
            },
        ),
    ];
    let edges = vec![
        edge("start", "q1", None),
        edge("q1", "email", Some("quote")),
        edge("q1", "ho", Some("human")),
        edge("email", "qty", None),
        edge("qty", "cond", None),
        edge("cond", "setvip", Some("big")),
        edge("cond", "setstd", Some("else")),
        edge("setvip", "ticket", None),
        edge("setstd", "ticket", None),
        edge("ticket", "end", None),
    ];
    BotResponse::Flow { nodes, edges }
}

pub fn no_vars() -> BTreeMap<String, String> {
    BTreeMap::new()
}
