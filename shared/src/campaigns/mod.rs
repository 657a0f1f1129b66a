//! Bulk template campaigns: what a campaign is ([`model`]), who receives it ([`audience`]),
//! the per-recipient template parameters ([`params`]) and what each send attempt means
//! ([`outcome`]). Storage is in `store::campaigns`; the functions that run campaigns are
//! `campaign-scheduler` (claims a run, writes and queues its recipients) and `campaign-sender`
//! (sends each recipient once, paced).
pub mod audience;
pub mod delivery;
pub mod model;
pub mod outcome;
pub mod params;
pub mod runs;
pub mod schedules;

pub use model::{CampaignInvalid, CampaignSpec, CampaignState, CampaignType, Source};
pub use outcome::{Outcome, RecipientStatus};

/// One send-queue message: the recipient (campaign, run, canonical number) to send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SendJob {
    pub campaign_id: String,
    pub run: u32,
    /// The recipient's key (canonical E.164).
    pub phone: String,
}

impl SendJob {
    /// The message for a standard queue (no group, no dedupe id).
    pub fn envelope(&self) -> crate::envelope::QueuedEnvelope {
        crate::envelope::QueuedEnvelope {
            group_id: String::new(),
            dedupe_id: String::new(),
            body: serde_json::to_string(self).expect("a send job serialises"),
            label: format!("{}:{}:{}", self.campaign_id, self.run, self.phone),
        }
    }
}
