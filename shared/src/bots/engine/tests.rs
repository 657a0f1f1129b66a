use chrono::Duration;

use super::*;
use crate::bots::model::{MenuSettings, RatingStyle, SynonymGroup};
use crate::bots::testutil::*;
use crate::meta::outbound::{
    MediaKind, OutboundMessage, ReplyButton, TemplateComponent, TemplateMessage, TemplateParameter,
};
use crate::store::model::RelType;

struct T {
    set: CompiledBots,
    fields: serde_json::Map<String, serde_json::Value>,
    limits: Limits,
    ai_auto: bool,
    staff_at: Option<i64>,
    opted_out: bool,
}

impl T {
    fn new(bots: Vec<Bot>) -> Self {
        Self::with_groups(bots, &[])
    }
    fn with_groups(bots: Vec<Bot>, groups: &[SynonymGroup]) -> Self {
        let set = CompiledBots::compile(&bots, groups);
        assert!(set.skipped().is_empty(), "{:?}", set.skipped());
        Self {
            set,
            fields: fields(),
            limits: Limits::default(),
            ai_auto: false,
            staff_at: None,
            opted_out: false,
        }
    }
    fn customer(&self) -> Customer<'_> {
        Customer {
            opted_out: self.opted_out,
            ..customer(&self.fields)
        }
    }
    fn eval(&self, f: MessageFacts, state: &BotState) -> Decision {
        let msg = Inbound {
            wamid: "wamid.IN",
            facts: f,
            customer: self.customer(),
            last_staff_reply_at: self.staff_at,
            ai_auto: self.ai_auto,
        };
        let d = evaluate(&self.set, &msg, state, &self.limits);
        // Every reply is a valid message, and evaluation is deterministic (retries).
        for r in &d.replies {
            valid(&r.content);
        }
        assert_eq!(d, evaluate(&self.set, &msg, state, &self.limits));
        d
    }
    fn say(&self, text: &str, state: &BotState) -> Decision {
        self.eval(text_facts(text), state)
    }
    fn tap(&self, id: &str, title: &str, state: &BotState) -> Decision {
        let mut f = text_facts("");
        f.text = None;
        f.reply_id = Some(id);
        f.reply_title = Some(title);
        self.eval(f, state)
    }
}

fn valid(c: &OutboundContent) {
    OutboundMessage {
        to: "34600111222".into(),
        reply_to: Some("wamid.IN".into()),
        biz_opaque_callback_data: None,
        content: c.clone(),
    }
    .validate()
    .unwrap_or_else(|e| panic!("{e}: {c:?}"));
}

fn at(minutes: i64) -> chrono::DateTime<chrono::Utc> {
    t0() + Duration::minutes(minutes)
}

fn ms(minutes: i64) -> i64 {
    at(minutes).timestamp_millis()
}

fn texts(d: &Decision) -> Vec<String> {
    d.replies
        .iter()
        .map(|r| match &r.content {
            OutboundContent::Text { body, .. } => body.clone(),
            OutboundContent::List { body, .. } | OutboundContent::Buttons { body, .. } => {
                format!("[{body}]")
            }
            other => format!("<{}>", other.graph_type()),
        })
        .collect()
}

fn steps(d: &Decision) -> Vec<(String, String)> {
    d.replies
        .iter()
        .map(|r| (r.bot_id.clone(), r.step.clone()))
        .collect()
}

fn fired(d: &Decision) -> Vec<String> {
    d.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Fired { bot_id } => Some(bot_id.clone()),
            _ => None,
        })
        .collect()
}

fn bot(id: &str, t: Trigger, trigger: Option<&str>, text: &str) -> Bot {
    text_bot(id, t, trigger, text)
}

// ----- triggers through evaluate ----------------------------------------------------------

