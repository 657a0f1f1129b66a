//! `evaluate`: what the bots answer to one inbound message, given what they remember of the
//! conversation; `on_closed` and `on_timer` for the event and timer triggers. The rules are in
//! the [module documentation](super).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::outbound::{OutboundContent, TEXT_BODY_MAX};

use super::flow::{self, FlowStep, HANDOVER_TEXT};
use super::matcher::{CompiledBots, MessageFacts};
use super::menu::{self, MenuMove, level_step};
use super::model::{Bot, BotResponse, ResponseKind, Trigger};
use super::render::{Customer, clip, render_menu_level, render_response, render_text};

/// A flow position is forgotten after this long without an answer.
pub const FLOW_EXPIRE_MS: i64 = 30 * 60_000;
/// A rating request is forgotten after this long without an answer.
pub const RATING_EXPIRE_MS: i64 = 24 * 60 * 60_000;
/// The window of the per-minute limit.
pub const RATE_WINDOW_MS: i64 = 60_000;
/// Sent after a rating.
pub const RATING_THANKS: &str = "Thank you for your feedback!";

/// What the bots remember of one conversation (stored by the caller, versioned by the caller).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BotState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub menu: Option<MenuPosition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_over: Option<Handover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<PendingRating>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rated: Option<u8>,
    /// Times (ms) of recent bot messages in this conversation (for the per-minute limit),
    /// pruned to the last minute.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_sends: Vec<i64>,
}

/// Where the customer is in a menu.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuPosition {
    pub bot_id: String,
    /// Option ids from the main menu (empty: the main menu).
    #[serde(default)]
    pub path: Vec<String>,
    pub at_ms: i64,
}

/// Where the customer is in a flow.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    pub bot_id: String,
    /// The node waiting for an answer.
    pub node_id: String,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub at_ms: i64,
}

/// The conversation is with a human: bots are silent until the caller clears it (staff
/// released or closed the conversation).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub at_ms: i64,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_id: Option<String>,
}

/// A rating request waiting for its answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRating {
    pub bot_id: String,
    pub at_ms: i64,
}

/// Limits on what bots send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Bots answering one message (a multi-message answer, like a flow step, counts once).
    pub max_replies_per_message: usize,
    /// Bot messages per conversation in any minute.
    pub max_per_minute: usize,
    /// Bots are quiet this long after a staff reply.
    pub quiet_after_staff_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_replies_per_message: 3,
            max_per_minute: 6,
            quiet_after_staff_ms: 30 * 60_000,
        }
    }
}

/// One inbound message to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub wamid: &'a str,
    pub facts: MessageFacts<'a>,
    pub customer: Customer<'a>,
    /// Last staff (human) reply in this conversation.
    pub last_staff_reply_at: Option<i64>,
    /// AI settings: mode = auto and enabled.
    pub ai_auto: bool,
}

/// One message a bot sends. `step` is unique per (inbound message, bot) and stable across
/// retries (`text`, `menu`, `menu:1/2`, `flow:node7`, …): the caller derives the send's
/// idempotency key from (inbound wamid, bot id, step).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotReply {
    pub bot_id: String,
    pub step: String,
    pub content: OutboundContent,
}

/// What the caller must do besides sending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// The conversation goes to a human.
    Handover {
        bot_id: Option<String>,
        reason: String,
    },
    Rated {
        bot_id: String,
        stars: u8,
    },
    TicketRequested {
        bot_id: String,
        subject: String,
        description: String,
        priority: String,
        variables: BTreeMap<String, String>,
    },
    /// The AI should answer (bot_type 12 matched, or ai_auto and nothing else answered);
    /// `instructions` from the bot. The caller calls the provider and sends (or stores a
    /// suggestion in manual mode).
    AiReply {
        bot_id: Option<String>,
        instructions: Option<String>,
    },
    /// One per bot that answered: the caller counts sends.
    Fired {
        bot_id: String,
    },
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub replies: Vec<BotReply>,
    pub effects: Vec<Effect>,
    /// The conversation's new bot state (equal to the old one when nothing changed).
    pub state: BotState,
    /// Why nothing was sent, for logs: `handed_over`, `staff_active`, `rate_limited`,
    /// `opted_out`, `no_content`, `no_match`, `unknown_bot`, `not_a_timer`, `rel_type`.
    pub silenced: Option<String>,
}

