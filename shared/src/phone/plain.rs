//! The `phonenumber` crate's parse and validity check, for plain input, without its regular
//! expressions.
//!
//! Most numbers a CRM or a customer writes are plain: an optional leading `+`, digits, spaces,
//! dashes, dots and parentheses (`+1 (650) 253-0000`, `020 7031 3000`, `5511987654321`). For
//! them, this module follows the crate's own steps (`phonenumber::parse_with` and
//! `is_valid_with` over its whole database, version 0.3.10) one by one, quirks included, over
//! the same metadata, with the expressions matched by [`Pattern`] instead of being compiled: the
//! first number a Lambda reads costs well under a millisecond instead of several.
//!
//! The steps, as the crate takes them for such input:
//! 1. The RFC 3966 reader is tried first: without a space, `+` then digits up to the first
//!    separator (`-`, `.`, `(`, `)`) is the calling code (`+44-20-…`, also `+0044-20-…`) and the
//!    rest the national number; input without `+` and without a space is taken whole. Otherwise
//!    the natural reader takes from the first `+` or digit, trailing non-digits dropped (plain
//!    input has no extension: those need letters, `#`, `;` or `,`).
//! 2. Viability: two digits exactly, or at least three.
//! 3. The calling code: a `+` (and then the default region's international prefix, if it
//!    follows), or the default region's international prefix not followed by `0`, or the default
//!    region's code when the number starts with it and is not a possible national number.
//! 4. The national prefix, by the default region's rules when there is one (even for a number
//!    of another code, as the crate does), else by the number's region's, then the national
//!    prefix once more if it still leads; kept unless the result is too short.
//! 5. Validity: the number's region (the first of its code whose leading digits match, or, for
//!    one without leading digits, whose types take the number), then a type of that region that
//!    takes it. A descriptor "takes" a number whose length it allows and whose start its
//!    expression matches: the crate checks `find(…).start() == 0`, not a whole match.
//!
//! Anything else (letters, `tel:` URIs, extensions, non-ASCII digits, an expression the matcher
//! does not cover) gives `None` and the caller asks the crate. Tests compare this with the crate
//! for every example number of every region in many forms and for random numbers of every code.
use super::metadata::{calling_code, regions_of};
use super::pattern::Pattern;
use phonenumber::ParseError;
use phonenumber::country::Id as CountryId;
use phonenumber::metadata::loader::{Descriptor, Metadata};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// A number as the crate reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reading {
    pub code: u16,
    /// The national significant number, leading zeros included.
    pub national: String,
    /// `phonenumber::is_valid_with` over the whole database.
    pub valid: bool,
}

impl Reading {
    /// `+`, calling code, national significant number (leading zeros kept, as Italy's): E.164,
    /// written directly (the crate's formatter would load the code's format rules first).
    pub fn e164(&self) -> String {
        format!("+{}{}", self.code, self.national)
    }
}

/// The input, or a step, is outside what this module reproduces.
struct Uncovered;

/// The crate's shortest and longest national significant numbers.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

/// The crate's reading of plain input from `region` (an ISO code), or `None` when the input is
/// not plain (ask the crate).
pub(super) fn read(region: Option<&str>, input: &str) -> Option<Result<Reading, ParseError>> {
    read_plain(region, input).ok()
}

