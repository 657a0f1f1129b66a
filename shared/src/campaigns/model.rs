//! A bulk template campaign: who gets it (a source and its ids, or all of it), which approved
//! template with which per-recipient parameters, from which number, and when (once, now or at
//! a planned time; every N days; at a list of times). Validated on save, the error naming the
//! field.
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::meta::outbound::TemplateMessage;

/// Ids of one campaign's audience at most (beyond it, use `all` or a group).
pub const MAX_IDS: usize = 10_000;
/// Send times of a custom campaign at most.
pub const MAX_SEND_TIMES: usize = 100;
/// Runs of a recurring campaign at most (`until` bounds them too).
pub const MAX_RECURRING_RUNS: u32 = 1_000;

/// Where the recipients come from (the seed's `rel_type`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// CRM leads (the directory).
    Leads,
    /// CRM contacts (the directory).
    Contacts,
    /// Members of WhatsApp groups (the audiences).
    WhatsappGroups,
    /// WhatsApp contacts (the audiences).
    WhatsappContacts,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Leads => "leads",
            Self::Contacts => "contacts",
            Self::WhatsappGroups => "whatsapp_groups",
            Self::WhatsappContacts => "whatsapp_contacts",
        }
    }
}

/// How often the campaign runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignType {
    /// Once: now, or at `scheduled_send_time`.
    Onetime,
    /// At `scheduled_send_time`, then every `auto_reminder_days` days (until `until`).
    Recurring,
    /// At each of `send_times`.
    Custom,
}

/// Where a campaign stands.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Saved with a planned run.
    Scheduled,
    /// A run is sending.
    Running,
    /// Paused by the marketer or by Meta (spam limit, paused template): nothing is sent until
    /// resumed.
    Paused,
    /// Cancelled by the marketer: nothing more is sent, ever.
    Cancelled,
    /// Stopped by the system (the token no longer works): nothing more is sent.
    Stopped,
    /// Every run is done.
    Finished,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
            Self::Stopped => "stopped",
            Self::Finished => "finished",
        }
    }

    /// No run will ever send again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Cancelled | Self::Stopped | Self::Finished)
    }
}

/// A campaign as the marketer defines it (the staff API's body; stored with its state).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSpec {
    /// 1–200 characters.
    pub name: String,
    pub rel_type: Source,
    /// Every record of the source (the ids are then ignored).
    #[serde(default)]
    pub all: bool,
    /// The chosen records (lead, contact, group or WhatsApp-contact ids), at most 10,000.
    #[serde(default)]
    pub ids: Vec<String>,
    /// The approved template (name + language). Text parameters may hold placeholders over the
    /// recipient: `{name}`, `{first_name}`, `{phone}`, or any field of the recipient's record
    /// (`{email}`), each with an optional fallback after a bar: `{first_name|there}`.
    pub template: TemplateMessage,
    /// The sending number; the default number when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    pub campaign_type: CampaignType,
    /// Local time `YYYY-MM-DDTHH:MM[:SS]` in `timezone` of the first run (not for `custom`);
    /// absent with `send_now` (or for a one-time campaign that starts now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_send_time: Option<String>,
    /// IANA time zone of the times (default `UTC`).
    #[serde(default = "utc")]
    pub timezone: String,
    /// `recurring`: days between runs (1–365).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_reminder_days: Option<u32>,
    /// `recurring`: no run after this local time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// `custom`: local send times, at most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub send_times: Vec<String>,
    /// Start the first run at once (one-time and recurring campaigns).
    #[serde(default)]
    pub send_now: bool,
}

fn utc() -> String {
    "UTC".into()
}

/// A campaign that breaks a rule, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct CampaignInvalid {
    pub field: String,
    pub reason: String,
}

fn invalid(field: &str, reason: impl Into<String>) -> CampaignInvalid {
    CampaignInvalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A local time as the API takes it.
pub fn parse_local(field: &str, s: &str, tz: Tz) -> Result<DateTime<Utc>, CampaignInvalid> {
    let t = s.trim();
    let naive = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
        .map_err(|_| invalid(field, "must be a local time YYYY-MM-DDTHH:MM[:SS]"))?;
    // A time skipped by a daylight-saving change does not exist; an ambiguous one is the first.
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| {
            invalid(
                field,
                format!("{t} does not exist in {tz} (a clock change)"),
            )
        })
}

impl CampaignSpec {
    pub fn tz(&self) -> Result<Tz, CampaignInvalid> {
        self.timezone.trim().parse::<Tz>().map_err(|_| {
            invalid(
                "timezone",
                "must be an IANA time zone such as Europe/Lisbon",
            )
        })
    }

