//! Business hours: `"mon-fri 09:00-17:00; sat 10:00-14:00"` in an IANA zone, with holidays.
//!
//! Grammar: entries separated by `;` (or new lines); an entry is days then time ranges, the
//! items separated by spaces or commas. Days are `mon`..`sun` (full names too, and `daily`),
//! alone, in lists (`mon,wed,fri`) or ranges (`mon-fri`, `fri-mon` wraps). A time range is
//! `HH:MM-HH:MM` (`24:00` may end one); several may follow the days
//! (`mon-fri 09:00-13:00, 14:00-18:00`). A range that ends before it starts runs across midnight
//! (`22:00-02:00`) and belongs to the day it starts: open on Friday 22:00-02:00 means open until
//! Saturday 02:00, even when Saturday is a holiday, and not after a holiday Thursday.
//!
//! Times are the zone's wall-clock time (so DST needs nothing special); holidays are dates in the
//! zone, closed all day.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

use super::model::{BotInvalid, BusinessHours};

const DAY_MINUTES: u16 = 24 * 60;

/// Business hours ready to be asked [`CompiledHours::is_open`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledHours {
    tz: Tz,
    /// Per weekday (Monday first): open `[start, end)` minutes from the day's midnight; `end`
    /// above 1440 runs into the next day.
    days: [Vec<(u16, u16)>; 7],
    /// Sorted.
    holidays: Vec<NaiveDate>,
}

impl BusinessHours {
    /// Parse the schedule, the zone and the holidays (fields `business_hours.…`).
    pub fn compile(&self) -> Result<CompiledHours, BotInvalid> {
        let tz: Tz = self.timezone.trim().parse().map_err(|_| {
            BotInvalid::new(
                "business_hours.timezone",
                format!(
                    "{:?} is not an IANA time zone (e.g. Europe/Madrid)",
                    self.timezone
                ),
            )
        })?;
        let days = parse_schedule(&self.schedule)
            .map_err(|reason| BotInvalid::new("business_hours.schedule", reason))?;
        let mut holidays = Vec::with_capacity(self.holidays.len());
        for (i, h) in self.holidays.iter().enumerate() {
            let d = NaiveDate::parse_from_str(h.trim(), "%Y-%m-%d")
                .ok()
                .filter(|_| h.trim().len() == 10)
                .ok_or_else(|| {
                    BotInvalid::new(
                        format!("business_hours.holidays[{i}]"),
                        format!("{h:?} is not a date as YYYY-MM-DD"),
                    )
                })?;
            holidays.push(d);
        }
        holidays.sort_unstable();
        holidays.dedup();
        Ok(CompiledHours { tz, days, holidays })
    }
}

impl CompiledHours {
    /// Is the business open at `at`?
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        let minute = (local.hour() * 60 + local.minute()) as u16;
        let date = local.date_naive();
        let wd = local.weekday().num_days_from_monday() as usize;
        let today = !self.is_holiday(date)
            && self.days[wd]
                .iter()
                .any(|&(s, e)| s <= minute && minute < e);
        if today {
            return true;
        }
        // Yesterday's ranges across midnight.
        let Some(yesterday) = date.pred_opt() else {
            return false;
        };
        !self.is_holiday(yesterday)
            && self.days[(wd + 6) % 7]
                .iter()
                .any(|&(_, e)| e > DAY_MINUTES && minute + DAY_MINUTES < e)
    }

    /// The zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    fn is_holiday(&self, d: NaiveDate) -> bool {
        self.holidays.binary_search(&d).is_ok()
    }
}

fn parse_schedule(s: &str) -> Result<[Vec<(u16, u16)>; 7], String> {
    let mut days: [Vec<(u16, u16)>; 7] = Default::default();
    let mut any = false;
    for entry in s.split([';', '\n']) {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        // "09:00 - 17:00" → "09:00-17:00", "mon - fri" → "mon-fri".
        let compact = entry
            .split('-')
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("-");
        let mut which = [false; 7];
        let mut ranges = Vec::new();
        for token in compact
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
        {
            if token.starts_with(|c: char| c.is_ascii_digit()) {
                ranges.push(parse_range(token).map_err(|e| format!("{entry:?}: {e}"))?);
            } else {
                if !ranges.is_empty() {
                    return Err(format!(
                        "{entry:?}: days come before the times (write one entry per day group, separated by ';')"
                    ));
                }
                parse_days(token, &mut which).map_err(|e| format!("{entry:?}: {e}"))?;
            }
        }
        if !which.iter().any(|d| *d) {
            return Err(format!("{entry:?}: no days (e.g. mon-fri 09:00-17:00)"));
        }
        if ranges.is_empty() {
            return Err(format!(
                "{entry:?}: no time range (e.g. mon-fri 09:00-17:00)"
            ));
        }
        for (d, on) in which.iter().enumerate() {
            if *on {
                days[d].extend_from_slice(&ranges);
            }
        }
        any = true;
    }
    if !any {
        return Err("must not be empty (e.g. mon-fri 09:00-17:00; sat 10:00-14:00)".into());
    }
    Ok(days)
}