#[test]
fn each_message_trigger_answers_and_misses() {
    let groups = [group("g", "thanks", &["gracias", "danke", "thank you"])];
    let mut within = bot("w", Trigger::WithinHours, None, "We are open");
    within.business_hours = Some(hours("mon-fri 09:00-17:00", "Europe/Madrid"));
    let mut outside = bot("o", Trigger::OutsideHours, None, "We are closed");
    outside.business_hours = within.business_hours.clone();
    let t = T::with_groups(
        vec![
            bot("exact", Trigger::Exact, Some("Hola"), "exact"),
            bot("contains", Trigger::Contains, Some("precio"), "contains"),
            bot("kw", Trigger::Keyword, Some("horario, opening hours"), "kw"),
            bot("syn", Trigger::Synonym, Some("thanks"), "syn"),
            bot("first", Trigger::FirstMessage, None, "first"),
            bot("session", Trigger::SessionStart, None, "session"),
        ],
        &groups,
    );
    let s = BotState::default();
    assert_eq!(texts(&t.say("HOLA!", &s)), ["exact"]);
    assert_eq!(
        t.say("hola amigo", &s).silenced.as_deref(),
        Some("no_match")
    );
    assert_eq!(texts(&t.say("¿Qué PRECIO tiene?", &s)), ["contains"]);
    assert!(t.say("preciosa", &s).replies.is_empty());
    assert_eq!(texts(&t.say("your opening hours?", &s)), ["kw"]);
    assert!(t.say("opening soon", &s).replies.is_empty());
    assert_eq!(texts(&t.say("Thank you!", &s)), ["syn"]);
    let mut f = text_facts("something");
    f.first_ever = true;
    assert_eq!(texts(&t.eval(f, &s)), ["first"]);
    f.first_ever = false;
    f.session_start = true;
    assert_eq!(texts(&t.eval(f, &s)), ["session"]);

    let ht = T::new(vec![within, outside]);
    // Wednesday 14:00 Madrid.
    assert_eq!(texts(&ht.say("hi", &s)), ["We are open"]);
    let mut late = text_facts("hi");
    late.at = at(8 * 60);
    assert_eq!(texts(&ht.eval(late, &s)), ["We are closed"]);
}