fn read_plain(region: Option<&str>, input: &str) -> Result<Result<Reading, ParseError>, Uncovered> {
    let body = input.strip_prefix('+').unwrap_or(input);
    if !body
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.' | b'(' | b')'))
    {
        return Err(Uncovered);
    }
    let default: Option<&'static Metadata> = match region {
        Some(id) => {
            let code = calling_code(id).ok_or(Uncovered)?;
            let regions = regions_of(code).ok_or(Uncovered)?;
            Some(
                regions
                    .iter()
                    .find(|m| m.id.as_deref() == Some(id))
                    .ok_or(Uncovered)?,
            )
        }
        None => None,
    };

    // 1. RFC 3966, else natural language.
    let (raw, prefix) = match rfc3966(input) {
        Some(read) => read,
        None => match natural(input) {
            Some(national) => (national, None),
            None => return Ok(Err(ParseError::NoNumber)),
        },
    };
    // 2.
    if !viable(raw) {
        return Ok(Err(ParseError::NoNumber));
    }

    // 3. The calling code.
    let idd = match default.and_then(|m| m.international_prefix.as_deref()) {
        Some(source) => Some(pattern(source)?),
        None => None,
    };
    // A `+`, or the default region's international prefix, gives the code; then comes the
    // number. Without either, the default region's code is the number's.
    let (mut national, international) = match prefix {
        Some(_) => (digits(raw), true),
        None => {
            let pluses = raw.len() - raw.trim_start_matches('+').len();
            let mut national = digits(&raw[pluses..]);
            let mut international = pluses > 0;
            if let Some(end) = idd
                .as_ref()
                .and_then(|idd| idd.match_start(&national))
                .map(|m| m.end)
                && !national[end..].starts_with('0')
            {
                international = true;
                national.drain(..end);
            }
            (national, international)
        }
    };
    let code = if international {
        if national.len() <= MIN_NSN {
            return Ok(Err(ParseError::TooShortNsn));
        }
        if let Some(prefix) = prefix {
            let code: u16 = match digits(prefix).parse() {
                Ok(code) => code,
                Err(e) => return Ok(Err(ParseError::MalformedInteger(e))),
            };
            if regions_of(code).is_none() {
                return Ok(Err(ParseError::InvalidCountryCode));
            }
            code
        } else {
            if national.starts_with('0') {
                return Ok(Err(ParseError::InvalidCountryCode));
            }
            let Some(code) = (1..=3).find_map(|len| {
                let code: u16 = national[..len].parse().ok()?;
                regions_of(code).map(|_| code)
            }) else {
                return Ok(Err(ParseError::InvalidCountryCode));
            };
            national.drain(..code.to_string().len());
            code
        }
    } else {
        let Some(meta) = default else {
            return Ok(Err(ParseError::InvalidCountryCode));
        };
        let code = meta.country_code.ok_or(Uncovered)?;
        // A national number that starts with the code, and is not a national number as it is,
        // carries the code (`16502530000` from the US).
        let written = code.to_string();
        if national.starts_with(&written)
            && (!is_match(general(meta)?, &national)?
                || !matches!(
                    length(meta, &national)?,
                    Length::Possible | Length::LocalOnly
                ))
        {
            national.drain(..written.len());
        }
        code
    };

    // 4. The national prefix.
    let regions = regions_of(code).ok_or(Uncovered)?;
    let meta = match default {
        Some(meta) => Some(meta),
        None => source_for(regions, national.trim_start_matches('0'))?,
    };
    if let Some(meta) = meta {
        let Some(mut potential) = national_number(meta, &national)? else {
            return Ok(Err(ParseError::NoNumber));
        };
        if let Some(prefix) = meta.national_prefix.as_deref()
            && potential.starts_with(prefix)
        {
            potential.drain(..prefix.len());
        }
        if length(meta, &potential)? != Length::TooShort {
            national = potential;
        }
    }
    if national.len() < MIN_NSN {
        return Ok(Err(ParseError::TooShortNsn));
    }
    if national.len() > MAX_NSN {
        return Ok(Err(ParseError::TooLong));
    }
    // The crate's `NationalNumber`: leading zeros counted apart, the rest a u64 under 2^56.
    let zeros = national.len() - national.trim_start_matches('0').len();
    let value: u64 = match national[zeros..].parse() {
        Ok(value) => value,
        // All zeros: the crate cannot read the rest as a number.
        Err(e) => return Ok(Err(ParseError::MalformedInteger(e))),
    };
    if value >= 1 << 56 {
        return Ok(Err(ParseError::TooLong));
    }

    // 5. Validity.
    let valid = match source_for(regions, &national)? {
        Some(meta) => has_type(meta, &national)?,
        None => false,
    };
    Ok(Ok(Reading {
        code,
        national,
        valid,
    }))
}

