//! The sample event `events/bot-timers-schedule.json` is what EventBridge Scheduler delivers:
//! the schedule's `Input` in `template.yaml`. A timer becomes the bots function's job.
use bot_timers::job_of;
use shared::bots::job::{BotEvent, BotJob};
use shared::store::bot_timers::BotTimer;

const SAMPLE: &str = include_str!("../../../events/bot-timers-schedule.json");
const TEMPLATE: &str = include_str!("../../../template.yaml");

#[test]
fn the_sample_is_the_schedule_input() {
    let sample: serde_json::Value = serde_json::from_str(SAMPLE).expect("JSON");
    let section = &TEMPLATE[TEMPLATE.find("  BotTimersFunction:").expect("the function")..];
    let input_line = section
        .lines()
        .find(|l| l.trim_start().starts_with("Input:"))
        .expect("the schedule's Input");
    let input = input_line.trim_start().trim_start_matches("Input:").trim();
    let input: serde_json::Value =
        serde_json::from_str(input.trim_matches('\'')).expect("Input is JSON");
    assert_eq!(input, sample);
}

#[test]
fn a_timer_becomes_a_job_deduplicated_per_timer() {
    let t = BotTimer::new(
        1,
        "106540352242922",
        "c1",
        "106540352242922:c1",
        "b1",
        8,
        1_000,
        61_000,
        1_000,
    );
    let job = job_of(&t);
    assert_eq!(BotJob::from_body(&job.to_body()).unwrap(), job);
    assert!(matches!(
        job.event,
        BotEvent::Timer {
            basis_ms: 1_000,
            trigger: 8,
            ..
        }
    ));
    let again = job_of(&t).envelope();
    assert_eq!(job.envelope().dedupe_id, again.dedupe_id);
    let other = job_of(&BotTimer::new(
        1,
        "106540352242922",
        "c1",
        "106540352242922:c1",
        "b1",
        8,
        2_000,
        62_000,
        2_000,
    ));
    assert_ne!(other.envelope().dedupe_id, again.dedupe_id);
    assert_eq!(other.envelope().group_id, again.group_id);
}
