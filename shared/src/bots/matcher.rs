//! The compiled trigger set: which bots a message triggers.
//!
//! [`CompiledBots::compile`] runs once per bot-set version: it keeps the active, valid bots in
//! evaluation order (priority, then id), puts the normalized exact phrases in a hash map and
//! every normalized contains phrase, keyword, synonym word and human-request keyword in one
//! Aho-Corasick automaton. Patterns and haystacks are padded with a space on each side, so a
//! match is always on word boundaries (`"hi"` matches `"oh hi there"`, not `"this"`), and
//! overlapping matches are all reported. [`CompiledBots::matching`] then costs one
//! normalisation and one scan of the message, whatever the number of bots.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, MatchKind};
use chrono::{DateTime, Utc};

use crate::store::model::RelType;

use super::hours::CompiledHours;
use super::model::{
    Bot, BotInvalid, HUMAN_KEYWORDS, SynonymGroup, Trigger, find_group, split_list,
};
use super::normalize::normalize;

/// What the trigger matching needs to know about an inbound message.
#[derive(Debug, Clone, Copy)]
pub struct MessageFacts<'a> {
    /// Text body, or the caption-less text of the message.
    pub text: Option<&'a str>,
    /// Interactive `button_reply` / `list_reply` id, or a template quick-reply button payload.
    pub reply_id: Option<&'a str>,
    pub reply_title: Option<&'a str>,
    pub rel_type: RelType,
    /// First inbound message of the conversation.
    pub first_ever: bool,
    /// First inbound message of the current 24-hour session.
    pub session_start: bool,
    pub at: DateTime<Utc>,
}