impl Decision {
    fn silent(state: &BotState, why: &str) -> Self {
        Self {
            replies: vec![],
            effects: vec![],
            state: state.clone(),
            silenced: Some(why.into()),
        }
    }
}

/// Is this bot barred for this customer (rule 5)?
fn barred(bot: &Bot, customer: &Customer) -> bool {
    customer.opted_out && (bot.marketing || bot.response.kind() == ResponseKind::Template)
}

/// Trigger families: the first match of each answers.
fn family(t: Trigger) -> usize {
    match t {
        Trigger::Exact => 0,
        Trigger::Contains => 1,
        Trigger::Keyword | Trigger::Synonym => 2,
        Trigger::FirstMessage | Trigger::SessionStart => 3,
        Trigger::WithinHours | Trigger::OutsideHours => 4,
        Trigger::HumanRequest => 5,
        // Timers and events are not message families.
        _ => 6,
    }
}

/// An evaluation in progress.
struct Run<'c> {
    now: i64,
    state: BotState,
    replies: Vec<BotReply>,
    effects: Vec<Effect>,
    /// Messages still allowed this minute.
    budget: usize,
    dropped: usize,
    customer: &'c Customer<'c>,
}

impl<'c> Run<'c> {
    fn new(state: &BotState, now: i64, max_per_minute: usize, customer: &'c Customer<'c>) -> Self {
        let mut state = state.clone();
        state
            .recent_sends
            .retain(|&t| t > now - RATE_WINDOW_MS && t <= now);
        let budget = max_per_minute.saturating_sub(state.recent_sends.len());
        Self {
            now,
            state,
            replies: vec![],
            effects: vec![],
            budget,
            dropped: 0,
            customer,
        }
    }

    /// Queue a message (a message that would not pass Meta's validation, e.g. a text that
    /// rendered empty, is left out). Returns whether it is sent.
    fn send(&mut self, bot_id: &str, step: String, content: OutboundContent) -> bool {
        if content.validate().is_err() {
            return false;
        }
        if self.budget == 0 {
            self.dropped += 1;
            return false;
        }
        self.budget -= 1;
        // Unique per bot within this message (a cycle may pass a node twice).
        let mut unique = step.clone();
        let mut n = 1;
        while self
            .replies
            .iter()
            .any(|r| r.bot_id == bot_id && r.step == unique)
        {
            n += 1;
            unique = format!("{step}#{n}");
        }
        self.state.recent_sends.push(self.now);
        self.replies.push(BotReply {
            bot_id: bot_id.to_string(),
            step: unique,
            content,
        });
        true
    }

    fn send_text(
        &mut self,
        bot_id: &str,
        step: String,
        text: &str,
        vars: &BTreeMap<String, String>,
    ) -> bool {
        let body = clip(render_text(text, self.customer, vars), TEXT_BODY_MAX);
        self.send(
            bot_id,
            step,
            OutboundContent::Text {
                body,
                preview_url: false,
            },
        )
    }

