//! `events/campaign-scheduler-run.json` is what a campaign run's EventBridge Scheduler schedule
//! delivers: the schedule's `Input`, as `EventBridgeSchedules::plan` writes it.
use shared::campaigns::schedules::{RunInput, schedule_name};

const RUN_EVENT: &str = include_str!("../../../events/campaign-scheduler-run.json");

#[test]
fn the_sample_is_a_run_schedule_input() {
    let input: RunInput = serde_json::from_str(RUN_EVENT).expect("a run input");
    assert_eq!(input.run, 1);
    assert!(shared::store::crud::is_valid_id(&input.campaign_id));
    // What the scheduler writes as Input reads back the same.
    let written = serde_json::to_string(&input).unwrap();
    assert_eq!(serde_json::from_str::<RunInput>(&written).unwrap(), input);
    assert!(schedule_name(&input.campaign_id, input.run).len() <= 64);
}
