//! Phone-number normalisation for matching WhatsApp senders to CRM records.
//!
//! Three forms meet here:
//! - **E.164** (`+16505551234`): what we store and compare;
//! - the CRM's **digits-only** form (`16505551234`, international without `+`): [`PhoneNormalizer::digits`];
//! - WhatsApp's **`wa_id`** (international digits without `+`): [`PhoneNormalizer::from_wa_id`].
//!
//! Free-form CRM/user input goes through [`PhoneNormalizer::to_e164`] (libphonenumber metadata via the
//! `phonenumber` crate; plain input is read by `plain`, which gives the crate's answers without
//! compiling its regular expressions). Matching then uses [`PhoneNormalizer::canonical_key`], which folds the two
//! legacy numbering variants that still circulate for the same subscriber:
//!
//! **Brazil (+55), the ninth digit.** Brazilian numbers are `+55` + a two-digit area code (DDD) + the
//! subscriber number. Landlines have 8 digits starting with 2–5. Mobiles had 8 digits starting with
//! 6–9 until ANATEL prefixed every mobile with a `9` (DDD 11 in July 2012, rolled out state by state,
//! nationwide by November 2016): today a mobile is `+55 AA 9XXXX XXXX` (11 national digits). WhatsApp
//! accounts registered before the change frequently keep the old 8-digit form as their `wa_id`
//! (`55AAXXXXXXXX`, 12 digits — commonly outside DDDs 11–28, but Meta gives no rule), while the CRM
//! holds the 9-digit number; the opposite also happens. The canonical key is therefore always the
//! 9-digit form: a 10-digit national number whose DDD is a real Brazilian DDD and whose subscriber part
//! starts with 6, 7, 8 or 9 gets a `9` inserted after the DDD. Landlines (2–5) are left alone.
//! Valid DDDs (ANATEL / libphonenumber): 11–19, 21, 22, 24, 27, 28, 31–35, 37, 38, 41–49, 51, 53–55,
//! 61–69, 71, 73–75, 77, 79, 81–89, 91–99.
//! Note: to *send*, use the `wa_id` Meta gave us, never the key — a message to the other form may go to
//! a non-existent ("ghost") account.
//!
//! **Mexico (+52), the `1` after the country code.** Until 3 August 2019 a Mexican mobile dialled from
//! abroad needed a `1` between `+52` and the 10-digit national number (`+52 1 55 1234 5678`). The IFT
//! then unified the plan: every number is 10 digits, `+52 55 1234 5678`. Older WhatsApp accounts still
//! carry `wa_id`s like `5215512345678` (13 digits) and CRMs hold both forms. The canonical key drops the
//! `1`: `+521` + 10 digits → `+52` + 10 digits. (A current Mexican national number is exactly 10
//! digits, so an 11-digit national part starting with `1` can only be the legacy form.)
//!
//! Everything else is keyed by its E.164 form unchanged.
use phonenumber::country::Id as CountryId;

mod metadata;
mod pattern;
mod plain;

use plain::Reading;

/// Longest raw input we try to parse; anything longer is not a phone number.
const MAX_RAW_LEN: usize = 64;
/// E.164: at most 15 digits; shortest real numbers (e.g. some Pacific islands) are 7 with country code.
const WA_ID_MIN: usize = 7;
const WA_ID_MAX: usize = 15;

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum PhoneError {
    #[error("unknown default country {0:?}: expected an ISO 3166-1 alpha-2 code such as \"US\"")]
    UnknownCountry(String),
    #[error("phone number is empty")]
    Empty,
    #[error("phone number is too long ({0} characters, at most {MAX_RAW_LEN})")]
    TooLong(usize),
    #[error("phone number contains no digits")]
    NoDigits,
    #[error("phone number could not be parsed: {0}")]
    Unparseable(String),
    #[error("phone number is not a valid number for its country (+{country_code})")]
    InvalidNumber { country_code: u16 },
    #[error("wa_id must contain only the digits 0-9 (no '+', spaces or separators)")]
    WaIdNotDigits,
    #[error("wa_id has {0} digits; expected {WA_ID_MIN} to {WA_ID_MAX}")]
    WaIdLength(usize),
    #[error("wa_id cannot start with 0: it must begin with a country code")]
    WaIdLeadingZero,
}

