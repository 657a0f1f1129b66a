//! The bot engine: trigger matching, responses, menus, flows and the evaluation rules.
//!
//! Pure functions over plain data (no I/O, no AWS, no async): the caller loads the bots and
//! the conversation's [`BotState`], calls [`evaluate`] (or [`on_closed`] / [`on_timer`]),
//! sends the [`Decision`]'s replies, carries out its effects and stores its state.
//!
//! # Bots
//! A [`Bot`] has a trigger (`reply_type`, the seed's codes) and a response (`bot_type`):
//!
//! | `reply_type` | fires when | | `bot_type` | sends |
//! |---|---|---|---|---|
//! | 1 exact | the message equals the phrase | | 1 text | a text |
//! | 2 contains | the message contains the phrase (whole words) | | 2 template | a template |
//! | 3 first message | first inbound message of the conversation | | 3 menu | a list menu, level by level |
//! | 4 keyword | any keyword, or any word of a `@group` | | 4 flow | a flow (questions, inputs, conditions, tickets) |
//! | 5 / 6 within / outside hours | any message while open / closed | | 5 media | an image, video, audio, document or sticker |
//! | 7 session start | first message of a 24-hour session | | 6 location | a location |
//! | 8 idle | timer: customer idle for `minutes` | | 7 buttons | up to three reply buttons |
//! | 9 human request | its keywords (default: human, agent, asesor, …) | | 11 contacts | contact cards |
//! | 10 synonym | any word of the named synonym groups | | 12 AI | hands the message to the AI |
//! | 11 window closing | timer: `minutes` before the 24-hour window closes | | 13 rating | a 1–5 star rating request |
//! | 12 no staff reply | timer: no staff reply for `minutes` | | | |
//! | 13 closed | staff closed the conversation | | | |
//!
//! Matching is on normalized text ([`normalize`]: case, accents and punctuation ignored, so
//! "¿Información?" matches "informacion"), against the text, and the title and id of a button
//! or list reply. Phrases and keywords match whole words only ("hi" does not match "this").
//! A bot answers only the `rel_types` it lists (none: all), in order of `priority` (lower
//! first), then id. Texts may hold placeholders ([`render_text`]): `{{customer_name}}`,
//! `{{customer_first_name}}`, `{{customer_phone}}`, `{{lead.email}}` / `{{contact.x}}` /
//! `{{staff.x}}` from the customer's CRM record, and flow variables `{{var}}`.
//!
//! # Evaluation rules
//! For each inbound message, [`evaluate`]:
//! 1. **Silence.** Sends nothing while the conversation is handed over to a human
//!    (`state.handed_over`; `silenced = "handed_over"`), nor within `quiet_after_staff_ms`
//!    (default 30 min) of the last staff reply (`"staff_active"`). The one exception: the
//!    answer to a rating request that was sent after that staff reply (closing the
//!    conversation ended the staff's turn) is still taken.
//! 2. **The conversation's state comes first.**
//!    - A pending rating takes a rating answer (list / button id `rating_1`..`rating_5`, or a
//!      text "1".."5", or that many ⭐): [`Effect::Rated`] and a thank-you text; the rating is
//!      cleared. Any other message leaves it pending (24 h) and is evaluated as usual.
//!    - A human request (the keywords of an active trigger-9 bot, typed — a button tap is a
//!      choice, not a request) hands over at once, even inside a menu or a flow: the bot's
//!      text (or a default), [`Effect::Handover`], `state.handed_over` set, menu and flow
//!      forgotten. A menu option with `handover` and a flow `handover` node do the same.
//!    - An active flow (answered within 30 min) takes the message as the answer of the node
//!      waiting for it (a question's choice by id, number or title; an input checked as text,
//!      email, number, phone or date, re-asked with the node's `invalid` text when wrong) and
//!      steps on, sending each node's message, until a node waits again, the flow hands over
//!      or ends; at most 20 nodes per step, so a cycle cannot loop.
//!    - An active menu (answered within `expire_minutes`) takes a choice: an option id (list
//!      reply), its 1-based number typed as text, or its title. A submenu is shown (after the
//!      option's reply, if any); a leaf sends its reply and ends the menu. The `back` words go
//!      up one level, the `main` words to the main menu; anything else gets the `invalid` text
//!      and the current level again.
//!    - An expired state, or one whose bot is gone or was edited so the position no longer
//!      exists, is forgotten and the message goes on to rule 3.
//! 3. **Matching bots**, in order (priority, id): the first match of each trigger family
//!    answers — families {exact 1}, {contains 2}, {keyword / synonym 4 + 10},
//!    {first message / session start 3 + 7}, {hours 5 + 6}, {human 9} — and at most
//!    `max_replies_per_message` (default 3) bots answer one message (a multi-message answer
//!    counts once). A menu, flow, rating or AI response starts its state, and only one such
//!    response answers a message: later ones are skipped (and their family stays open).
//! 4. **AI fallback.** If no bot answered and the AI is in auto mode, [`Effect::AiReply`]
//!    with no bot.
//! 5. **Opt-out.** A customer who opted out of marketing gets no bot marked `marketing` and no
//!    template response (the next bot of the same family may answer instead;
//!    `"opted_out"` when that left nothing).
//! 6. **Per-conversation limit.** At most `max_per_minute` (default 6) bot messages in any
//!    minute (`state.recent_sends`, pruned to the last minute, against the message time):
//!    messages beyond it are dropped (`"rate_limited"` when all were).
//! 7. **Only real messages.** Echoes, statuses, system messages and reactions are never
//!    evaluated (the caller does not call `evaluate` for them), and a message with neither
//!    text nor a reply id answers nothing (`"no_content"`) unless it is the first message of
//!    the conversation or of a session: then a media message without a caption still fires
//!    triggers 3, 5, 6 and 7.
//! 8. **No loops.** A bot's own answers are outbound messages: they never come back through
//!    `evaluate`, so a bot can never trigger itself or another bot.
//!
//! Every reply has a `step`, unique per (inbound message, bot) and the same on a retry of the
//! same message with the same state (`text`, `menu`, `menu:support`, `menu:support:reply`,
//! `flow:q1`, `flow:q1:invalid`, `rating`, `rating:thanks`, `handover`, …): the caller derives
//! the send's idempotency key from (inbound wamid, bot id, step). Each bot that answered also
//! yields [`Effect::Fired`] (send counts).
//!
//! Outside messages: [`on_closed`] (trigger 13: staff closed the conversation) sends the
//! rating request of the first closed-trigger bot with a rating response (or else the first
//! closed-trigger bot) and ends any handover, menu and flow; [`on_timer`] (triggers 8, 11, 12)
//! sends a timer bot's answer when the caller finds it due, respecting handover, `rel_types`,
//! opt-out and the per-minute limit.

pub mod compiled_set;
pub mod engine;
pub mod flow;
pub mod gate;
pub mod hours;
pub mod job;
pub mod matcher;
pub mod menu;
pub mod model;
pub mod normalize;
pub mod render;
pub mod timers;

#[cfg(test)]
pub(crate) mod testutil;

pub use engine::{
    BotReply, BotState, Decision, Effect, FlowState, Handover, Inbound, Limits, MenuPosition,
    PendingRating, evaluate, on_closed, on_timer, rating_answer,
};
pub use hours::CompiledHours;
pub use matcher::{CompiledBots, MessageFacts};
pub use model::{
    Bot, BotInvalid, BotResponse, BusinessHours, ConditionOp, FlowChoice, FlowCondition, FlowEdge,
    FlowNode, FlowNodeData, FlowNodeKind, FlowPosition, InputValidation, MenuNode, MenuOption,
    MenuSettings, RatingStyle, ResponseKind, SynonymGroup, Trigger,
};
pub use normalize::normalize;
pub use render::{Customer, render_response, render_text};
