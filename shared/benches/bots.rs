//! The bot engine's trigger matching at scale:
//! - setup, asserted: 1,000 active bots (exact / contains / keyword and synonym triggers) over
//!   250 synonym groups, at least 5,000 keywords in all, compiled once; the message matches a
//!   few of them;
//! - `matching`: one `CompiledBots::matching` call for an inbound message of ~20 words
//!   (budget: ≤ 50 µs);
//! - `evaluate`: one full `evaluate` of that message (matching, families, rendering).
//!
//! `cargo bench -p shared --bench bots` (add `-- --quick` for a fast run).
use std::hint::black_box;
use std::time::Instant;

use chrono::TimeZone;
use criterion::{Criterion, criterion_group, criterion_main};
use shared::bots::{
    Bot, BotResponse, BotState, CompiledBots, Customer, Inbound, Limits, MessageFacts,
    ResponseKind, SynonymGroup, Trigger, evaluate,
};
use shared::store::model::RelType;

const BOTS: usize = 1_000;
const GROUPS: usize = 250;
const WORDS_PER_GROUP: usize = 10;
const KEYWORDS_PER_BOT: usize = 12;
const MESSAGE: &str = "Hola buenos días, I would like to know the price of contains 34 phrase \
                       and kw8c please, also syn7w3 for my order thanks";

fn bot(i: usize, reply_type: Trigger, trigger: String) -> Bot {
    Bot {
        id: format!("bot{i:04}"),
        name: format!("Bot {i}"),
        reply_type,
        trigger: Some(trigger),
        minutes: None,
        business_hours: None,
        bot_type: ResponseKind::Text,
        response: BotResponse::Text {
            text: format!("Answer {i} for {{{{customer_first_name}}}}"),
        },
        rel_types: vec![],
        priority: (i % 7) as i32,
        is_bot_active: true,
        marketing: false,
        send_count: 0,
        last_fired_at: None,
        version: 1,
        created_at: 0,
        updated_at: 0,
    }
}

/// The bots, the groups and the number of keywords (phrases, keywords, group words) in all.
fn fixture() -> (Vec<Bot>, Vec<SynonymGroup>, usize) {
    let groups: Vec<SynonymGroup> = (0..GROUPS)
        .map(|g| SynonymGroup {
            id: format!("g{g}"),
            name: format!("group{g}"),
            words: (0..WORDS_PER_GROUP)
                .map(|k| format!("syn{g}w{k}"))
                .collect(),
            version: 1,
        })
        .collect();
    let mut keywords = GROUPS * WORDS_PER_GROUP;
    let bots = (0..BOTS)
        .map(|i| match i % 3 {
            0 => {
                keywords += 1;
                bot(i, Trigger::Exact, format!("exact phrase {i}"))
            }
            1 => {
                keywords += 1;
                bot(i, Trigger::Contains, format!("contains {i} phrase"))
            }
            _ if i % 2 == 0 => {
                keywords += KEYWORDS_PER_BOT;
                let mut kws: Vec<String> = (0..KEYWORDS_PER_BOT)
                    .map(|k| format!("kw{i}{}", (b'a' + k as u8) as char))
                    .collect();
                kws.push(format!("@group{}", i % GROUPS));
                bot(i, Trigger::Keyword, kws.join(", "))
            }
            _ => bot(
                i,
                Trigger::Synonym,
                format!("group{}, group{}", i % GROUPS, (i + 1) % GROUPS),
            ),
        })
        .collect();
    (bots, groups, keywords)
}

fn bench(c: &mut Criterion) {
    let (bots, groups, keywords) = fixture();
    assert!(keywords >= 5_000, "{keywords} keywords");
    let started = Instant::now();
    let set = CompiledBots::compile(&bots, &groups);
    let compile = started.elapsed();
    assert_eq!(set.bots().len(), BOTS, "{:?}", set.skipped().first());
    let facts = MessageFacts {
        text: Some(MESSAGE),
        reply_id: None,
        reply_title: None,
        rel_type: RelType::Leads,
        first_ever: false,
        session_start: false,
        at: chrono::Utc.with_ymd_and_hms(2025, 6, 11, 12, 0, 0).unwrap(),
    };
    let words = MESSAGE.split_whitespace().count();
    let hits = set.matching(&facts);
    assert!(hits.len() >= 3, "{hits:?}");
    println!(
        "bots: {BOTS} bots, {GROUPS} groups, {keywords} keywords; compiled in {compile:?}; \
         a {words}-word message matches {} bots",
        hits.len()
    );

    c.bench_function("matching", |b| b.iter(|| set.matching(black_box(&facts))));

    let fields = serde_json::Map::new();
    let msg = Inbound {
        wamid: "wamid.BENCH",
        facts,
        customer: Customer {
            name: Some("Ada Lovelace"),
            phone: Some("+34600111222"),
            wa_id: Some("34600111222"),
            rel_type: RelType::Leads,
            fields: &fields,
            opted_out: false,
        },
        last_staff_reply_at: None,
        ai_auto: false,
    };
    let state = BotState::default();
    let limits = Limits::default();
    let d = evaluate(&set, &msg, &state, &limits);
    assert!(!d.replies.is_empty());
    c.bench_function("evaluate", |b| {
        b.iter(|| evaluate(black_box(&set), black_box(&msg), &state, &limits))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