/// Parses free-form numbers against a default country (used for national-format input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneNormalizer {
    default_country: CountryId,
    /// Its calling code (`US` → 1).
    calling_code: u16,
}

impl PhoneNormalizer {
    /// `default_country` is an ISO 3166-1 alpha-2 code (`"US"`, `"IN"`, `"BR"`; case-insensitive).
    pub fn new(default_country: &str) -> Result<Self, PhoneError> {
        let code = default_country.trim().to_ascii_uppercase();
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(PhoneError::UnknownCountry(default_country.to_owned()));
        }
        let id: CountryId = code
            .parse()
            .map_err(|_| PhoneError::UnknownCountry(default_country.to_owned()))?;
        // The metadata must know the region, otherwise national parsing is impossible. Nothing
        // is loaded here: a region's metadata is read with the first number that needs it.
        let calling_code = metadata::calling_code(id.as_ref())
            .ok_or_else(|| PhoneError::UnknownCountry(default_country.to_owned()))?;
        Ok(Self {
            default_country: id,
            calling_code,
        })
    }

    /// The default country as an ISO alpha-2 code.
    pub fn default_country(&self) -> &str {
        self.default_country.as_ref()
    }

    /// Any CRM/user input → E.164 (`+16505551234`).
    ///
    /// - `+` anywhere at the start (`+1 (650) 555-1234`): international.
    /// - `00` international prefix (`0044 20 7946 0958`): international, whatever the default country;
    ///   the default country's own prefix (e.g. `011` for the US) is also understood.
    /// - digits only, possibly with spaces, dashes or dots (`16505551234`, the CRM form): international
    ///   first if that is a valid number, else national in the default country.
    /// - anything else (`(650) 555-1234`, `020 7946 0958`): national in the default country.
    ///
    /// Extensions are dropped (E.164 has none). Legacy forms that are no longer valid numbers are
    /// returned in their current form: a Brazilian mobile without the ninth digit gets it
    /// (`+55 34 8832-7966` → `+5534988327966`), a Mexican `+52 1 …` loses the `1`.
    pub fn to_e164(&self, raw: &str) -> Result<String, PhoneError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(PhoneError::Empty);
        }
        if raw.chars().count() > MAX_RAW_LEN {
            return Err(PhoneError::TooLong(raw.chars().count()));
        }
        if !raw.chars().any(|c| c.is_ascii_digit()) {
            return Err(PhoneError::NoDigits);
        }

        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '\u{a0}' | '\t'))
            .collect();

        if compact.starts_with('+') || compact.starts_with('\u{ff0b}') {
            return self.parse_valid(None, raw);
        }
        let all_digits = compact.bytes().all(|b| b.is_ascii_digit());
        if all_digits {
            if let Some(rest) = compact.strip_prefix("00") {
                // International call prefix used by most of the world.
                return self.parse_valid(None, &format!("+{rest}")).or_else(|e| {
                    self.parse_valid(Some(self.default_country), raw)
                        .map_err(|_| e)
                });
            }
            if !compact.starts_with('0')
                && let Ok(e164) = self.parse_valid(None, &format!("+{compact}"))
            {
                return Ok(e164);
            }
        }
        self.parse_valid(Some(self.default_country), raw)
    }

    /// Parses and validates; formats as E.164.
    fn parse_valid(&self, country: Option<CountryId>, input: &str) -> Result<String, PhoneError> {
        let country = country.map(|id| (id, self.calling_code));
        let number = read(country, input).map_err(|e| {
            PhoneError::Unparseable(match e {
                phonenumber::ParseError::NoNumber => "no phone number found".to_owned(),
                phonenumber::ParseError::InvalidCountryCode => "unknown country code".to_owned(),
                phonenumber::ParseError::TooShortAfterIdd
                | phonenumber::ParseError::TooShortNsn => "too short".to_owned(),
                phonenumber::ParseError::TooLong => "too long".to_owned(),
                other => other.to_string(),
            })
        })?;
        if number.valid {
            return Ok(number.e164());
        }
        let country_code = number.code;
        // Legacy forms libphonenumber rejects but whose current form is valid: Brazilian mobile
        // without the ninth digit, Mexican mobile with the pre-2019 "1".
        if country_code == 55 || country_code == 52 {
            let upgraded = Self::canonical_key(&number.e164());
            if let Ok(n) = read(None, &upgraded)
                && n.valid
            {
                return Ok(n.e164());
            }
        }
        Err(PhoneError::InvalidNumber { country_code })
    }

    /// A WhatsApp `wa_id` (international digits, no `+`) → E.164. Only checks the shape: digits only,
    /// 7 to 15 long, no leading 0. It is deliberately not validated against numbering plans: Meta's
    /// ids include legacy forms (Brazil without the ninth digit) that libphonenumber calls invalid.
    pub fn from_wa_id(wa_id: &str) -> Result<String, PhoneError> {
        if wa_id.is_empty() {
            return Err(PhoneError::Empty);
        }
        if !wa_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::WaIdNotDigits);
        }
        if !(WA_ID_MIN..=WA_ID_MAX).contains(&wa_id.len()) {
            return Err(PhoneError::WaIdLength(wa_id.len()));
        }
        if wa_id.starts_with('0') {
            return Err(PhoneError::WaIdLeadingZero);
        }
        Ok(format!("+{wa_id}"))
    }

    /// Canonical matching key of an E.164 number (see the module docs for the rules):
    /// Brazil → 9-digit mobile form, Mexico `+521…` → `+52…`, anything else unchanged.
    /// A `+` is added if missing; input that is not `+digits` is returned unchanged.
    pub fn canonical_key(e164: &str) -> String {
        let digits = e164.strip_prefix('+').unwrap_or(e164);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return e164.to_owned();
        }
        if let Some(national) = digits.strip_prefix("55") {
            if let Some(ninth) = brazil_add_ninth_digit(national) {
                return format!("+55{ninth}");
            }
        } else if let Some(national) = digits.strip_prefix("52")
            && national.len() == 11
            && let Some(ten) = national.strip_prefix('1')
        {
            return format!("+52{ten}");
        }
        format!("+{digits}")
    }

    /// Every E.164 spelling under which the same subscriber may be stored (canonical first):
    /// for Brazil the 9-digit and 8-digit mobile forms, for Mexico `+52…` and `+521…`; otherwise just
    /// the number. Useful to look up records written before normalisation.
    pub fn variants(e164: &str) -> Vec<String> {
        let key = Self::canonical_key(e164);
        let mut out = vec![key.clone()];
        let digits = &key[1..];
        if let Some(national) = digits.strip_prefix("55") {
            if national.len() == 11
                && is_brazil_ddd(&national[..2])
                && national.as_bytes()[2] == b'9'
                && matches!(national.as_bytes()[3], b'6'..=b'9')
            {
                out.push(format!("+55{}{}", &national[..2], &national[3..]));
            }
        } else if let Some(national) = digits.strip_prefix("52")
            && national.len() == 10
        {
            out.push(format!("+521{national}"));
        }
        out
    }

    /// CRM digits-only form of an E.164 number (`+16505551234` → `16505551234`).
    pub fn digits(e164: &str) -> String {
        e164.chars().filter(|c| c.is_ascii_digit()).collect()
    }
}

