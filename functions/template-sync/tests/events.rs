//! The sample event `events/template-sync-schedule.json` is what EventBridge Scheduler
//! delivers to the template-sync function: the hourly schedule's `Input` in `template.yaml`.
/// The function reads nothing of its input; the sample still has to be what AWS sends.
const SAMPLE: &str = include_str!("../../../events/template-sync-schedule.json");
const TEMPLATE: &str = include_str!("../../../template.yaml");

#[test]
fn the_sample_is_the_schedule_input() {
    let sample: serde_json::Value = serde_json::from_str(SAMPLE).expect("JSON");
    let section = &TEMPLATE[TEMPLATE
        .find("  TemplateSyncFunction:")
        .expect("the function")..];
    let input_line = section
        .lines()
        .find(|l| l.trim_start().starts_with("Input:"))
        .expect("the schedule's Input");
    let input = input_line.trim_start().trim_start_matches("Input:").trim();
    let input: serde_json::Value =
        serde_json::from_str(input.trim_matches('\'')).expect("Input is JSON");
    assert_eq!(input, sample);
}