    /// Checks everything that does not need the store (the template's approval and the ids'
    /// existence are checked by the caller). `now` bounds planned times: they must lie ahead.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), CampaignInvalid> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid("name", "must be 1 to 200 characters"));
        }
        if !self.all && self.ids.is_empty() {
            return Err(invalid("ids", "choose at least one recipient, or set all"));
        }
        if self.ids.len() > MAX_IDS {
            return Err(invalid(
                "ids",
                format!("at most {MAX_IDS}; use all or a group"),
            ));
        }
        for (i, id) in self.ids.iter().enumerate() {
            if !crate::store::crud::is_valid_id(id) {
                return Err(invalid(
                    &format!("ids[{i}]"),
                    "must be 1 to 64 letters, digits, '-' or '_'",
                ));
            }
        }
        let t = &self.template;
        if t.name.trim().is_empty() || t.name.len() > 512 {
            return Err(invalid("template.name", "must be a template name"));
        }
        if t.language.trim().is_empty() || t.language.len() > 15 {
            return Err(invalid(
                "template.language",
                "must be a language code such as en_US",
            ));
        }
        if let Some(p) = &self.phone_number_id
            && crate::credentials::check_graph_id(p).is_err()
        {
            return Err(invalid("phone_number_id", "must be a Meta phone number id"));
        }
        let tz = self.tz()?;
        let future = |field: &str, s: &str| -> Result<DateTime<Utc>, CampaignInvalid> {
            let at = parse_local(field, s, tz)?;
            if at <= now {
                return Err(invalid(field, "must lie in the future"));
            }
            Ok(at)
        };
        match self.campaign_type {
            CampaignType::Onetime => {
                if self.send_now && self.scheduled_send_time.is_some() {
                    return Err(invalid(
                        "scheduled_send_time",
                        "give either send_now or a scheduled_send_time",
                    ));
                }
                if let Some(s) = &self.scheduled_send_time {
                    future("scheduled_send_time", s)?;
                }
                self.none_of(&["auto_reminder_days", "until", "send_times"])?;
            }
            CampaignType::Recurring => {
                let days = self.auto_reminder_days.ok_or_else(|| {
                    invalid(
                        "auto_reminder_days",
                        "a recurring campaign needs the days between runs",
                    )
                })?;
                if !(1..=365).contains(&days) {
                    return Err(invalid("auto_reminder_days", "must be 1 to 365"));
                }
                let first = match (&self.scheduled_send_time, self.send_now) {
                    (Some(s), false) => future("scheduled_send_time", s)?,
                    (None, true) => now,
                    _ => {
                        return Err(invalid(
                            "scheduled_send_time",
                            "a recurring campaign needs either send_now or a scheduled_send_time",
                        ));
                    }
                };
                if let Some(u) = &self.until
                    && parse_local("until", u, tz)? < first
                {
                    return Err(invalid("until", "must not lie before the first run"));
                }
                self.none_of(&["send_times"])?;
            }
            CampaignType::Custom => {
                if self.send_times.is_empty() {
                    return Err(invalid("send_times", "a custom campaign needs send times"));
                }
                if self.send_times.len() > MAX_SEND_TIMES {
                    return Err(invalid("send_times", format!("at most {MAX_SEND_TIMES}")));
                }
                let mut seen = Vec::new();
                for (i, s) in self.send_times.iter().enumerate() {
                    let at = future(&format!("send_times[{i}]"), s)?;
                    if seen.contains(&at) {
                        return Err(invalid(&format!("send_times[{i}]"), "is given twice"));
                    }
                    seen.push(at);
                }
                if self.send_now {
                    return Err(invalid(
                        "send_now",
                        "a custom campaign runs at its send times",
                    ));
                }
                self.none_of(&["scheduled_send_time", "auto_reminder_days", "until"])?;
            }
        }
        Ok(())
    }

    fn none_of(&self, fields: &[&str]) -> Result<(), CampaignInvalid> {
        for f in fields {
            let set = match *f {
                "scheduled_send_time" => self.scheduled_send_time.is_some(),
                "auto_reminder_days" => self.auto_reminder_days.is_some(),
                "until" => self.until.is_some(),
                "send_times" => !self.send_times.is_empty(),
                _ => false,
            };
            if set {
                return Err(invalid(
                    f,
                    format!(
                        "does not apply to a {} campaign",
                        match self.campaign_type {
                            CampaignType::Onetime => "onetime",
                            CampaignType::Recurring => "recurring",
                            CampaignType::Custom => "custom",
                        }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// When run `n` (1-based) starts; `None` when there is no such run. `first` is the
    /// first run's time (`now` for `send_now`, or the campaign's planned time).
    pub fn run_at(&self, n: u32, now_at_save: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let tz = self.tz().ok()?;
        if n == 0 {
            return None;
        }
        let first = || match (&self.scheduled_send_time, self.send_now) {
            (Some(s), _) => parse_local("", s, tz).ok(),
            (None, _) => Some(now_at_save),
        };
        match self.campaign_type {
            CampaignType::Onetime => (n == 1).then(first).flatten(),
            CampaignType::Recurring => {
                if n > MAX_RECURRING_RUNS {
                    return None;
                }
                let days = i64::from(self.auto_reminder_days?);
                let f = first()?;
                // Every N days at the same local time (a clock change keeps the wall time).
                let local = f.with_timezone(&tz).naive_local()
                    + chrono::Duration::days(days * i64::from(n - 1));
                let at = tz
                    .from_local_datetime(&local)
                    .earliest()
                    .map(|d| d.with_timezone(&Utc))?;
                match &self.until {
                    Some(u) if parse_local("", u, tz).ok()? < at => None,
                    _ => Some(at),
                }
            }
            CampaignType::Custom => {
                let mut times: Vec<DateTime<Utc>> = self
                    .send_times
                    .iter()
                    .filter_map(|s| parse_local("", s, tz).ok())
                    .collect();
                times.sort();
                times.get(n as usize - 1).copied()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: CampaignType) -> CampaignSpec {
        CampaignSpec {
            name: "Spring".into(),
            rel_type: Source::Leads,
            all: true,
            ids: vec![],
            template: TemplateMessage {
                name: "spring_sale".into(),
                language: "en_US".into(),
                components: vec![],
            },
            phone_number_id: None,
            campaign_type: kind,
            scheduled_send_time: None,
            timezone: "Europe/Lisbon".into(),
            auto_reminder_days: None,
            until: None,
            send_times: vec![],
            send_now: false,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn err(s: &CampaignSpec) -> String {
        s.validate(now()).unwrap_err().field
    }

    #[test]
    fn each_type_takes_only_its_own_times() {
        let mut s = spec(CampaignType::Onetime);
        assert!(
            s.validate(now()).is_ok(),
            "a one-time campaign may start now"
        );
        s.scheduled_send_time = Some("2026-02-01T09:00".into());
        assert_eq!(err(&s), "scheduled_send_time", "in the past");
        s.scheduled_send_time = Some("2026-03-02T09:00".into());
        assert!(s.validate(now()).is_ok());
        s.send_times = vec!["2026-03-03T09:00".into()];
        assert_eq!(err(&s), "send_times");

        let mut r = spec(CampaignType::Recurring);
        assert_eq!(err(&r), "auto_reminder_days");
        r.auto_reminder_days = Some(0);
        assert_eq!(err(&r), "auto_reminder_days");
        r.auto_reminder_days = Some(7);
        assert_eq!(err(&r), "scheduled_send_time");
        r.send_now = true;
        assert!(r.validate(now()).is_ok());
        r.until = Some("2026-02-01T00:00".into());
        assert_eq!(err(&r), "until");

        let mut c = spec(CampaignType::Custom);
        assert_eq!(err(&c), "send_times");
        c.send_times = vec!["2026-03-05T10:00".into(), "2026-03-04T10:00".into()];
        assert!(c.validate(now()).is_ok());
        c.send_times.push("2026-03-04T10:00:00".into());
        assert_eq!(err(&c), "send_times[2]");
    }

    #[test]
    fn audience_name_template_and_zone_are_checked() {
        let mut s = spec(CampaignType::Onetime);
        s.all = false;
        assert_eq!(err(&s), "ids");
        s.ids = vec!["ok-1".into(), "bad id".into()];
        assert_eq!(err(&s), "ids[1]");
        s.ids = vec!["ok-1".into()];
        s.timezone = "Mars/Olympus".into();
        assert_eq!(err(&s), "timezone");
        s.timezone = "UTC".into();
        s.name = " ".into();
        assert_eq!(err(&s), "name");
        s.name = "x".into();
        s.template.language = String::new();
        assert_eq!(err(&s), "template.language");
    }

    #[test]
    fn runs_follow_the_local_clock() {
        let mut r = spec(CampaignType::Recurring);
        r.auto_reminder_days = Some(7);
        r.scheduled_send_time = Some("2026-03-20T09:00".into());
        r.until = Some("2026-04-10T09:00".into());
        let at = |n| r.run_at(n, now()).map(|d| d.to_rfc3339());
        // 09:00 in Lisbon is 09:00 UTC in winter and 08:00 UTC after the 29 March change.
        assert_eq!(at(1).unwrap(), "2026-03-20T09:00:00+00:00");
        assert_eq!(at(2).unwrap(), "2026-03-27T09:00:00+00:00");
        assert_eq!(at(3).unwrap(), "2026-04-03T08:00:00+00:00");
        assert_eq!(at(4).unwrap(), "2026-04-10T08:00:00+00:00");
        assert_eq!(at(5), None, "after until");

        let mut c = spec(CampaignType::Custom);
        c.timezone = "America/Sao_Paulo".into();
        c.send_times = vec!["2026-03-05T10:00".into(), "2026-03-04T10:00".into()];
        assert_eq!(
            c.run_at(1, now()).unwrap().to_rfc3339(),
            "2026-03-04T13:00:00+00:00"
        );
        assert!(c.run_at(3, now()).is_none());

        let o = spec(CampaignType::Onetime);
        assert_eq!(o.run_at(1, now()), Some(now()));
        assert_eq!(o.run_at(2, now()), None);
    }

    #[test]
    fn a_time_skipped_by_a_clock_change_is_refused() {
        let mut s = spec(CampaignType::Onetime);
        s.scheduled_send_time = Some("2026-03-29T01:30".into());
        assert_eq!(err(&s), "scheduled_send_time");
    }
}