/// The crate's RFC 3966 reader on plain input: `(national, calling code)`.
fn rfc3966(input: &str) -> Option<(&str, Option<&str>)> {
    if input.contains(' ') || input.is_empty() {
        return None;
    }
    let Some(rest) = input.strip_prefix('+') else {
        return Some((input, None));
    };
    // The code runs to the first separator; both it and the rest must be non-empty.
    let end = rest.find(['-', '.', '(', ')'])?;
    (end > 0).then(|| (&rest[end..], Some(&rest[..end])))
}

/// The crate's natural-language reader on plain input: from the first `+` or digit, trailing
/// non-digits dropped.
fn natural(input: &str) -> Option<&str> {
    let start = input.find(|c: char| c == '+' || c.is_ascii_digit())?;
    let national = input[start..].trim_end_matches(|c: char| !c.is_ascii_digit());
    (!national.is_empty()).then_some(national)
}

/// The crate's `is_viable` on plain input.
fn viable(national: &str) -> bool {
    let digits = national.bytes().filter(u8::is_ascii_digit).count();
    national.len() >= MIN_NSN && (digits >= 3 || national.len() == 2 && digits == 2)
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

fn general(meta: &'static Metadata) -> Result<&'static Descriptor, Uncovered> {
    meta.general.as_ref().ok_or(Uncovered)
}

/// An expression of the metadata, parsed the first time a number needs it.
fn pattern(source: &'static str) -> Result<Arc<Pattern>, Uncovered> {
    // The metadata is kept for the life of the process: an expression's address names it.
    type Parsed = HashMap<(usize, usize), Option<Arc<Pattern>>>;
    static PARSED: LazyLock<Mutex<Parsed>> = LazyLock::new(Default::default);
    let mut parsed = PARSED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    parsed
        .entry((source.as_ptr() as usize, source.len()))
        .or_insert_with(|| Pattern::parse(source).map(Arc::new))
        .clone()
        .ok_or(Uncovered)
}

/// The crate's `Descriptor::is_match`: a length it allows, and its expression matches at the start.
fn is_match(descriptor: &'static Descriptor, national: &str) -> Result<bool, Uncovered> {
    if !descriptor.possible_length.is_empty()
        && !descriptor
            .possible_length
            .contains(&(national.len() as u16))
    {
        return Ok(false);
    }
    let source = descriptor.national_number.as_deref().ok_or(Uncovered)?;
    Ok(pattern(source)?.matches_start(national))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Length {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// The crate's `validator::length` for `Type::Unknown` (the general descriptor's lengths).
fn length(meta: &'static Metadata, national: &str) -> Result<Length, Uncovered> {
    let general = general(meta)?;
    let length = national.len() as u16;
    let possible = &general.possible_length;
    let (Some(&minimum), Some(&maximum)) = (possible.first(), possible.last()) else {
        return Ok(Length::Invalid);
    };
    Ok(if general.possible_local_length.contains(&length) {
        Length::LocalOnly
    } else if length == minimum {
        Length::Possible
    } else if length < minimum {
        Length::TooShort
    } else if length > maximum {
        Length::TooLong
    } else if possible.contains(&length) {
        Length::Possible
    } else {
        Length::Invalid
    })
}

/// The crate's `helper::national_number`: the national prefix (and carrier) stripped by the
/// region's rules (`None` where the crate would panic).
fn national_number(meta: &'static Metadata, national: &str) -> Result<Option<String>, Uncovered> {
    let Some(parsing) = meta.national_prefix_for_parsing.as_deref() else {
        if let Some(prefix) = meta.national_prefix.as_deref()
            && let Some(rest) = national.strip_prefix(prefix)
        {
            return Ok(Some(rest.to_owned()));
        }
        return Ok(Some(national.to_owned()));
    };
    let parsing = pattern(parsing)?;
    let Some(found) = parsing.match_start(national) else {
        return Ok(Some(national.to_owned()));
    };
    let viable = is_match(general(meta)?, national)?;
    // The crate's last group: the whole match when the expression has none.
    let last = match parsing.groups() {
        0 => Some((0, found.end)),
        n => found.groups[n - 1],
    };
    match meta.national_prefix_transform_rule.as_deref() {
        Some(rule) if last.is_some() => {
            let mut transformed = expand(rule, national, &found);
            transformed.push_str(&national[found.end..]);
            if viable && !is_match(general(meta)?, &transformed)? {
                return Ok(Some(national.to_owned()));
            }
            if found.groups.first().copied().flatten().is_none() {
                // The crate unwraps group 1 here and panics; no metadata reaches this today.
                return Ok(None);
            }
            Ok(Some(transformed))
        }
        // The crate checks the general descriptor against the number it has already matched
        // (viable), so the prefix always goes.
        _ => Ok(Some(national[found.end..].to_owned())),
    }
}

/// A replacement of the `regex` crate's syntax: `$n` / `${n}` (the longest run of name
/// characters after `$`), `$$`; a group that did not take part, or a name, gives nothing.
fn expand(rule: &str, input: &str, found: &super::pattern::Match) -> String {
    let group = |name: &str| -> &str {
        match name.parse::<usize>() {
            Ok(0) => &input[..found.end],
            Ok(n) => found
                .groups
                .get(n - 1)
                .copied()
                .flatten()
                .map_or("", |(start, end)| &input[start..end]),
            Err(_) => "",
        }
    };
    let mut out = String::new();
    let mut rest = rule;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(braced) = rest.strip_prefix('{')
            && let Some(close) = braced.find('}')
        {
            out.push_str(group(&braced[..close]));
            rest = &braced[close + 1..];
        } else {
            let name_end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if name_end == 0 {
                out.push('$');
            } else {
                out.push_str(group(&rest[..name_end]));
                rest = &rest[name_end..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The crate's `validator::source_for`: the region of a code a national number belongs to.
fn source_for(
    regions: &'static [Metadata],
    national: &str,
) -> Result<Option<&'static Metadata>, Uncovered> {
    if let [only] = regions {
        let id = only.id.as_deref().ok_or(Uncovered)?;
        return Ok((id == "001" || id.parse::<CountryId>().is_ok()).then_some(only));
    }
    for meta in regions.iter() {
        if let Some(leading) = meta.leading_digits.as_deref() {
            if pattern(leading)?.matches_start(national) {
                return Ok(Some(meta));
            }
        } else if has_type(meta, national)? {
            return Ok(Some(meta));
        }
    }
    Ok(None)
}

/// The crate's `number_type(…) != Type::Unknown`.
fn has_type(meta: &'static Metadata, national: &str) -> Result<bool, Uncovered> {
    if !is_match(general(meta)?, national)? {
        return Ok(false);
    }
    for descriptor in [
        &meta.premium_rate,
        &meta.toll_free,
        &meta.shared_cost,
        &meta.voip,
        &meta.personal_number,
        &meta.pager,
        &meta.uan,
        &meta.voicemail,
        &meta.fixed_line,
        &meta.mobile,
    ]
    .into_iter()
    .flatten()
    {
        if is_match(descriptor, national)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone::metadata::all_codes;
    use crate::phone::pattern::tests::random;
    use phonenumber::metadata::DATABASE;

    /// Default regions: main and non-main regions of shared codes (US/CA, GB/JE, RU/KZ), national
    /// prefixes of several kinds (`0`, `1`, `8`, a transform rule in AR, Italy's leading zero),
    /// international prefixes of several kinds.
    const DEFAULTS: [Option<&str>; 9] = [
        None,
        Some("US"),
        Some("CA"),
        Some("GB"),
        Some("JE"),
        Some("BR"),
        Some("AR"),
        Some("IT"),
        Some("KZ"),
    ];

    /// Ours against `phonenumber::parse_with` + `is_valid_with` over the crate's whole database.
    fn same_as_the_crate(region: Option<&str>, input: &str) {
        let id = region.map(|r| r.parse::<CountryId>().unwrap());
        let theirs = phonenumber::parse_with(&DATABASE, id, input).map(|n| Reading {
            code: n.code().value(),
            national: n.national().to_string(),
            valid: phonenumber::is_valid_with(&DATABASE, &n),
        });
        let ours = read(region, input)
            .unwrap_or_else(|| panic!("{input:?} from {region:?} is plain: {theirs:?}"));
        assert_eq!(
            format!("{ours:?}"),
            format!("{theirs:?}"),
            "{input:?} from {region:?}"
        );
    }

    /// Every example number of every region, in the plain forms people write them.
    #[test]
    fn example_numbers_are_read_as_the_crate_reads_them() {
        let mut checked = 0;
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            let examples = [d.fixed_line(), d.mobile(), d.toll_free(), d.premium_rate()]
                .into_iter()
                .flatten()
                .filter_map(|d| d.example());
            for national in examples {
                let code = meta.country_code();
                let prefix = meta.national_prefix().unwrap_or("");
                let dashed: String = national
                    .chars()
                    .enumerate()
                    .flat_map(|(i, c)| (i > 0 && i % 3 == 0).then_some('-').into_iter().chain([c]))
                    .collect();
                let forms = [
                    format!("+{code} {national}"),
                    format!("+{code}{national}"),
                    format!("+{code}-{national}"),
                    format!("+{code}.{dashed}"),
                    format!("+{code} ({prefix}) {national}"),
                    format!("+{code} {prefix}{national}"),
                    format!("{prefix}{national}"),
                    format!("{prefix} {dashed}"),
                    format!("({national}"),
                    format!("{national})"),
                    national.to_owned(),
                    format!("00{code}{national}"),
                    format!("011 {code} {national}"),
                    format!("8 10 {code} {national}"),
                    format!("+011{code}{national}"),
                    format!("+00{code}-{national}"),
                    format!("+0{code}-{national}"),
                    format!("{code}{national}"),
                    format!("{code} {national}"),
                    format!("+{code}"),
                    format!("+{code}-"),
                    national[..national.len().min(2)].to_owned(),
                    national[..national.len().min(3)].to_owned(),
                ];
                for input in &forms {
                    for region in DEFAULTS {
                        same_as_the_crate(region, input);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 150_000, "{checked}");
    }

    /// Random digits after every calling code, from no region, the code's main region and the US.
    #[test]
    fn random_numbers_are_read_as_the_crate_reads_them() {
        let mut next = random(0x2545_f491_4f6c_dd1d);
        let mut checked = 0;
        for code in all_codes() {
            let main = regions_of(code).unwrap()[0].id.clone().unwrap();
            let main = (main != "001").then_some(main);
            for _ in 0..20 {
                let len = 2 + next() % 14;
                let national: String = (0..len)
                    .map(|_| char::from(b'0' + (next() % 10) as u8))
                    .collect();
                for input in [
                    format!("+{code}{national}"),
                    format!("+{code} {national}"),
                    format!("{code}{national}"),
                    format!("0{national}"),
                    national.clone(),
                ] {
                    for region in [None, main.as_deref(), Some("US")] {
                        same_as_the_crate(region, &input);
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 50_000, "{checked}");
    }

    #[test]
    fn input_that_is_not_plain_is_left_to_the_crate() {
        for input in [
            "tel:+1-650-253-0000",
            "+1 650 253 0000 ext. 12",
            "1-800-FLOWERS",
            "(+1) 650 253 0000",
            "+1 650 253 0000 #",
            "\u{ff0b}16502530000",
            "+1/650/253/0000",
            "++16502530000",
        ] {
            assert!(read(Some("US"), input).is_none(), "{input}");
        }
    }

    #[test]
    fn replacement_rules_expand_as_the_regex_crate() {
        let pattern = Pattern::parse("0?(1)?(2)?").unwrap();
        let found = pattern.match_start("0134").unwrap();
        assert_eq!(expand("9$1", "0134", &found), "91");
        assert_eq!(expand("${1}5$2x$$", "0134", &found), "15$");
        assert_eq!(expand("$0|$", "0134", &found), "01|$");
        assert_eq!(expand("$x1", "0134", &found), "");
    }
}