#[test]
fn first_of_each_family_answers_up_to_the_limit() {
    let mut kw2 = bot("kw2", Trigger::Keyword, Some("hello"), "kw2");
    kw2.priority = 2;
    let mut kw1 = bot("kw1", Trigger::Keyword, Some("hello"), "kw1");
    kw1.priority = 1;
    let syn = bot("syn", Trigger::Synonym, Some("greet"), "syn");
    let groups = [group("g", "greet", &["hello"])];
    let t = T::with_groups(
        vec![
            kw2,
            kw1,
            syn,
            bot("ex", Trigger::Exact, Some("hello"), "ex"),
            bot("co", Trigger::Contains, Some("hello"), "co"),
            bot("ss", Trigger::SessionStart, None, "ss"),
        ],
        &groups,
    );
    let mut f = text_facts("hello");
    f.session_start = true;
    // Order: priority 0 (co, ex, ss, syn), then kw1, kw2. Families: contains, exact, session,
    // keyword/synonym (syn first) → four candidates, three allowed.
    let d = t.eval(f, &BotState::default());
    assert_eq!(texts(&d), ["co", "ex", "ss"]);
    assert_eq!(fired(&d), ["co", "ex", "ss"]);
    let mut t = t;
    t.limits.max_replies_per_message = 10;
    let d = t.eval(f, &BotState::default());
    assert_eq!(texts(&d), ["co", "ex", "ss", "syn"]);
    assert_eq!(
        steps(&d),
        [
            ("co", "text"),
            ("ex", "text"),
            ("ss", "text"),
            ("syn", "text")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
}

#[test]
fn rel_types_filter_applies() {
    let mut b = bot("b", Trigger::Contains, Some("invoice"), "for contacts");
    b.rel_types = vec![RelType::Contacts];
    let t = T::new(vec![b]);
    assert!(t.say("my invoice", &BotState::default()).replies.is_empty());
    let mut f = text_facts("my invoice");
    f.rel_type = RelType::Contacts;
    assert_eq!(texts(&t.eval(f, &BotState::default())), ["for contacts"]);
}

#[test]
fn accents_and_case_do_not_matter() {
    let t = T::new(vec![
        bot("a", Trigger::Exact, Some("información"), "info"),
        bot("b", Trigger::Contains, Some("ZURÜCKRUF"), "callback"),
    ]);
    let s = BotState::default();
    assert_eq!(texts(&t.say("INFORMACION", &s)), ["info"]);
    assert_eq!(texts(&t.say("Información.", &s)), ["info"]);
    assert_eq!(texts(&t.say("bitte zuruckruf morgen", &s)), ["callback"]);
}

#[test]
fn placeholders_are_rendered_for_the_customer() {
    let t = T::new(vec![bot(
        "a",
        Trigger::Exact,
        Some("hi"),
        "Hi {{customer_first_name}} from {{lead.company}}{{contact.company}}",
    )]);
    assert_eq!(
        texts(&t.say("hi", &BotState::default())),
        ["Hi Ada from Analytical Engines"]
    );
}

#[test]
fn no_content_no_answer() {
    let t = T::new(vec![
        bot("s", Trigger::SessionStart, None, "welcome"),
        bot("c", Trigger::Contains, Some("x"), "x"),
    ]);
    let mut f = text_facts("");
    f.text = None;
    let d = t.eval(f, &BotState::default());
    assert!(d.replies.is_empty() && d.effects.is_empty());
    assert_eq!(d.silenced.as_deref(), Some("no_content"));
    // A media message (no caption) that opens a session still gets the welcome.
    f.session_start = true;
    assert_eq!(texts(&t.eval(f, &BotState::default())), ["welcome"]);
    // Blank text counts as none.
    let d = t.say("   ", &BotState::default());
    assert_eq!(d.silenced.as_deref(), Some("no_content"));
}

// ----- every response kind ----------------------------------------------------------------

#[test]
fn every_response_kind_is_sent_and_valid() {
    let responses = vec![
        BotResponse::Text {
            text: "hello {{customer_name}}".into(),
        },
        BotResponse::Template {
            template: TemplateMessage {
                name: "promo".into(),
                language: "en_US".into(),
                components: vec![TemplateComponent::Body {
                    parameters: vec![TemplateParameter::Text {
                        text: "{{customer_first_name}}".into(),
                        parameter_name: None,
                    }],
                }],
            },
        },
        BotResponse::Menu {
            menu: sample_menu(),
            settings: MenuSettings::default(),
        },
        sample_flow(),
        BotResponse::Media {
            kind: MediaKind::Image,
            link: Some("https://cdn.example.com/a.png".into()),
            media_id: None,
            caption: Some("for {{customer_first_name}}".into()),
            filename: None,
        },
        BotResponse::Location {
            latitude: 40.41,
            longitude: -3.70,
            name: Some("HQ".into()),
            address: None,
        },
        BotResponse::Buttons {
            body: "Yes or no?".into(),
            header: None,
            footer: None,
            buttons: vec![
                ReplyButton {
                    id: "y".into(),
                    title: "Yes".into(),
                },
                ReplyButton {
                    id: "n".into(),
                    title: "No".into(),
                },
            ],
        },
        BotResponse::Contacts {
            contacts: vec![crate::meta::outbound::ContactCard {
                name: crate::meta::outbound::ContactName {
                    formatted_name: "Support".into(),
                    ..Default::default()
                },
                ..Default::default()
            }],
        },
        BotResponse::Rating {
            question: "Rate us".into(),
            style: RatingStyle::Buttons,
        },
    ];
    let expected = [
        ("text", "text"),
        ("template", "template"),
        ("menu", "interactive"),
        ("flow:q1", "interactive"),
        ("media", "image"),
        ("location", "location"),
        ("buttons", "interactive"),
        ("contacts", "contacts"),
        ("rating", "interactive"),
    ];
    for (r, (step, ty)) in responses.into_iter().zip(expected) {
        let t = T::new(vec![with_response(
            bot("b", Trigger::Exact, Some("go"), ""),
            r,
        )]);
        let d = t.say("go", &BotState::default());
        assert_eq!(d.replies.len(), 1, "{step}");
        assert_eq!(d.replies[0].step, step);
        assert_eq!(d.replies[0].content.graph_type(), ty);
        assert_eq!(fired(&d), ["b"]);
        assert_eq!(d.silenced, None);
    }
}

#[test]
fn ai_bot_and_ai_auto() {
    let ai = with_response(
        bot("ai", Trigger::Contains, Some("question"), ""),
        BotResponse::Ai {
            instructions: Some("Be brief".into()),
        },
    );
    let mut t = T::new(vec![ai, bot("t", Trigger::Exact, Some("hi"), "hello")]);
    let d = t.say("I have a question", &BotState::default());
    assert!(d.replies.is_empty());
    assert_eq!(d.silenced, None);
    assert_eq!(
        d.effects[0],
        Effect::AiReply {
            bot_id: Some("ai".into()),
            instructions: Some("Be brief".into())
        }
    );
    // Nothing matched: the AI answers only in auto mode.
    assert!(t.say("unrelated", &BotState::default()).effects.is_empty());
    t.ai_auto = true;
    let d = t.say("unrelated", &BotState::default());
    assert_eq!(
        d.effects,
        [Effect::AiReply {
            bot_id: None,
            instructions: None
        }]
    );
    // Something answered: no AI.
    let d = t.say("hi", &BotState::default());
    assert!(
        !d.effects
            .iter()
            .any(|e| matches!(e, Effect::AiReply { .. }))
    );
}

#[test]
fn only_one_stateful_response_per_message() {
    let menu = with_response(
        bot("a-menu", Trigger::Contains, Some("help"), ""),
        BotResponse::Menu {
            menu: sample_menu(),
            settings: MenuSettings::default(),
        },
    );
    let rating = with_response(
        bot("b-rating", Trigger::Exact, Some("help"), ""),
        BotResponse::Rating {
            question: "Rate?".into(),
            style: RatingStyle::List,
        },
    );
    let text = bot("c-text", Trigger::Keyword, Some("help"), "plain");
    let t = T::new(vec![menu, rating, text]);
    let d = t.say("help", &BotState::default());
    assert_eq!(fired(&d), ["a-menu", "c-text"]);
    assert!(d.state.menu.is_some());
    assert!(d.state.rating.is_none());
}

// ----- silence rules ----------------------------------------------------------------------

#[test]
fn handed_over_conversations_are_silent() {
    let t = T::new(vec![bot("a", Trigger::Contains, Some("hi"), "hello")]);
    let state = BotState {
        handed_over: Some(Handover {
            at_ms: 1,
            reason: "menu".into(),
            bot_id: None,
        }),
        ..Default::default()
    };
    let d = t.say("hi", &state);
    assert!(d.replies.is_empty() && d.effects.is_empty());
    assert_eq!(d.silenced.as_deref(), Some("handed_over"));
    assert_eq!(d.state, state);
}

#[test]
fn quiet_after_a_staff_reply() {
    let mut t = T::new(vec![bot("a", Trigger::Contains, Some("hi"), "hello")]);
    t.ai_auto = true;
    t.staff_at = Some(ms(-29));
    let d = t.say("hi", &BotState::default());
    assert_eq!(d.silenced.as_deref(), Some("staff_active"));
    assert!(d.replies.is_empty() && d.effects.is_empty());
    t.staff_at = Some(ms(-31));
    assert_eq!(texts(&t.say("hi", &BotState::default())), ["hello"]);
}

#[test]
fn per_minute_limit() {
    let mut t = T::new(vec![
        bot("a", Trigger::Contains, Some("hi"), "one"),
        bot("b", Trigger::Exact, Some("hi"), "two"),
    ]);
    // Six sends in the last minute: all dropped.
    let busy = BotState {
        recent_sends: (0..6).map(|i| ms(0) - 1_000 * i).collect(),
        ..Default::default()
    };
    let d = t.say("hi", &busy);
    assert!(d.replies.is_empty());
    assert_eq!(d.silenced.as_deref(), Some("rate_limited"));
    // Five: one more fits, the other is dropped.
    let five = BotState {
        recent_sends: (0..5).map(|i| ms(0) - 1_000 * i).collect(),
        ..Default::default()
    };
    let d = t.say("hi", &five);
    assert_eq!(texts(&d), ["one"]);
    assert_eq!(d.silenced, None);
    assert_eq!(d.state.recent_sends.len(), 6);
    // Sends older than a minute are pruned.
    let old = BotState {
        recent_sends: (0..6).map(|i| ms(-2) - 1_000 * i).collect(),
        ..Default::default()
    };
    let d = t.say("hi", &old);
    assert_eq!(texts(&d), ["one", "two"]);
    assert_eq!(d.state.recent_sends, vec![ms(0), ms(0)]);
    // A smaller limit.
    t.limits.max_per_minute = 1;
    assert_eq!(texts(&t.say("hi", &BotState::default())), ["one"]);
}

#[test]
fn opted_out_customers_get_no_marketing_and_no_templates() {
    let mut promo = bot("a-promo", Trigger::Contains, Some("hi"), "buy now");
    promo.marketing = true;
    let template = with_response(
        bot("b-template", Trigger::Exact, Some("hi"), ""),
        BotResponse::Template {
            template: TemplateMessage {
                name: "welcome".into(),
                language: "en".into(),
                components: vec![],
            },
        },
    );
    let plain = bot("c-plain", Trigger::Contains, Some("hi"), "hello");
    let mut t = T::new(vec![promo, template, plain]);
    t.limits.max_replies_per_message = 5;
    let d = t.say("hi", &BotState::default());
    assert_eq!(fired(&d), ["a-promo", "b-template"]);
    t.opted_out = true;
    let d = t.say("hi", &BotState::default());
    // The contains family falls to the next, non-marketing bot.
    assert_eq!(fired(&d), ["c-plain"]);
    assert_eq!(texts(&d), ["hello"]);
    let only = T {
        opted_out: true,
        ..T::new(vec![with_response(
            bot("t", Trigger::Exact, Some("hi"), ""),
            BotResponse::Template {
                template: TemplateMessage {
                    name: "welcome".into(),
                    language: "en".into(),
                    components: vec![],
                },
            },
        )])
    };
    assert_eq!(
        only.say("hi", &BotState::default()).silenced.as_deref(),
        Some("opted_out")
    );
}

// ----- human request ----------------------------------------------------------------------

#[test]
fn human_request_hands_over_and_then_bots_are_silent() {
    let t = T::new(vec![
        bot(
            "h",
            Trigger::HumanRequest,
            None,
            "Connecting you with an agent.",
        ),
        bot("c", Trigger::Contains, Some("please"), "nope"),
    ]);
    let d = t.say("I want to talk to an AGENT please", &BotState::default());
    assert_eq!(texts(&d), ["Connecting you with an agent."]);
    assert!(d.effects.contains(&Effect::Handover {
        bot_id: Some("h".into()),
        reason: "human_request".into()
    }));
    let h = d.state.handed_over.clone().unwrap();
    assert_eq!(h.bot_id.as_deref(), Some("h"));
    assert_eq!(h.at_ms, ms(0));
    let next = t.say("please", &d.state);
    assert_eq!(next.silenced.as_deref(), Some("handed_over"));
    // It also interrupts a menu.
    let menu_state = BotState {
        menu: Some(MenuPosition {
            bot_id: "m".into(),
            path: vec![],
            at_ms: ms(0),
        }),
        ..Default::default()
    };
    let d = t.say("humano", &menu_state);
    assert!(d.state.menu.is_none() && d.state.handed_over.is_some());
}

// ----- menus ------------------------------------------------------------------------------

fn menu_t() -> T {
    let settings = MenuSettings {
        expire_minutes: 10,
        ..Default::default()
    };
    T::new(vec![
        with_response(
            bot("m", Trigger::Exact, Some("menu"), ""),
            BotResponse::Menu {
                menu: sample_menu(),
                settings,
            },
        ),
        bot("z", Trigger::Contains, Some("hello"), "plain hello"),
    ])
}

#[test]
fn menu_walk() {
    let t = menu_t();
    let d = t.say("Menu", &BotState::default());
    assert_eq!(texts(&d), ["[Hi Ada, what do you need?]"]);
    assert_eq!(steps(&d), [("m".to_string(), "menu".to_string())]);
    let s = d.state;
    assert_eq!(s.menu.as_ref().unwrap().path, Vec::<String>::new());

    // Choose the submenu by its number: its reply, then its level.
    let d = t.say("2", &s);
    assert_eq!(texts(&d), ["Support it is.", "[Which kind of support?]"]);
    assert_eq!(
        steps(&d).into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        ["menu:support:reply", "menu:support"]
    );
    let s = d.state;
    assert_eq!(s.menu.as_ref().unwrap().path, ["support"]);

    // Invalid: the invalid text and the level again.
    let d = t.say("hello", &s);
    assert_eq!(
        texts(&d),
        [
            "Sorry, that is not one of the options.",
            "[Which kind of support?]"
        ]
    );
    assert_eq!(d.state.menu.as_ref().unwrap().path, ["support"]);

    // Back goes up.
    let d = t.say("volver", &s);
    assert_eq!(texts(&d), ["[Hi Ada, what do you need?]"]);
    assert!(d.state.menu.as_ref().unwrap().path.is_empty());

    // Main goes to the root.
    let d = t.say("#", &s);
    assert_eq!(steps(&d)[0].1, "menu");

    // A list reply chooses a leaf: its reply, and the menu ends.
    let d = t.tap("billing", "Billing", &s);
    assert_eq!(texts(&d), ["Billing: billing@example.com"]);
    assert_eq!(steps(&d)[0].1, "menu:support/billing:reply");
    assert!(d.state.menu.is_none());
    assert_eq!(fired(&d), ["m"]);
    // Once the menu ended, other bots answer again.
    assert_eq!(texts(&t.say("hello", &d.state)), ["plain hello"]);
}

#[test]
fn menu_expires() {
    let t = menu_t();
    let s = t.say("menu", &BotState::default()).state;
    let mut f = text_facts("hello");
    f.at = at(11);
    let d = t.eval(f, &s);
    assert_eq!(texts(&d), ["plain hello"]);
    assert!(d.state.menu.is_none());
    f.at = at(9);
    let d = t.eval(f, &s);
    assert_eq!(texts(&d)[0], "Sorry, that is not one of the options.");
}

#[test]
fn menu_handover_option() {
    let t = menu_t();
    let s = t.say("menu", &BotState::default()).state;
    let d = t.say("Talk to an agent", &s);
    assert_eq!(texts(&d), [HANDOVER_TEXT]);
    assert!(d.effects.contains(&Effect::Handover {
        bot_id: Some("m".into()),
        reason: "menu".into()
    }));
    assert!(d.state.menu.is_none());
    assert_eq!(d.state.handed_over.as_ref().unwrap().reason, "menu");
}

#[test]
fn menu_of_a_removed_bot_is_forgotten() {
    let t = T::new(vec![bot(
        "z",
        Trigger::Contains,
        Some("hello"),
        "plain hello",
    )]);
    let s = BotState {
        menu: Some(MenuPosition {
            bot_id: "gone".into(),
            path: vec![],
            at_ms: ms(0),
        }),
        ..Default::default()
    };
    let d = t.say("hello", &s);
    assert_eq!(texts(&d), ["plain hello"]);
    assert!(d.state.menu.is_none());
}

// ----- flows ------------------------------------------------------------------------------

fn flow_t() -> T {
    T::new(vec![
        with_response(bot("f", Trigger::Exact, Some("quote"), ""), sample_flow()),
        bot("z", Trigger::Contains, Some("hello"), "plain hello"),
    ])
}

#[test]
fn flow_walk_to_a_ticket() {
    let t = flow_t();
    let d = t.say("quote", &BotState::default());
    assert_eq!(texts(&d), ["[How can we help, Ada?]"]);
    let OutboundContent::Buttons { buttons, .. } = &d.replies[0].content else {
        panic!()
    };
    assert_eq!(buttons.len(), 2);
    assert_eq!(d.state.flow.as_ref().unwrap().node_id, "q1");

    let d = t.tap("quote", "Get a quote", &d.state);
    assert_eq!(texts(&d), ["Your email?"]);
    assert_eq!(steps(&d)[0].1, "flow:email");
    let fs = d.state.flow.clone().unwrap();
    assert_eq!(fs.node_id, "email");
    assert_eq!(fs.vars["topic"], "Get a quote");

    // An invalid answer: the node's invalid text; still waiting.
    let d2 = t.say("not an email", &d.state);
    assert_eq!(texts(&d2), ["That is not an email address."]);
    assert_eq!(steps(&d2)[0].1, "flow:email:invalid");
    assert_eq!(d2.state.flow.as_ref().unwrap().node_id, "email");

    let d = t.say("ada@example.com", &d2.state);
    assert_eq!(texts(&d), ["How many units?"]);
    let d2 = t.say("lots", &d.state);
    assert_eq!(texts(&d2), ["Please enter a number."]);

    // 150 > 100: vip → ticket → end.
    let d = t.say("150", &d2.state);
    assert_eq!(texts(&d), ["Thanks! We will write to ada@example.com."]);
    assert!(d.state.flow.is_none());
    let ticket = d
        .effects
        .iter()
        .find_map(|e| match e {
            Effect::TicketRequested {
                bot_id,
                subject,
                description,
                priority,
                variables,
            } => Some((bot_id, subject, description, priority, variables)),
            _ => None,
        })
        .unwrap();
    assert_eq!(ticket.0, "f");
    assert_eq!(ticket.1, "Quote for ada@example.com");
    assert_eq!(ticket.2, "150 units, tier vip");
    assert_eq!(ticket.3, "high");
    assert_eq!(ticket.4["tier"], "vip");
    assert_eq!(ticket.4["email"], "ada@example.com");
    assert_eq!(fired(&d), ["f"]);

    // The else branch.
    let mut s = d2.state.clone();
    s.flow.as_mut().unwrap().node_id = "qty".into();
    let d = t.say("3", &s);
    let desc = d.effects.iter().find_map(|e| match e {
        Effect::TicketRequested { description, .. } => Some(description.clone()),
        _ => None,
    });
    assert_eq!(desc.as_deref(), Some("3 units, tier standard"));
}

#[test]
fn flow_question_invalid_and_handover_node() {
    let t = flow_t();
    let s = t.say("quote", &BotState::default()).state;
    let d = t.say("maybe", &s);
    assert_eq!(
        texts(&d),
        [
            "Please choose one of the options.",
            "[How can we help, Ada?]"
        ]
    );
    assert_eq!(
        steps(&d).into_iter().map(|(_, s)| s).collect::<Vec<_>>(),
        ["flow:q1:invalid", "flow:q1"]
    );
    assert_eq!(d.state.flow.as_ref().unwrap().node_id, "q1");
    // Choosing by number: the handover node.
    let d = t.say("2", &s);
    assert_eq!(texts(&d), [HANDOVER_TEXT]);
    assert!(d.effects.contains(&Effect::Handover {
        bot_id: Some("f".into()),
        reason: "customer asked".into()
    }));
    assert!(d.state.flow.is_none());
    assert!(d.state.handed_over.is_some());
}

#[test]
fn flow_expires_after_30_minutes() {
    let t = flow_t();
    let s = t.say("quote", &BotState::default()).state;
    let mut f = text_facts("hello");
    f.at = at(31);
    let d = t.eval(f, &s);
    assert_eq!(texts(&d), ["plain hello"]);
    assert!(d.state.flow.is_none());
    f.at = at(29);
    let d = t.eval(f, &s);
    assert_eq!(texts(&d)[0], "Please choose one of the options.");
}

// ----- rating -----------------------------------------------------------------------------

#[test]
fn rating_after_close() {
    let rating = with_response(
        bot("r", Trigger::Closed, None, ""),
        BotResponse::Rating {
            question: "How did we do, {{customer_first_name}}?".into(),
            style: RatingStyle::List,
        },
    );
    let bye = bot("a-bye", Trigger::Closed, None, "Bye");
    let mut t = T::new(vec![
        bye,
        rating,
        bot("z", Trigger::Contains, Some("hello"), "plain hello"),
    ]);
    let c = t.customer();
    let handed = BotState {
        handed_over: Some(Handover {
            at_ms: ms(-10),
            reason: "human_request".into(),
            bot_id: None,
        }),
        ..Default::default()
    };
    let d = on_closed(&t.set, &c, &handed, ms(0));
    assert_eq!(texts(&d), ["[How did we do, Ada?]"]);
    assert_eq!(d.replies[0].step, "rating");
    valid(&d.replies[0].content);
    assert!(d.state.handed_over.is_none());
    assert_eq!(
        d.state.rating,
        Some(PendingRating {
            bot_id: "r".into(),
            at_ms: ms(0)
        })
    );
    let s = d.state;

    // The staff replied just before closing: the answer is still taken.
    t.staff_at = Some(ms(-1));
    let mut f = text_facts("4");
    f.at = at(1);
    let d = t.eval(f, &s);
    assert_eq!(texts(&d), [RATING_THANKS]);
    assert_eq!(steps(&d)[0], ("r".to_string(), "rating:thanks".to_string()));
    assert!(d.effects.contains(&Effect::Rated {
        bot_id: "r".into(),
        stars: 4
    }));
    assert_eq!(d.state.rating, None);
    assert_eq!(d.state.rated, Some(4));
    t.staff_at = None;

    assert!(t.say("⭐⭐⭐", &s).effects.contains(&Effect::Rated {
        bot_id: "r".into(),
        stars: 3
    }));
    assert!(
        t.tap("rating_5", "⭐⭐⭐⭐⭐", &s)
            .effects
            .contains(&Effect::Rated {
                bot_id: "r".into(),
                stars: 5
            })
    );
    // Not an answer: the rating stays pending, the message is evaluated as usual.
    let d = t.say("hello", &s);
    assert_eq!(texts(&d), ["plain hello"]);
    assert!(d.state.rating.is_some());
    assert!(t.say("9", &s).state.rating.is_some());
}

#[test]
fn rating_answers() {
    let f = |t: &'static str| rating_answer(&text_facts(t));
    assert_eq!(f("1"), Some(1));
    assert_eq!(f(" 5 "), Some(5));
    assert_eq!(f("6"), None);
    assert_eq!(f("0"), None);
    assert_eq!(f("⭐️⭐️"), Some(2));
    assert_eq!(f("★ ★ ★ ★"), Some(4));
    assert_eq!(f("⭐⭐⭐⭐⭐⭐"), None);
    assert_eq!(f("great ⭐"), None);
    let mut b = text_facts("");
    b.text = None;
    b.reply_id = Some("rating_2");
    assert_eq!(rating_answer(&b), Some(2));
    b.reply_id = Some("rating_9");
    assert_eq!(rating_answer(&b), None);
}

#[test]
fn on_closed_without_bots_or_for_opted_out() {
    let t = T::new(vec![]);
    let c = t.customer();
    let d = on_closed(&t.set, &c, &BotState::default(), ms(0));
    assert!(d.replies.is_empty());
    assert_eq!(d.silenced.as_deref(), Some("no_match"));
}

// ----- timers -----------------------------------------------------------------------------

#[test]
fn timers() {
    let mut idle = bot(
        "idle",
        Trigger::Idle,
        None,
        "Still there, {{customer_first_name}}?",
    );
    idle.minutes = Some(15);
    let mut staff = bot("nsr", Trigger::NoStaffReply, None, "Sorry for the wait");
    staff.minutes = Some(10);
    staff.rel_types = vec![RelType::Contacts];
    let t = T::new(vec![idle, staff, bot("x", Trigger::Exact, Some("x"), "x")]);
    let c = t.customer();
    let l = Limits::default();
    let d = on_timer(&t.set, "idle", &c, &BotState::default(), ms(0), &l);
    assert_eq!(texts(&d), ["Still there, Ada?"]);
    assert_eq!(d.replies[0].step, "text");
    assert_eq!(fired(&d), ["idle"]);
    assert_eq!(d.state.recent_sends, [ms(0)]);
    let handed = BotState {
        handed_over: Some(Handover {
            at_ms: 0,
            reason: "x".into(),
            bot_id: None,
        }),
        ..Default::default()
    };
    assert_eq!(
        on_timer(&t.set, "idle", &c, &handed, ms(0), &l)
            .silenced
            .as_deref(),
        Some("handed_over")
    );
    assert_eq!(
        on_timer(&t.set, "nope", &c, &BotState::default(), ms(0), &l)
            .silenced
            .as_deref(),
        Some("unknown_bot")
    );
    assert_eq!(
        on_timer(&t.set, "x", &c, &BotState::default(), ms(0), &l)
            .silenced
            .as_deref(),
        Some("not_a_timer")
    );
    assert_eq!(
        on_timer(&t.set, "nsr", &c, &BotState::default(), ms(0), &l)
            .silenced
            .as_deref(),
        Some("rel_type")
    );
    let busy = BotState {
        recent_sends: vec![ms(0); 6],
        ..Default::default()
    };
    assert_eq!(
        on_timer(&t.set, "idle", &c, &busy, ms(0), &l)
            .silenced
            .as_deref(),
        Some("rate_limited")
    );
    // Timer bots are never matched by messages.
    assert!(
        t.say("still there", &BotState::default())
            .replies
            .is_empty()
    );
}

#[test]
fn state_round_trips_as_json() {
    let t = flow_t();
    let s = t.say("quote", &BotState::default()).state;
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["flow"]["node_id"], "q1");
    let back: BotState = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
    let empty: BotState = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(empty, BotState::default());
    let e = serde_json::to_value(Effect::Fired { bot_id: "b".into() }).unwrap();
    assert_eq!(e, serde_json::json!({"type": "fired", "bot_id": "b"}));
}