    fn fired(&mut self, bot_id: &str) {
        let already = self
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Fired { bot_id: b } if b == bot_id));
        if !already {
            self.effects.push(Effect::Fired {
                bot_id: bot_id.to_string(),
            });
        }
    }

    fn handover(&mut self, bot_id: Option<&str>, reason: &str) {
        self.effects.push(Effect::Handover {
            bot_id: bot_id.map(String::from),
            reason: reason.to_string(),
        });
        self.state.handed_over = Some(Handover {
            at_ms: self.now,
            reason: reason.to_string(),
            bot_id: bot_id.map(String::from),
        });
        self.state.menu = None;
        self.state.flow = None;
    }

    /// Apply one flow step of `bot_id`.
    fn flow_step(&mut self, bot_id: &str, step: FlowStep) -> bool {
        let mut answered = false;
        for (name, content) in step.messages {
            answered |= self.send(bot_id, name, content);
        }
        for t in step.tickets {
            answered = true;
            self.effects.push(Effect::TicketRequested {
                bot_id: bot_id.to_string(),
                subject: t.subject,
                description: t.description,
                priority: t.priority,
                variables: step.vars.clone(),
            });
        }
        if let Some(reason) = step.handover {
            answered = true;
            self.handover(Some(bot_id), &reason);
        } else if let Some(node_id) = step.waiting {
            self.state.menu = None;
            self.state.flow = Some(FlowState {
                bot_id: bot_id.to_string(),
                node_id,
                vars: step.vars,
                at_ms: self.now,
            });
        } else {
            self.state.flow = None;
        }
        if answered {
            self.fired(bot_id);
        }
        answered
    }

    /// A bot answers with its response, starting its state for a menu, a flow or a rating.
    fn respond(&mut self, bot: &Bot) -> bool {
        let id = bot.id.as_str();
        let answered = match &bot.response {
            BotResponse::Flow { nodes, edges } => {
                let step = flow::start(nodes, edges, self.customer, BTreeMap::new());
                return self.flow_step(id, step);
            }
            BotResponse::Ai { instructions } => {
                self.effects.push(Effect::AiReply {
                    bot_id: Some(id.to_string()),
                    instructions: instructions.clone(),
                });
                true
            }
            BotResponse::Menu { menu, .. } => {
                let sent = self.send(id, level_step(&[]), render_menu_level(menu, self.customer));
                if sent {
                    self.state.flow = None;
                    self.state.menu = Some(MenuPosition {
                        bot_id: id.to_string(),
                        path: vec![],
                        at_ms: self.now,
                    });
                }
                sent
            }
            BotResponse::Rating { .. } => {
                let content = render_response(&bot.response, self.customer, &BTreeMap::new());
                let sent = content.is_some_and(|c| self.send(id, "rating".into(), c));
                if sent {
                    self.state.rating = Some(PendingRating {
                        bot_id: id.to_string(),
                        at_ms: self.now,
                    });
                }
                sent
            }
            other => match render_response(other, self.customer, &BTreeMap::new()) {
                Some(c) => self.send(id, other.kind().as_str().to_string(), c),
                None => false,
            },
        };
        if answered {
            self.fired(id);
        }
        answered
    }

    fn finish(self, silenced: Option<&str>) -> Decision {
        let nothing = self.replies.is_empty()
            && !self
                .effects
                .iter()
                .any(|e| !matches!(e, Effect::Fired { .. }));
        let silenced = if !nothing {
            None
        } else if self.dropped > 0 {
            Some("rate_limited".to_string())
        } else {
            silenced.map(String::from)
        };
        Decision {
            replies: self.replies,
            effects: self.effects,
            state: self.state,
            silenced,
        }
    }
}

/// A rating answer: list / button id `rating_1`..`rating_5`, or a text "1".."5", or that many
/// stars (⭐ / ★ / 🌟).
pub fn rating_answer(f: &MessageFacts) -> Option<u8> {
    let stars = |n: usize| u8::try_from(n).ok().filter(|n| (1..=5).contains(n));
    if let Some(id) = f.reply_id()
        && let Some(n) = id.trim().strip_prefix("rating_")
        && let Ok(n) = n.parse::<usize>()
    {
        return stars(n);
    }
    let text = f.text().or(f.reply_title())?.trim();
    if text.len() == 1
        && let Ok(n) = text.parse::<usize>()
    {
        return stars(n);
    }
    let mut count = 0;
    for c in text.chars() {
        match c {
            '⭐' | '★' | '🌟' => count += 1,
            '\u{FE0F}' | '\u{FE0E}' => {}
            c if c.is_whitespace() => {}
            _ => return None,
        }
    }
    stars(count)
}

