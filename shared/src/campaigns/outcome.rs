//! What one recipient's send attempt means for the recipient and for the campaign, by Meta's
//! error code (SYSTEM.md §4), never by the HTTP status.
use crate::meta::graph::{ErrorClass, GraphError};

/// A recipient's state (the seed's codes 0 / 2 / 3, plus the states around a send).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientStatus {
    /// Written by the scheduler, waiting in the send queue.
    Pending,
    /// A sender took it (conditional pending → sending) and is calling Meta.
    Sending,
    /// Meta accepted it (seed code 2).
    Success,
    /// Meta refused it, or it failed after acceptance (seed code 0).
    Failed,
    /// Not a WhatsApp number (seed code 3): no call to Meta.
    Invalid,
    /// The answer of the send was lost: settled by its first status, never re-sent.
    Unknown,
    /// Not sent on purpose: opted out of marketing, or the campaign was cancelled.
    Skipped,
}

impl RecipientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Invalid => "invalid",
            Self::Unknown => "unknown",
            Self::Skipped => "skipped",
        }
    }

    /// The seed's code (0 failed, 2 success, 3 invalid), for the states that have one.
    pub fn seed_code(self) -> Option<u8> {
        match self {
            Self::Failed => Some(0),
            Self::Success => Some(2),
            Self::Invalid => Some(3),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "sending" => Self::Sending,
            "success" | "2" => Self::Success,
            "failed" | "0" => Self::Failed,
            "invalid" | "3" => Self::Invalid,
            "unknown" => Self::Unknown,
            "skipped" => Self::Skipped,
            _ => return None,
        })
    }

    /// Nothing more happens to it in this run (a status may still move success → failed).
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed | Self::Invalid | Self::Skipped
        )
    }

    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Sending,
        Self::Success,
        Self::Failed,
        Self::Invalid,
        Self::Unknown,
        Self::Skipped,
    ];
}

/// What the sender does after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted: success with the wamid.
    Sent { wamid: String },
    /// Not accepted, worth another try later (rate limits, temporary errors, Meta
    /// unreachable): back to pending, the record returns to the queue after `delay_s`.
    Retry { delay_s: u32, reason: String },
    /// This recipient failed (0), with Meta's code and text.
    Failed { code: Option<i64>, reason: String },
    /// Not a WhatsApp number (3).
    Invalid { code: Option<i64>, reason: String },
    /// The customer stopped marketing messages: failed (0), and the opt-out is recorded.
    OptedOut { code: i64, reason: String },
    /// The answer was lost after the request may have reached Meta: unknown, settled by
    /// statuses, never re-sent.
    Unknown { reason: String },
    /// Meta's spam limit or a paused / disabled template: the campaign pauses (this recipient
    /// goes back to pending, to be sent on resume).
    PauseCampaign { code: i64, reason: String },
    /// The token, the number or the account no longer works: the campaign stops (this
    /// recipient goes back to pending; a restarted campaign would send it).
    StopCampaign { code: i64, reason: String },
}

impl Outcome {
    /// The metric label of this outcome.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::Retry { .. } => "retry",
            Self::Failed { .. } => "failed",
            Self::Invalid { .. } => "invalid",
            Self::OptedOut { .. } => "opted_out",
            Self::Unknown { .. } => "unknown",
            Self::PauseCampaign { .. } => "pause_campaign",
            Self::StopCampaign { .. } => "stop_campaign",
        }
    }
}

/// Maps a send's result.
pub fn classify(result: Result<String, &GraphError>) -> Outcome {
    let e = match result {
        Ok(wamid) => return Outcome::Sent { wamid },
        Err(e) => e,
    };
    match e {
        GraphError::Meta {
            code,
            class,
            message,
            ..
        } => {
            let reason = format!("{code}: {message}");
            let code = *code;
            match class {
                ErrorClass::RateLimited => Outcome::Retry {
                    // The pair rate (131056) wants ~6 s; throughput limits a little less.
                    delay_s: if code == 131056 { 10 } else { 5 },
                    reason,
                },
                ErrorClass::Temporary => Outcome::Retry {
                    delay_s: 30,
                    reason,
                },
                ErrorClass::MarketingCapped => Outcome::Failed {
                    code: Some(code),
                    reason: format!("{reason} (Meta's marketing cap for this user; try in 24 h)"),
                },
                ErrorClass::RecipientInvalid => Outcome::Invalid {
                    code: Some(code),
                    reason,
                },
                ErrorClass::OptedOut => Outcome::OptedOut { code, reason },
                ErrorClass::TemplatePaused => Outcome::PauseCampaign { code, reason },
                ErrorClass::NumberOrAccount | ErrorClass::Auth => {
                    Outcome::StopCampaign { code, reason }
                }
                ErrorClass::TemplateParams | ErrorClass::NeedsTemplate | ErrorClass::Unknown => {
                    Outcome::Failed {
                        code: Some(code),
                        reason,
                    }
                }
            }
        }
        GraphError::NotSent(m) => Outcome::Retry {
            delay_s: 10,
            reason: format!("Meta unreachable: {m}"),
        },
        GraphError::Unknown(m) => Outcome::Unknown { reason: m.clone() },
        GraphError::Validation(v) => Outcome::Failed {
            code: None,
            reason: v.to_string(),
        },
        other => Outcome::Failed {
            code: None,
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::graph::classify as class_of;

    fn meta(code: i64) -> GraphError {
        GraphError::Meta {
            http_status: 400,
            code,
            subcode: None,
            message: "m".into(),
            details: None,
            class: class_of(code),
            fbtrace_id: None,
        }
    }

    #[test]
    fn meta_codes_map_to_recipient_and_campaign_outcomes() {
        assert!(matches!(
            classify(Ok("wamid.1".into())),
            Outcome::Sent { .. }
        ));
        for c in [130429, 131056, 4, 80007, 131000] {
            assert!(
                matches!(classify(Err(&meta(c))), Outcome::Retry { .. }),
                "{c}"
            );
        }
        assert!(matches!(
            classify(Err(&meta(131026))),
            Outcome::Invalid { .. }
        ));
        assert!(matches!(
            classify(Err(&meta(131050))),
            Outcome::OptedOut { .. }
        ));
        for c in [131048, 132015, 132016] {
            assert!(
                matches!(classify(Err(&meta(c))), Outcome::PauseCampaign { .. }),
                "{c}"
            );
        }
        for c in [190, 133010, 368] {
            assert!(
                matches!(classify(Err(&meta(c))), Outcome::StopCampaign { .. }),
                "{c}"
            );
        }
        for c in [132000, 131049, 999_999] {
            assert!(
                matches!(classify(Err(&meta(c))), Outcome::Failed { .. }),
                "{c}"
            );
        }
        assert!(matches!(
            classify(Err(&GraphError::Unknown("timeout".into()))),
            Outcome::Unknown { .. }
        ));
        assert!(matches!(
            classify(Err(&GraphError::NotSent("refused".into()))),
            Outcome::Retry { .. }
        ));
    }

    #[test]
    fn statuses_keep_the_seed_codes() {
        assert_eq!(RecipientStatus::Failed.seed_code(), Some(0));
        assert_eq!(RecipientStatus::Success.seed_code(), Some(2));
        assert_eq!(RecipientStatus::Invalid.seed_code(), Some(3));
        assert_eq!(RecipientStatus::parse("3"), Some(RecipientStatus::Invalid));
        for s in RecipientStatus::ALL {
            assert_eq!(RecipientStatus::parse(s.as_str()), Some(s));
        }
    }
}