fn day_index(name: &str) -> Option<usize> {
    let n = name.to_ascii_lowercase();
    let i = match n.as_str() {
        "mon" | "monday" => 0,
        "tue" | "tues" | "tuesday" => 1,
        "wed" | "wednesday" => 2,
        "thu" | "thur" | "thurs" | "thursday" => 3,
        "fri" | "friday" => 4,
        "sat" | "saturday" => 5,
        "sun" | "sunday" => 6,
        _ => return None,
    };
    Some(i)
}

fn parse_days(token: &str, which: &mut [bool; 7]) -> Result<(), String> {
    let t = token.to_ascii_lowercase();
    if matches!(t.as_str(), "daily" | "everyday" | "all") {
        *which = [true; 7];
        return Ok(());
    }
    let unknown = |d: &str| format!("unknown day {d:?} (use mon, tue, wed, thu, fri, sat, sun)");
    match t.split_once('-') {
        None => {
            let d = day_index(&t).ok_or_else(|| unknown(token))?;
            which[d] = true;
        }
        Some((a, b)) => {
            let a = day_index(a).ok_or_else(|| unknown(a))?;
            let b = day_index(b).ok_or_else(|| unknown(b))?;
            let mut d = a;
            loop {
                which[d] = true;
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
        }
    }
    Ok(())
}

fn parse_time(t: &str) -> Option<u16> {
    let (h, m) = t.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u16 = h.parse().ok()?;
    let m: u16 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

fn parse_range(token: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{token:?} is not a time range such as 09:00-17:00");
    let (a, b) = token.split_once('-').ok_or_else(bad)?;
    let start = parse_time(a).ok_or_else(bad)?;
    let end = parse_time(b).ok_or_else(bad)?;
    if start == DAY_MINUTES {
        return Err(format!("{token:?}: a range cannot start at 24:00"));
    }
    match start.cmp(&end) {
        std::cmp::Ordering::Less => Ok((start, end)),
        std::cmp::Ordering::Equal => Err(format!("{token:?}: the range is empty")),
        // Across midnight (22:00-02:00): belongs to the day it starts.
        std::cmp::Ordering::Greater => Ok((start, end + DAY_MINUTES)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn hours(schedule: &str, tz: &str, holidays: &[&str]) -> CompiledHours {
        BusinessHours {
            schedule: schedule.into(),
            timezone: tz.into(),
            holidays: holidays.iter().map(|s| s.to_string()).collect(),
        }
        .compile()
        .unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn same_instant_differs_by_zone() {
        // Wednesday 2025-06-11 14:00 UTC = 10:00 New York, 19:30 Kolkata, 16:00 Madrid.
        let at = utc(2025, 6, 11, 14, 0);
        let s = "mon-fri 09:00-17:00";
        assert!(hours(s, "America/New_York", &[]).is_open(at));
        assert!(!hours(s, "Asia/Kolkata", &[]).is_open(at));
        assert!(hours(s, "Europe/Madrid", &[]).is_open(at));
        // 03:45 UTC = 09:15 Kolkata (half-hour offset), 23:45 New York the day before.
        let at = utc(2025, 6, 11, 3, 45);
        assert!(hours(s, "Asia/Kolkata", &[]).is_open(at));
        assert!(!hours(s, "America/New_York", &[]).is_open(at));
        let at = utc(2025, 6, 11, 3, 29);
        assert!(!hours(s, "Asia/Kolkata", &[]).is_open(at));
    }

    #[test]
    fn weekdays_and_boundaries() {
        let h = hours("mon-fri 09:00-17:00; sat 10:00-14:00", "UTC", &[]);
        // 2025-06-09 is a Monday.
        assert!(h.is_open(utc(2025, 6, 9, 9, 0)));
        assert!(h.is_open(utc(2025, 6, 9, 16, 59)));
        assert!(!h.is_open(utc(2025, 6, 9, 17, 0)));
        assert!(!h.is_open(utc(2025, 6, 9, 8, 59)));
        assert!(h.is_open(utc(2025, 6, 14, 10, 0))); // Saturday
        assert!(!h.is_open(utc(2025, 6, 14, 15, 0)));
        assert!(!h.is_open(utc(2025, 6, 15, 12, 0))); // Sunday
        let lists = hours("mon,wed, fri 08:00-12:00, 13:00-17:00", "UTC", &[]);
        assert!(lists.is_open(utc(2025, 6, 11, 8, 0))); // Wednesday
        assert!(!lists.is_open(utc(2025, 6, 11, 12, 30)));
        assert!(lists.is_open(utc(2025, 6, 11, 13, 0)));
        assert!(!lists.is_open(utc(2025, 6, 10, 9, 0))); // Tuesday
        let wrap = hours("Friday - Monday 00:00-24:00", "UTC", &[]);
        assert!(wrap.is_open(utc(2025, 6, 14, 23, 59)));
        assert!(wrap.is_open(utc(2025, 6, 9, 0, 0)));
        assert!(!wrap.is_open(utc(2025, 6, 10, 12, 0)));
    }

    #[test]
    fn ranges_across_midnight_belong_to_their_start_day() {
        // Friday night shift only.
        let h = hours("fri 22:00-02:00", "Europe/Madrid", &[]);
        // 2025-06-13 is a Friday; Madrid is UTC+2 in June.
        assert!(h.is_open(utc(2025, 6, 13, 20, 0))); // Fri 22:00
        assert!(h.is_open(utc(2025, 6, 13, 23, 59))); // Sat 01:59
        assert!(!h.is_open(utc(2025, 6, 14, 0, 0))); // Sat 02:00
        assert!(!h.is_open(utc(2025, 6, 12, 21, 0))); // Thu 23:00
        assert!(!h.is_open(utc(2025, 6, 14, 20, 30))); // Sat 22:30
        // A holiday Friday closes its night, a holiday Saturday does not.
        let hol = hours("fri 22:00-02:00", "Europe/Madrid", &["2025-06-13"]);
        assert!(!hol.is_open(utc(2025, 6, 13, 20, 0)));
        assert!(!hol.is_open(utc(2025, 6, 13, 23, 0)));
        let sat = hours("fri 22:00-02:00", "Europe/Madrid", &["2025-06-14"]);
        assert!(sat.is_open(utc(2025, 6, 13, 23, 0)));
        // A Sunday night range runs into Monday.
        let sun = hours("sun 23:00-01:00", "UTC", &[]);
        assert!(sun.is_open(utc(2025, 6, 16, 0, 30)));
    }

    #[test]
    fn holidays_use_the_zones_date() {
        let h = hours("daily 00:00-24:00", "Asia/Kolkata", &["2025-12-25"]);
        // 2025-12-24 20:00 UTC is already 25 December (01:30) in Kolkata.
        assert!(!h.is_open(utc(2025, 12, 24, 20, 0)));
        // 2025-12-24 18:00 UTC is 23:30 on the 24th in Kolkata.
        assert!(h.is_open(utc(2025, 12, 24, 18, 0)));
        // In New York the same instant (15:00 on the 24th) is not a holiday.
        let ny = hours("daily 00:00-24:00", "America/New_York", &["2025-12-25"]);
        assert!(ny.is_open(utc(2025, 12, 24, 20, 0)));
        assert!(!ny.is_open(utc(2025, 12, 25, 20, 0)));
    }

    #[test]
    fn dst_follows_the_wall_clock() {
        let h = hours("mon-fri 09:00-17:00", "America/New_York", &[]);
        // Before DST (EST, UTC-5): 13:30 UTC on Friday 2025-03-07 = 08:30 local, closed.
        assert!(!h.is_open(utc(2025, 3, 7, 13, 30)));
        assert!(h.is_open(utc(2025, 3, 7, 14, 0)));
        // After DST (EDT, UTC-4, from 2025-03-09): 13:30 UTC on Monday = 09:30 local, open.
        assert!(h.is_open(utc(2025, 3, 10, 13, 30)));
        assert!(!h.is_open(utc(2025, 3, 10, 21, 0)));
        let m = hours("sun 01:00-04:00", "Europe/Madrid", &[]);
        // 2025-03-30: clocks go from 02:00 to 03:00 CET→CEST. 01:30 UTC = 03:30 CEST.
        assert!(m.is_open(utc(2025, 3, 30, 1, 30)));
        assert!(!m.is_open(utc(2025, 3, 30, 2, 0))); // 04:00 CEST
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |schedule: &str, tz: &str, hol: &[&str]| {
            BusinessHours {
                schedule: schedule.into(),
                timezone: tz.into(),
                holidays: hol.iter().map(|s| s.to_string()).collect(),
            }
            .compile()
            .unwrap_err()
            .field
        };
        assert_eq!(bad("", "UTC", &[]), "business_hours.schedule");
        assert_eq!(bad("mon", "UTC", &[]), "business_hours.schedule");
        assert_eq!(bad("09:00-17:00", "UTC", &[]), "business_hours.schedule");
        assert_eq!(
            bad("funday 09:00-17:00", "UTC", &[]),
            "business_hours.schedule"
        );
        assert_eq!(
            bad("mon 09:00-09:00", "UTC", &[]),
            "business_hours.schedule"
        );
        assert_eq!(
            bad("mon 25:00-26:00", "UTC", &[]),
            "business_hours.schedule"
        );
        assert_eq!(
            bad("mon 09:00-17:00 tue", "UTC", &[]),
            "business_hours.schedule"
        );
        assert_eq!(
            bad("mon 09:00-17:00", "Nowhere/City", &[]),
            "business_hours.timezone"
        );
        assert_eq!(
            bad("mon 09:00-17:00", "UTC", &["2025-01-01", "1/1/2025"]),
            "business_hours.holidays[1]"
        );
        hours("mon 9:00 - 17:30;\n tue 00:00-24:00", "UTC", &[]);
    }
}
