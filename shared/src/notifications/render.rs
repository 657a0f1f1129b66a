//! Template parameters over a CRM event: `{invoice.number}`, `{lead.name}`, any dotted path
//! into the event's `detail` (array items by position: `{items.0.description}`), with an
//! optional format after a colon and an optional fallback after a bar:
//! `{invoice.total:money|0.00}`.
//!
//! Formats: `money` (two decimals, thousands separated: `1,234.50`), `date` (`1 Dec 2026`),
//! `datetime` (`1 Dec 2026 14:05`, UTC), `first` (the first word: a first name). Dates are read
//! as the CRM writes them (`2026-12-01`, `2026-12-01 14:05:00`, RFC 3339) or as epoch seconds
//! or milliseconds. A value that does not read as the format asks for is missing (the
//! fallback, if any, is used).
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use crate::campaigns::params::{Fields, placeholders};

/// Roots a placeholder may start with: the records and people of an event.
pub const ROOTS: [&str; 11] = [
    "lead", "contact", "staff", "invoice", "task", "project", "proposal", "payment", "ticket",
    "customer", "record",
];

/// Formats a placeholder may ask for.
pub const FORMATS: [&str; 4] = ["money", "date", "datetime", "first"];

/// An event's `detail` as placeholder values (its `record` also under `record_root`).
pub struct EventFields<'a> {
    pub detail: &'a Value,
    pub record_root: Option<&'a str>,
}

impl<'a> EventFields<'a> {
    pub fn new(detail: &'a Value, record_root: Option<&'a str>) -> Self {
        Self {
            detail,
            record_root,
        }
    }
}

impl Fields for EventFields<'_> {
    fn field(&self, key: &str) -> Option<String> {
        let (path, format) = key.split_once(':').unwrap_or((key, ""));
        let mut segs = path.split('.');
        let mut v = super::part(self.detail, segs.next()?, self.record_root)?;
        for seg in segs {
            v = match v {
                Value::Object(m) => m.get(seg)?,
                Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        let text = super::scalar(Some(v)).filter(|s| !s.trim().is_empty())?;
        match format {
            "" => Some(text),
            "money" => money(&text),
            "date" => when(&text).map(|d| d.format("%-d %b %Y").to_string()),
            "datetime" => when(&text).map(|d| d.format("%-d %b %Y %H:%M").to_string()),
            "first" => text.split_whitespace().next().map(str::to_string),
            _ => None,
        }
    }
}

/// Why a placeholder cannot be used (for validation on save), `None` when it can.
pub fn check_placeholder(key: &str) -> Option<String> {
    let (path, format) = key.split_once(':').unwrap_or((key, ""));
    let root = path.split('.').next().unwrap_or("");
    if !ROOTS.contains(&root) {
        return Some(format!(
            "unknown placeholder {{{key}}}: start with one of {}",
            ROOTS.join(", ")
        ));
    }
    if path.split('.').any(str::is_empty) {
        return Some(format!("placeholder {{{key}}} has an empty part"));
    }
    if !format.is_empty() && !FORMATS.contains(&format) {
        return Some(format!(
            "placeholder {{{key}}} asks for an unknown format: use {}",
            FORMATS.join(", ")
        ));
    }
    None
}

/// The placeholder problems of one text.
pub fn check_text(text: &str) -> Result<(), String> {
    for (key, _) in placeholders(text) {
        if let Some(why) = check_placeholder(&key) {
            return Err(why);
        }
    }
    Ok(())
}

fn money(text: &str) -> Option<String> {
    let n: f64 = text.replace(',', "").trim().parse().ok()?;
    if !n.is_finite() {
        return None;
    }
    let cents = (n.abs() * 100.0).round() as u128;
    let (units, cents) = (cents / 100, cents % 100);
    let digits = units.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if n < 0.0 && (units, cents) != (0, 0) {
        "-"
    } else {
        ""
    };
    Some(format!("{sign}{grouped}.{cents:02}"))
}

fn when(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        // Epoch milliseconds past 1e11 (1973 in ms, year 5138 in seconds).
        return if n.abs() >= 100_000_000_000 {
            DateTime::from_timestamp_millis(n)
        } else {
            DateTime::from_timestamp(n, 0)
        };
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S") {
        return Some(d.and_utc());
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaigns::params::fill;
    use serde_json::json;

    #[test]
    fn paths_formats_and_fallbacks() {
        let d = json!({"invoice": {"number": "INV-000123", "total": "1234.5", "duedate": "2026-12-24",
                                   "items": [{"description": "Hosting"}]},
                       "lead": {"name": "Ana Lima"}, "payment": {"amount": -0.001, "date": 1_764_547_200_000_i64}});
        let f = EventFields::new(&d, None);
        assert_eq!(
            fill(
                "{invoice.number} due {invoice.duedate:date}: {invoice.total:money}",
                &f
            )
            .unwrap(),
            "INV-000123 due 24 Dec 2026: 1,234.50"
        );
        assert_eq!(fill("Hi {lead.name:first}", &f).unwrap(), "Hi Ana");
        assert_eq!(
            fill("{invoice.items.0.description}", &f).unwrap(),
            "Hosting"
        );
        assert_eq!(fill("{payment.amount:money}", &f).unwrap(), "0.00");
        assert_eq!(
            fill("{payment.date:datetime}", &f).unwrap(),
            "1 Dec 2025 00:00"
        );
        assert_eq!(fill("{lead.email|no email}", &f).unwrap(), "no email");
        assert_eq!(fill("{lead.name:money|?}", &f).unwrap(), "?");
        assert!(fill("{invoice.missing}", &f).is_err());
        assert_eq!(money("1234567.891").unwrap(), "1,234,567.89");
        assert_eq!(money("-12").unwrap(), "-12.00");
        assert_eq!(money("999").unwrap(), "999.00");
        // The record under its kind.
        let inv = json!({"record": {"number": "INV-9"}});
        let f = EventFields::new(&inv, Some("invoice"));
        assert_eq!(
            fill("{invoice.number}/{record.number}", &f).unwrap(),
            "INV-9/INV-9"
        );
    }

    #[test]
    fn placeholders_are_checked_on_save() {
        assert!(check_text("{invoice.total:money} {lead.name|x}").is_ok());
        assert!(
            check_text("{order.id}")
                .unwrap_err()
                .contains("unknown placeholder")
        );
        assert!(
            check_text("{invoice.total:euros}")
                .unwrap_err()
                .contains("format")
        );
        assert!(
            check_text("{invoice..total}")
                .unwrap_err()
                .contains("empty")
        );
        assert!(check_text("no placeholders { at all").is_ok());
    }
}