/// What the bots answer to one inbound message. The rules are in the
/// [module documentation](super).
pub fn evaluate(set: &CompiledBots, msg: &Inbound, state: &BotState, limits: &Limits) -> Decision {
    let f = &msg.facts;
    let customer = &msg.customer;
    let now = f.at.timestamp_millis();

    // Rule 7: only messages with something to match (or the session flags).
    let content = f.text().is_some() || f.reply_id().is_some();
    if !content && !f.first_ever && !f.session_start {
        return Decision::silent(state, "no_content");
    }
    // Rule 1: a human has the conversation.
    if state.handed_over.is_some() {
        return Decision::silent(state, "handed_over");
    }
    let staff_active = msg
        .last_staff_reply_at
        .is_some_and(|t| now.saturating_sub(t) < limits.quiet_after_staff_ms);

    let mut run = Run::new(state, now, limits.max_per_minute, customer);

    // Rule 2: the conversation's state first. A pending rating takes its answer (even right
    // after a staff reply, when the request came after that reply: the close ended it).
    if let Some(p) = run.state.rating.clone() {
        if now - p.at_ms > RATING_EXPIRE_MS {
            run.state.rating = None;
        } else if let Some(stars) = rating_answer(f) {
            let after_staff = msg.last_staff_reply_at.is_none_or(|t| p.at_ms >= t);
            if !staff_active || after_staff {
                run.state.rating = None;
                run.state.rated = Some(stars);
                run.effects.push(Effect::Rated {
                    bot_id: p.bot_id.clone(),
                    stars,
                });
                run.send_text(
                    &p.bot_id,
                    "rating:thanks".into(),
                    RATING_THANKS,
                    &BTreeMap::new(),
                );
                run.fired(&p.bot_id);
                return run.finish(None);
            }
        }
    }
    if staff_active {
        return Decision::silent(state, "staff_active");
    }

    let matches = set.matching(f);
    let bots = set.bots();

    // A human request (typed, not a button tap) wins over menus and flows.
    if f.reply_id().is_none()
        && let Some(&i) = matches
            .iter()
            .find(|&&i| bots[i].reply_type == Trigger::HumanRequest && !barred(&bots[i], customer))
    {
        let bot = &bots[i];
        let content = if bot.response.kind().is_stateful() {
            None
        } else {
            render_response(&bot.response, customer, &BTreeMap::new())
        };
        match content {
            Some(c) => run.send(&bot.id, bot.response.kind().as_str().to_string(), c),
            None => run.send_text(&bot.id, "handover".into(), HANDOVER_TEXT, &BTreeMap::new()),
        };
        run.handover(Some(&bot.id), "human_request");
        run.fired(&bot.id);
        return run.finish(None);
    }

    // An active flow takes the message as the answer of its waiting node.
    if let Some(fs) = run.state.flow.clone() {
        let graph = set.get(&fs.bot_id).and_then(|(_, b)| match &b.response {
            BotResponse::Flow { nodes, edges } => Some((nodes, edges)),
            _ => None,
        });
        let resumed = match graph {
            Some((nodes, edges)) if now - fs.at_ms <= FLOW_EXPIRE_MS => {
                flow::resume(nodes, edges, &fs.node_id, f, customer, fs.vars.clone())
            }
            _ => None,
        };
        match resumed {
            Some(step) => {
                run.flow_step(&fs.bot_id, step);
                return run.finish(None);
            }
            None => run.state.flow = None,
        }
    }

    // An active menu takes the message as a choice.
    if let Some(mp) = run.state.menu.clone() {
        let menu = set.get(&mp.bot_id).and_then(|(_, b)| match &b.response {
            BotResponse::Menu { menu, settings } => Some((menu, settings)),
            _ => None,
        });
        let moved = match menu {
            Some((root, settings))
                if now - mp.at_ms <= i64::from(settings.expire_minutes) * 60_000 =>
            {
                menu::navigate(root, settings, &mp.path, f).map(|mv| (root, settings, mv))
            }
            _ => None,
        };
        match moved {
            Some((root, settings, mv)) => {
                menu_move(&mut run, &mp, root, &settings.invalid, mv);
                return run.finish(None);
            }
            None => run.state.menu = None,
        }
    }

    // Rule 3: the matching bots, the first of each family.
    let mut done = [false; 7];
    let mut answers = 0;
    let mut stateful = false;
    let mut barred_any = false;
    for i in matches {
        let bot = &bots[i];
        let fam = family(bot.reply_type);
        if done[fam] || bot.reply_type == Trigger::HumanRequest {
            continue;
        }
        if barred(bot, customer) {
            barred_any = true;
            continue;
        }
        if answers >= limits.max_replies_per_message {
            break;
        }
        let kind = bot.response.kind();
        if kind.is_stateful() && stateful {
            continue;
        }
        if run.budget == 0 && kind != ResponseKind::Ai {
            run.dropped += 1;
            continue;
        }
        if run.respond(bot) {
            done[fam] = true;
            answers += 1;
            stateful |= kind.is_stateful();
        }
    }

    // Rule 4: the AI answers what no bot did.
    if answers == 0 && run.dropped == 0 && msg.ai_auto {
        run.effects.push(Effect::AiReply {
            bot_id: None,
            instructions: None,
        });
    }
    let why = if barred_any { "opted_out" } else { "no_match" };
    run.finish(Some(why))
}