/// The crate's reading of `input` (`phonenumber::parse_with` and `is_valid_with` over its whole
/// database): plain input is read without compiling an expression ([`plain`]), anything else by
/// the crate over the metadata the input needs ([`metadata`]).
fn read(
    country: Option<(CountryId, u16)>,
    input: &str,
) -> Result<Reading, phonenumber::ParseError> {
    if let Some(reading) = plain::read(country.as_ref().map(|(id, _)| id.as_ref()), input) {
        return reading;
    }
    let (number, lookup) = metadata::parse(country, input)?;
    Ok(Reading {
        code: number.code().value(),
        national: number.national().to_string(),
        valid: lookup.valid(&number),
    })
}

/// Brazilian DDDs in use (first digit 1–9, second 1–9, with gaps), as in libphonenumber's BR metadata.
fn is_brazil_ddd(ddd: &str) -> bool {
    let b = ddd.as_bytes();
    if b.len() != 2 {
        return false;
    }
    match (b[0], b[1]) {
        (b'1' | b'4' | b'6' | b'8' | b'9', b'1'..=b'9') => true,
        (b'2', d) => matches!(d, b'1' | b'2' | b'4' | b'7' | b'8'),
        (b'3', d) => matches!(d, b'1'..=b'5' | b'7' | b'8'),
        (b'5', d) => matches!(d, b'1' | b'3'..=b'5'),
        (b'7', d) => matches!(d, b'1' | b'3'..=b'5' | b'7' | b'9'),
        _ => false,
    }
}