impl MessageFacts<'_> {
    /// The non-blank text, if any.
    pub fn text(&self) -> Option<&str> {
        self.text.filter(|t| !t.trim().is_empty())
    }
    /// The non-blank reply id, if any.
    pub fn reply_id(&self) -> Option<&str> {
        self.reply_id.filter(|t| !t.trim().is_empty())
    }
    /// The non-blank reply title, if any.
    pub fn reply_title(&self) -> Option<&str> {
        self.reply_title.filter(|t| !t.trim().is_empty())
    }
    /// Text, reply title and reply id, normalized, blanks and repeats left out.
    pub(crate) fn normalized(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(3);
        for s in [self.text(), self.reply_title(), self.reply_id()]
            .into_iter()
            .flatten()
        {
            let n = normalize(s);
            if !n.is_empty() && !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
enum Compiled {
    /// Looked up in the exact map.
    Exact,
    /// Found by the automaton.
    Phrases,
    FirstMessage,
    SessionStart,
    Hours {
        hours: Box<CompiledHours>,
        open: bool,
    },
    /// Timer or event: never matched by a message.
    NotMessage,
}

/// A keyword's phrases: the keyword itself, or the words of the group a `@group` names.
fn keyword(item: &str, synonyms: &[SynonymGroup], add: &mut impl FnMut(&str)) {
    if item.starts_with('@') {
        if let Some(g) = find_group(synonyms, item) {
            for w in &g.words {
                add(w.as_str());
            }
        }
    } else {
        add(item);
    }
}

/// The active bots of one bot-set version, compiled for matching.
#[derive(Debug, Clone)]
pub struct CompiledBots {
    bots: Vec<Bot>,
    compiled: Vec<Compiled>,
    exact: HashMap<String, Vec<u32>>,
    automaton: Option<AhoCorasick>,
    /// Pattern id → bots (indices into `bots`, ascending).
    pattern_bots: Vec<Vec<u32>>,
    /// Bots matched by flags or hours (3, 5, 6, 7).
    unconditional: Vec<u32>,
    skipped: Vec<(String, BotInvalid)>,
}

impl Default for CompiledBots {
    fn default() -> Self {
        Self::compile(&[], &[])
    }
}

impl CompiledBots {
    /// Compile the active bots; invalid ones are left out (see [`Self::skipped`], for the
    /// caller's logs).
    pub fn compile(bots: &[Bot], synonyms: &[SynonymGroup]) -> Self {
        let mut skipped = Vec::new();
        let mut kept: Vec<Bot> = Vec::with_capacity(bots.len());
        for b in bots.iter().filter(|b| b.is_bot_active) {
            match b.validate(synonyms) {
                Ok(()) => kept.push(b.clone()),
                Err(e) => skipped.push((b.id.clone(), e)),
            }
        }
        kept.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));

        let mut compiled = Vec::with_capacity(kept.len());
        let mut exact: HashMap<String, Vec<u32>> = HashMap::new();
        let mut pattern_ids: HashMap<String, usize> = HashMap::new();
        let mut patterns: Vec<String> = Vec::new();
        let mut pattern_bots: Vec<Vec<u32>> = Vec::new();
        let mut unconditional = Vec::new();
        for (i, b) in kept.iter().enumerate() {
            let idx = i as u32;
            let trigger = b.trigger.as_deref().unwrap_or("");
            let mut add = |phrase: &str| {
                let n = normalize(phrase);
                if n.is_empty() {
                    return;
                }
                let pid = *pattern_ids.entry(n.clone()).or_insert_with(|| {
                    patterns.push(format!(" {n} "));
                    pattern_bots.push(Vec::new());
                    patterns.len() - 1
                });
                let list = &mut pattern_bots[pid];
                if list.last() != Some(&idx) {
                    list.push(idx);
                }
            };
            let c = match b.reply_type {
                Trigger::Exact => {
                    let list = exact.entry(normalize(trigger)).or_default();
                    list.push(idx);
                    Compiled::Exact
                }
                Trigger::Contains => {
                    add(trigger);
                    Compiled::Phrases
                }
                Trigger::Keyword => {
                    for item in split_list(trigger) {
                        keyword(item, synonyms, &mut add);
                    }
                    Compiled::Phrases
                }
                Trigger::Synonym => {
                    for name in split_list(trigger) {
                        if let Some(g) = find_group(synonyms, name) {
                            for w in &g.words {
                                add(w.as_str());
                            }
                        }
                    }
                    Compiled::Phrases
                }
                Trigger::HumanRequest => {
                    let mut any = false;
                    for item in split_list(trigger) {
                        any = true;
                        keyword(item, synonyms, &mut add);
                    }
                    if !any {
                        for &w in HUMAN_KEYWORDS {
                            add(w);
                        }
                    }
                    Compiled::Phrases
                }
                Trigger::FirstMessage => {
                    unconditional.push(idx);
                    Compiled::FirstMessage
                }
                Trigger::SessionStart => {
                    unconditional.push(idx);
                    Compiled::SessionStart
                }
                Trigger::WithinHours | Trigger::OutsideHours => {
                    match b.business_hours.as_ref().map(|h| h.compile()) {
                        Some(Ok(hours)) => {
                            unconditional.push(idx);
                            Compiled::Hours {
                                hours: Box::new(hours),
                                open: b.reply_type == Trigger::WithinHours,
                            }
                        }
                        // Checked by validate; never here.
                        _ => Compiled::NotMessage,
                    }
                }
                Trigger::Idle
                | Trigger::WindowClosing
                | Trigger::NoStaffReply
                | Trigger::Closed => Compiled::NotMessage,
            };
            compiled.push(c);
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .ok()
        };
        Self {
            bots: kept,
            compiled,
            exact,
            automaton,
            pattern_bots,
            unconditional,
            skipped,
        }
    }

    /// The active bots, in evaluation order.
    pub fn bots(&self) -> &[Bot] {
        &self.bots
    }

    /// Active bots left out because they are invalid: (bot id, why).
    pub fn skipped(&self) -> &[(String, BotInvalid)] {
        &self.skipped
    }

    /// An active bot by id, with its index into [`Self::bots`].
    pub fn get(&self, id: &str) -> Option<(usize, &Bot)> {
        self.bots.iter().enumerate().find(|(_, b)| b.id == id)
    }

    /// Indices (into [`Self::bots`]) of the message-triggered bots (triggers 1, 2, 3, 4, 5, 6,
    /// 7, 9, 10) whose trigger matches, in evaluation order. The `rel_types` filter applies.
    pub fn matching(&self, m: &MessageFacts) -> Vec<usize> {
        let mut hits: Vec<u32> = Vec::new();
        let texts = m.normalized();
        for t in &texts {
            if let Some(list) = self.exact.get(t.as_str()) {
                hits.extend_from_slice(list);
            }
        }
        if let Some(ac) = &self.automaton {
            let mut padded = String::new();
            for t in &texts {
                padded.clear();
                padded.reserve(t.len() + 2);
                padded.push(' ');
                padded.push_str(t);
                padded.push(' ');
                for mat in ac.find_overlapping_iter(padded.as_str()) {
                    hits.extend_from_slice(&self.pattern_bots[mat.pattern().as_usize()]);
                }
            }
        }
        for &i in &self.unconditional {
            let ok = match &self.compiled[i as usize] {
                Compiled::FirstMessage => m.first_ever,
                Compiled::SessionStart => m.session_start,
                Compiled::Hours { hours, open } => hours.is_open(m.at) == *open,
                _ => false,
            };
            if ok {
                hits.push(i);
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits.into_iter()
            .map(|i| i as usize)
            .filter(|&i| self.bots[i].answers(m.rel_type))
            .collect()
    }

    /// Bots of a timer or event trigger (8, 11, 12, 13), in evaluation order.
    pub fn of_trigger(&self, t: Trigger) -> Vec<&Bot> {
        self.bots.iter().filter(|b| b.reply_type == t).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bots::testutil::*;
    use chrono::TimeZone;

    fn facts(text: &str) -> MessageFacts<'_> {
        MessageFacts {
            text: Some(text),
            reply_id: None,
            reply_title: None,
            rel_type: RelType::Leads,
            first_ever: false,
            session_start: false,
            at: Utc.with_ymd_and_hms(2025, 6, 11, 12, 0, 0).unwrap(),
        }
    }

    fn ids(set: &CompiledBots, m: &MessageFacts) -> Vec<String> {
        set.matching(m)
            .into_iter()
            .map(|i| set.bots()[i].id.clone())
            .collect()
    }

    #[test]
    fn exact_matches_the_whole_normalized_message() {
        let set = CompiledBots::compile(
            &[text_bot("e", Trigger::Exact, Some("Buenos días"), "x")],
            &[],
        );
        assert_eq!(ids(&set, &facts("buenos dias")), ["e"]);
        assert_eq!(ids(&set, &facts("  BUENOS   DÍAS!! ")), ["e"]);
        assert!(ids(&set, &facts("buenos dias amigo")).is_empty());
        assert!(ids(&set, &facts("buenos")).is_empty());
        // A reply title or id counts too.
        let mut m = facts("");
        m.text = None;
        m.reply_title = Some("Buenos Días");
        assert_eq!(ids(&set, &m), ["e"]);
        m.reply_title = None;
        m.reply_id = Some("buenos_dias");
        assert_eq!(ids(&set, &m), ["e"]);
    }

    #[test]
    fn contains_matches_on_word_boundaries() {
        let set = CompiledBots::compile(
            &[text_bot("c", Trigger::Contains, Some("price list"), "x")],
            &[],
        );
        assert_eq!(ids(&set, &facts("Can I see the PRICE-LIST please?")), ["c"]);
        assert_eq!(ids(&set, &facts("price list")), ["c"]);
        assert!(ids(&set, &facts("the price is listed")).is_empty());
        assert!(ids(&set, &facts("superprice list")).is_empty());
        let hi = CompiledBots::compile(&[text_bot("h", Trigger::Contains, Some("hi"), "x")], &[]);
        assert!(ids(&hi, &facts("this is it")).is_empty());
        assert_eq!(ids(&hi, &facts("oh hi there")), ["h"]);
    }

    #[test]
    fn keywords_and_synonym_groups() {
        let groups = vec![group(
            "g1",
            "Greetings",
            &["hola", "buenas tardes", "hello"],
        )];
        let set = CompiledBots::compile(
            &[
                text_bot(
                    "k",
                    Trigger::Keyword,
                    Some("precio, cost , @greetings"),
                    "x",
                ),
                text_bot("s", Trigger::Synonym, Some("greetings"), "x"),
            ],
            &groups,
        );
        assert_eq!(ids(&set, &facts("what's the COST?")), ["k"]);
        assert_eq!(ids(&set, &facts("¿Precio?")), ["k"]);
        assert_eq!(ids(&set, &facts("Buenas tardes")), ["k", "s"]);
        assert_eq!(ids(&set, &facts("HÓLA")), ["k", "s"]);
        assert!(ids(&set, &facts("costly holala")).is_empty());
        assert!(ids(&set, &facts("buenas noches")).is_empty());
    }

    #[test]
    fn human_request_keywords_and_defaults() {
        let set = CompiledBots::compile(
            &[
                text_bot("d", Trigger::HumanRequest, None, "x"),
                text_bot("k", Trigger::HumanRequest, Some("hablar con alguien"), "x"),
                text_bot("g", Trigger::HumanRequest, Some("@staff words"), "x"),
            ],
            &[group("sw", "Staff words", &["vendedor", "encargado"])],
        );
        assert_eq!(ids(&set, &facts("I want a HUMAN")), ["d"]);
        assert_eq!(ids(&set, &facts("quiero un asesor")), ["d"]);
        assert_eq!(ids(&set, &facts("quiero hablar con alguien")), ["k"]);
        assert!(ids(&set, &facts("humanity")).is_empty());
        assert_eq!(ids(&set, &facts("el encargado por favor")), ["g"]);
    }

    #[test]
    fn flags_and_hours() {
        let mut within = text_bot("w", Trigger::WithinHours, None, "x");
        within.business_hours = Some(hours("mon-fri 09:00-17:00", "Europe/Madrid"));
        let mut outside = text_bot("o", Trigger::OutsideHours, None, "x");
        outside.business_hours = within.business_hours.clone();
        let set = CompiledBots::compile(
            &[
                text_bot("f", Trigger::FirstMessage, None, "x"),
                text_bot("s", Trigger::SessionStart, None, "x"),
                within,
                outside,
            ],
            &[],
        );
        // Wednesday 12:00 UTC = 14:00 Madrid: open.
        let mut m = facts("anything");
        assert_eq!(ids(&set, &m), ["w"]);
        m.at = Utc.with_ymd_and_hms(2025, 6, 11, 20, 0, 0).unwrap();
        assert_eq!(ids(&set, &m), ["o"]);
        m.first_ever = true;
        assert_eq!(ids(&set, &m), ["f", "o"]);
        m.first_ever = false;
        m.session_start = true;
        // A media message without a caption still triggers flags and hours.
        m.text = None;
        assert_eq!(ids(&set, &m), ["o", "s"]);
    }

    #[test]
    fn order_rel_types_inactive_invalid_and_timers() {
        let mut a = text_bot("a", Trigger::Contains, Some("hello"), "x");
        a.priority = 5;
        let mut b = text_bot("b", Trigger::Contains, Some("hello"), "x");
        b.priority = 1;
        let c = text_bot("c", Trigger::Exact, Some("hello"), "x");
        let mut staff_only = text_bot("s", Trigger::Contains, Some("hello"), "x");
        staff_only.rel_types = vec![RelType::Staff];
        let mut inactive = text_bot("i", Trigger::Contains, Some("hello"), "x");
        inactive.is_bot_active = false;
        let invalid = text_bot("v", Trigger::Contains, None, "x");
        let mut idle = text_bot("t", Trigger::Idle, None, "x");
        idle.minutes = Some(10);
        let set = CompiledBots::compile(&[a, b, c, staff_only, inactive, invalid, idle], &[]);
        assert_eq!(ids(&set, &facts("hello")), ["c", "b", "a"]);
        let mut m = facts("hello");
        m.rel_type = RelType::Staff;
        assert_eq!(ids(&set, &m), ["c", "s", "b", "a"]);
        assert_eq!(set.skipped().len(), 1);
        assert_eq!(set.skipped()[0].0, "v");
        assert_eq!(set.skipped()[0].1.field, "trigger");
        assert_eq!(set.of_trigger(Trigger::Idle).len(), 1);
        assert!(set.of_trigger(Trigger::Closed).is_empty());
        assert!(ids(&set, &facts("idle")).is_empty());
        assert_eq!(set.bots().len(), 5);
        assert!(set.get("t").is_some() && set.get("i").is_none());
    }

    #[test]
    fn nothing_matches_an_empty_message() {
        let set = CompiledBots::compile(&[text_bot("c", Trigger::Contains, Some("a"), "x")], &[]);
        assert!(ids(&set, &facts("")).is_empty());
        assert!(ids(&set, &facts("!!!")).is_empty());
        assert!(CompiledBots::default().matching(&facts("a")).is_empty());
    }
}