fn menu_move(
    run: &mut Run,
    mp: &MenuPosition,
    root: &super::model::MenuNode,
    invalid: &str,
    mv: MenuMove,
) {
    let bot_id = mp.bot_id.as_str();
    let vars = BTreeMap::new();
    match mv {
        MenuMove::Show { path } => {
            if let Some(node) = menu::level(root, &path) {
                run.send(
                    bot_id,
                    level_step(&path),
                    render_menu_level(node, run.customer),
                );
            }
            run.state.menu = Some(MenuPosition {
                bot_id: bot_id.to_string(),
                path,
                at_ms: run.now,
            });
        }
        MenuMove::Chosen { option, path } => {
            let mut at = path;
            at.push(option.id.clone());
            let reply_step = format!("{}:reply", level_step(&at));
            if option.handover {
                let text = option.reply.as_deref().unwrap_or(HANDOVER_TEXT);
                run.send_text(bot_id, reply_step, text, &vars);
                run.handover(Some(bot_id), "menu");
            } else {
                if let Some(r) = &option.reply {
                    run.send_text(bot_id, reply_step, r, &vars);
                }
                match &option.submenu {
                    Some(sub) => {
                        run.send(
                            bot_id,
                            level_step(&at),
                            render_menu_level(sub, run.customer),
                        );
                        run.state.menu = Some(MenuPosition {
                            bot_id: bot_id.to_string(),
                            path: at,
                            at_ms: run.now,
                        });
                    }
                    // A leaf ends the menu; its bot's trigger opens it again.
                    None => run.state.menu = None,
                }
            }
        }
        MenuMove::Invalid => {
            run.send_text(bot_id, "menu:invalid".into(), invalid, &vars);
            if let Some(node) = menu::level(root, &mp.path) {
                run.send(
                    bot_id,
                    level_step(&mp.path),
                    render_menu_level(node, run.customer),
                );
            }
            if let Some(m) = run.state.menu.as_mut() {
                m.at_ms = run.now;
            }
        }
    }
    run.fired(bot_id);
}

/// Trigger 13: staff closed the conversation → the rating request (first active Closed bot
/// whose response is Rating, or else the first with any response), `state.rating` set. Closing
/// ends a handover, a menu and a flow.
pub fn on_closed(
    set: &CompiledBots,
    customer: &Customer,
    state: &BotState,
    at_ms: i64,
) -> Decision {
    let mut run = Run::new(state, at_ms, usize::MAX, customer);
    run.state.handed_over = None;
    run.state.menu = None;
    run.state.flow = None;
    let candidates: Vec<&Bot> = set
        .of_trigger(Trigger::Closed)
        .into_iter()
        .filter(|b| b.answers(customer.rel_type))
        .collect();
    let allowed: Vec<&Bot> = candidates
        .iter()
        .copied()
        .filter(|b| !barred(b, customer))
        .collect();
    let bot = allowed
        .iter()
        .find(|b| b.response.kind() == ResponseKind::Rating)
        .or(allowed.first())
        .copied();
    let Some(bot) = bot else {
        let why = if candidates.is_empty() {
            "no_match"
        } else {
            "opted_out"
        };
        return run.finish(Some(why));
    };
    run.respond(bot);
    run.finish(None)
}

/// Timer triggers 8, 11, 12: the bot's answer when its timer fires (the caller checks that it
/// is due); respects handover, `rel_types`, opt-out and the per-minute limit.
pub fn on_timer(
    set: &CompiledBots,
    bot_id: &str,
    customer: &Customer,
    state: &BotState,
    at_ms: i64,
    limits: &Limits,
) -> Decision {
    let Some((_, bot)) = set.get(bot_id) else {
        return Decision::silent(state, "unknown_bot");
    };
    if !bot.reply_type.is_timer() {
        return Decision::silent(state, "not_a_timer");
    }
    if state.handed_over.is_some() {
        return Decision::silent(state, "handed_over");
    }
    if !bot.answers(customer.rel_type) {
        return Decision::silent(state, "rel_type");
    }
    if barred(bot, customer) {
        return Decision::silent(state, "opted_out");
    }
    let mut run = Run::new(state, at_ms, limits.max_per_minute, customer);
    if run.budget == 0 {
        return Decision::silent(state, "rate_limited");
    }
    run.respond(bot);
    run.finish(None)
}

#[cfg(test)]
mod tests;