/// `AA XXXXXXXX` (legacy 8-digit mobile, first digit 6–9) → `AA 9XXXXXXXX`; `None` if not that shape.
fn brazil_add_ninth_digit(national: &str) -> Option<String> {
    if national.len() != 10 || !is_brazil_ddd(&national[..2]) {
        return None;
    }
    if !matches!(national.as_bytes()[2], b'6'..=b'9') {
        return None;
    }
    Some(format!("{}9{}", &national[..2], &national[2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(country: &str) -> PhoneNormalizer {
        PhoneNormalizer::new(country).unwrap()
    }

    #[test]
    fn new_accepts_iso_codes_case_insensitively() {
        assert_eq!(n("us").default_country(), "US");
        assert_eq!(n(" BR ").default_country(), "BR");
        assert_eq!(n("IN").default_country(), "IN");
    }

    #[test]
    fn new_rejects_unknown_countries() {
        for bad in ["", "U", "USA", "ZZ", "1A", "xx", "🇺🇸"] {
            assert_eq!(
                PhoneNormalizer::new(bad),
                Err(PhoneError::UnknownCountry(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn us_formats() {
        let us = n("US");
        for raw in [
            "+1 (650) 555-1234",
            "+16505551234",
            "16505551234",
            "1 650 555 1234",
            "1-650-555-1234",
            "(650) 555-1234",
            "650-555-1234",
            "650.555.1234",
            "6505551234",
            "011 1 650 555 1234",
            "  +1 650 555 1234  ",
            "+1 650 555 1234 ext. 12",
            "tel:+1-650-555-1234",
        ] {
            assert_eq!(us.to_e164(raw).as_deref(), Ok("+16505551234"), "{raw:?}");
        }
    }

    #[test]
    fn uk_formats() {
        let gb = n("GB");
        let us = n("US");
        for raw in [
            "+44 20 7946 0958",
            "0044 20 7946 0958",
            "442079460958",
            "020 7946 0958",
        ] {
            assert_eq!(gb.to_e164(raw).as_deref(), Ok("+442079460958"), "{raw:?}");
        }
        // International forms do not depend on the default country.
        for raw in [
            "+44 20 7946 0958",
            "0044 20 7946 0958",
            "00442079460958",
            "442079460958",
        ] {
            assert_eq!(us.to_e164(raw).as_deref(), Ok("+442079460958"), "{raw:?}");
        }
        assert_eq!(gb.to_e164("07400 123456").as_deref(), Ok("+447400123456"));
    }

    #[test]
    fn india_formats() {
        let ind = n("IN");
        for raw in [
            "+91 98765 43210",
            "919876543210",
            "98765 43210",
            "9876543210",
            "098765 43210",
            "0091 9876543210",
        ] {
            assert_eq!(ind.to_e164(raw).as_deref(), Ok("+919876543210"), "{raw:?}");
        }
    }

    #[test]
    fn brazil_formats() {
        let br = n("BR");
        for raw in [
            "+55 11 98765-4321",
            "5511987654321",
            "(11) 98765-4321",
            "11 98765-4321",
            "011 98765 4321",
        ] {
            assert_eq!(br.to_e164(raw).as_deref(), Ok("+5511987654321"), "{raw:?}");
        }
        // Landline stays 8 digits.
        assert_eq!(br.to_e164("(11) 3456-7890").as_deref(), Ok("+551134567890"));
        // Legacy mobile without the ninth digit is upgraded (it is no longer dialable as is).
        assert_eq!(
            br.to_e164("+55 34 8832-7966").as_deref(),
            Ok("+5534988327966")
        );
        assert_eq!(br.to_e164("553488327966").as_deref(), Ok("+5534988327966"));
    }

    #[test]
    fn mexico_formats() {
        let mx = n("MX");
        assert_eq!(
            mx.to_e164("+52 55 1234 5678").as_deref(),
            Ok("+525512345678")
        );
        assert_eq!(mx.to_e164("55 1234 5678").as_deref(), Ok("+525512345678"));
        assert_eq!(mx.to_e164("525512345678").as_deref(), Ok("+525512345678"));
        // Legacy "+52 1" (pre-August-2019 mobile form) is returned in its current form.
        assert_eq!(
            mx.to_e164("+52 1 55 1234 5678").as_deref(),
            Ok("+525512345678")
        );
        assert_eq!(mx.to_e164("5215512345678").as_deref(), Ok("+525512345678"));
        assert_eq!(
            n("US").to_e164("+5215512345678").as_deref(),
            Ok("+525512345678")
        );
    }

    #[test]
    fn digits_only_prefers_international_when_valid() {
        // A CRM "digits-only" UK number read with a US default.
        assert_eq!(
            n("US").to_e164("447400123456").as_deref(),
            Ok("+447400123456")
        );
        // Not valid internationally (+65 0555…) → national US.
        assert_eq!(n("US").to_e164("6505551234").as_deref(), Ok("+16505551234"));
    }

    #[test]
    fn garbage_is_rejected() {
        let us = n("US");
        assert_eq!(us.to_e164(""), Err(PhoneError::Empty));
        assert_eq!(us.to_e164("   "), Err(PhoneError::Empty));
        assert_eq!(us.to_e164("hello"), Err(PhoneError::NoDigits));
        assert_eq!(us.to_e164("+"), Err(PhoneError::NoDigits));
        assert_eq!(us.to_e164("---"), Err(PhoneError::NoDigits));
        assert!(matches!(
            us.to_e164(&"1".repeat(65)),
            Err(PhoneError::TooLong(65))
        ));
        for bad in [
            "123",
            "12",
            "+1 555",
            "+999 1234567",
            "+1 123 456 7890",
            "0000000000",
            "+44 20 1234",
            "999999999999999999",
            "call me at noon 5",
        ] {
            let err = us.to_e164(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    PhoneError::Unparseable(_) | PhoneError::InvalidNumber { .. }
                ),
                "{bad:?} gave {err:?}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(PhoneError::Empty.to_string(), "phone number is empty");
        assert_eq!(
            PhoneError::WaIdLength(3).to_string(),
            "wa_id has 3 digits; expected 7 to 15"
        );
        assert_eq!(
            PhoneError::InvalidNumber { country_code: 1 }.to_string(),
            "phone number is not a valid number for its country (+1)"
        );
        assert!(
            PhoneNormalizer::new("ZZ")
                .unwrap_err()
                .to_string()
                .contains("\"ZZ\"")
        );
    }

    #[test]
    fn wa_id() {
        assert_eq!(
            PhoneNormalizer::from_wa_id("16505551234").as_deref(),
            Ok("+16505551234")
        );
        assert_eq!(
            PhoneNormalizer::from_wa_id("919876543210").as_deref(),
            Ok("+919876543210")
        );
        assert_eq!(
            PhoneNormalizer::from_wa_id("1234567").as_deref(),
            Ok("+1234567")
        );
        assert_eq!(
            PhoneNormalizer::from_wa_id("123456789012345").as_deref(),
            Ok("+123456789012345")
        );
        assert_eq!(PhoneNormalizer::from_wa_id(""), Err(PhoneError::Empty));
        assert_eq!(
            PhoneNormalizer::from_wa_id("123456"),
            Err(PhoneError::WaIdLength(6))
        );
        assert_eq!(
            PhoneNormalizer::from_wa_id("1234567890123456"),
            Err(PhoneError::WaIdLength(16))
        );
        for bad in [
            "+16505551234",
            "1 650 555 1234",
            "1650555123a",
            "１６５０５５５１２３４",
            " 16505551234",
        ] {
            assert_eq!(
                PhoneNormalizer::from_wa_id(bad),
                Err(PhoneError::WaIdNotDigits),
                "{bad:?}"
            );
        }
        assert_eq!(
            PhoneNormalizer::from_wa_id("0016505551234"),
            Err(PhoneError::WaIdLeadingZero)
        );
    }

    #[test]
    fn brazil_wa_id_with_and_without_ninth_digit_share_a_key() {
        let with9 = PhoneNormalizer::from_wa_id("5534988327966").unwrap();
        let without9 = PhoneNormalizer::from_wa_id("553488327966").unwrap();
        assert_eq!(without9, "+553488327966");
        assert_eq!(PhoneNormalizer::canonical_key(&with9), "+5534988327966");
        assert_eq!(PhoneNormalizer::canonical_key(&without9), "+5534988327966");
        // And the CRM's form of the same subscriber.
        let crm = n("BR").to_e164("(34) 98832-7966").unwrap();
        assert_eq!(PhoneNormalizer::canonical_key(&crm), "+5534988327966");
        // São Paulo, all legacy first digits 6-9.
        for first in ['6', '7', '8', '9'] {
            let legacy = format!("+5511{first}1234567");
            assert_eq!(
                PhoneNormalizer::canonical_key(&legacy),
                format!("+55119{first}1234567")
            );
        }
    }

    #[test]
    fn brazil_landlines_and_others_are_not_touched() {
        for keep in [
            "+551134567890",  // SP landline (starts with 3)
            "+552125551234",  // Rio landline (2)
            "+554133334444",  // Curitiba landline (3)
            "+555155556666",  // landline starting with 5
            "+5511987654321", // already 9-digit mobile
            "+552098765432",  // DDD 20 does not exist
            "+551098765432",  // DDD 10 does not exist
            "+5508001234567", // not a DDD number
            "+55119876543",   // too short
        ] {
            assert_eq!(PhoneNormalizer::canonical_key(keep), keep, "{keep}");
        }
    }

    #[test]
    fn mexico_wa_id_with_and_without_1_share_a_key() {
        let old = PhoneNormalizer::from_wa_id("5215512345678").unwrap();
        let new = PhoneNormalizer::from_wa_id("525512345678").unwrap();
        assert_eq!(PhoneNormalizer::canonical_key(&old), "+525512345678");
        assert_eq!(PhoneNormalizer::canonical_key(&new), "+525512345678");
        // A 3-digit area code (Puebla 222).
        assert_eq!(
            PhoneNormalizer::canonical_key("+5212221234567"),
            "+522221234567"
        );
        // Too short / too long after "521": not the legacy shape.
        assert_eq!(
            PhoneNormalizer::canonical_key("+52155123456"),
            "+52155123456"
        );
        assert_eq!(
            PhoneNormalizer::canonical_key("+52155123456789"),
            "+52155123456789"
        );
    }

    #[test]
    fn canonical_key_leaves_other_countries_and_odd_input_alone() {
        for keep in [
            "+16505551234",
            "+919876543210",
            "+442079460958",
            "+5511987654321",
        ] {
            assert_eq!(PhoneNormalizer::canonical_key(keep), keep);
        }
        // "+1 55…" is not Brazil, "+5 2…" does not exist but must not be rewritten as Mexico.
        assert_eq!(
            PhoneNormalizer::canonical_key("+15534988327"),
            "+15534988327"
        );
        assert_eq!(
            PhoneNormalizer::canonical_key("16505551234"),
            "+16505551234"
        );
        assert_eq!(PhoneNormalizer::canonical_key(""), "");
        assert_eq!(PhoneNormalizer::canonical_key("+"), "+");
        assert_eq!(
            PhoneNormalizer::canonical_key("not a number"),
            "not a number"
        );
        // Idempotent.
        for k in ["+553488327966", "+5215512345678", "+16505551234"] {
            let once = PhoneNormalizer::canonical_key(k);
            assert_eq!(PhoneNormalizer::canonical_key(&once), once);
        }
    }

    #[test]
    fn variants_cover_legacy_forms() {
        assert_eq!(
            PhoneNormalizer::variants("+553488327966"),
            vec!["+5534988327966", "+553488327966"]
        );
        assert_eq!(
            PhoneNormalizer::variants("+5534988327966"),
            vec!["+5534988327966", "+553488327966"]
        );
        assert_eq!(
            PhoneNormalizer::variants("+5215512345678"),
            vec!["+525512345678", "+5215512345678"]
        );
        assert_eq!(
            PhoneNormalizer::variants("+551134567890"),
            vec!["+551134567890"]
        );
        assert_eq!(
            PhoneNormalizer::variants("+16505551234"),
            vec!["+16505551234"]
        );
    }

    #[test]
    fn digits_form() {
        assert_eq!(PhoneNormalizer::digits("+16505551234"), "16505551234");
        assert_eq!(PhoneNormalizer::digits("16505551234"), "16505551234");
        assert_eq!(PhoneNormalizer::digits(""), "");
        // Round trip with the CRM form.
        let us = n("US");
        let e164 = us.to_e164("+1 (650) 555-1234").unwrap();
        assert_eq!(us.to_e164(&PhoneNormalizer::digits(&e164)).unwrap(), e164);
    }
}
