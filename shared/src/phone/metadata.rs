//! libphonenumber's metadata, loaded one calling code at a time.
//!
//! `phonenumber::metadata::DATABASE` builds every region of the world (and syntax-checks each of
//! its ~10,000 regular expressions) the first time anything touches it: tens of milliseconds on
//! the cold path of every function that reads a phone number. The build script (`build.rs`) splits
//! the same metadata by calling code; here a [`Database`] is built for just the codes a parse
//! needs, once per set of codes, and kept for the life of the process. Those databases hold only
//! what parsing and validation read, over ASCII digits (see `build.rs`): never format with them.
//!
//! Why a partial database gives the crate's own answers: its parser looks metadata up by the
//! default region (always included) and by the calling code it reads from the number; calling
//! codes are prefix-free, so a number whose code is in the database parses exactly as with the
//! whole database, and one whose code is missing fails with `InvalidCountryCode`, never with
//! another number. [`parse`] puts the code the input starts with into the set (after `+`, and
//! after the default region's international prefix, as the parser strips them), and retries with
//! the whole database only for inputs the parser may read otherwise (RFC 3966 `tel:` URIs with a
//! `phone-context`, letters). Input with any non-ASCII character (full-width or Arabic-Indic
//! digits…) goes to the whole database directly.
use phonenumber::country::Id as CountryId;
use phonenumber::metadata::{DATABASE, Database, loader};
use phonenumber::{ParseError, PhoneNumber};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/phone_metadata.bin"));
include!(concat!(env!("OUT_DIR"), "/phone_index.rs"));

/// Databases built so far, by their sorted set of calling codes.
static LOADED: LazyLock<Mutex<HashMap<Vec<u16>, Arc<Database>>>> = LazyLock::new(Default::default);

/// The calling code of an ISO 3166-1 region (`"US"` → 1), if libphonenumber knows the region.
pub(super) fn calling_code(region: &str) -> Option<u16> {
    REGIONS
        .binary_search_by(|(id, _)| (*id).cmp(region))
        .ok()
        .map(|i| REGIONS[i].1)
}

fn chunk(code: u16) -> Option<&'static [u8]> {
    CODES
        .binary_search_by_key(&code, |(c, _, _)| *c)
        .ok()
        .map(|i| &BLOB[CODES[i].1 as usize..CODES[i].2 as usize])
}

/// The calling code a string of digits starts with (codes are 1 to 3 digits and prefix-free).
pub(super) fn leading_code(digits: &str) -> Option<u16> {
    if digits.starts_with('0') {
        return None;
    }
    (1..=3.min(digits.len())).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        chunk(code).map(|_| code)
    })
}

/// The database of these calling codes (unknown codes are ignored), built on first use.
pub(super) fn database(codes: &[u16]) -> Arc<Database> {
    let mut key: Vec<u16> = codes
        .iter()
        .copied()
        .filter(|c| chunk(*c).is_some())
        .collect();
    key.sort_unstable();
    key.dedup();
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loaded
        .entry(key)
        .or_insert_with_key(|key| {
            let mut entries: Vec<loader::Metadata> = Vec::new();
            for code in key {
                let bytes = chunk(*code).expect("filtered above");
                entries.extend(
                    postcard::from_bytes::<Vec<loader::Metadata>>(bytes)
                        .expect("build.rs wrote this chunk from the crate's own database"),
                );
            }
            Arc::new(
                Database::from(entries)
                    .expect("the crate's own metadata, already checked when build.rs read it"),
            )
        })
        .clone()
}

/// Where a parse found its metadata; [`Lookup::valid`] must ask the same one.
pub(super) enum Lookup {
    Partial(Arc<Database>),
    Whole,
}

impl Lookup {
    fn get(&self) -> &Database {
        match self {
            Lookup::Partial(db) => db,
            Lookup::Whole => &DATABASE,
        }
    }

    /// libphonenumber's `isValidNumber`.
    pub(super) fn valid(&self, number: &PhoneNumber) -> bool {
        phonenumber::is_valid_with(self.get(), number)
    }
}

/// `phonenumber::parse` over only the metadata this input needs.
pub(super) fn parse(
    country: Option<(CountryId, u16)>,
    input: &str,
) -> Result<(PhoneNumber, Lookup), ParseError> {
    let region = country.map(|(id, _)| id);
    if !input.is_ascii() {
        return phonenumber::parse_with(&DATABASE, region, input).map(|n| (n, Lookup::Whole));
    }
    let mut codes: Vec<u16> = Vec::with_capacity(3);
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    // A `+` before the first digit (`+55 …`, `(+55) …`): the code follows it.
    let first_digit = input.find(|c: char| c.is_ascii_digit());
    let plus = input
        .find('+')
        .filter(|p| first_digit.is_none_or(|d| *p < d))
        .and_then(|_| leading_code(&digits));
    codes.extend(plus);
    if let Some((_, code)) = country {
        codes.push(code);
    }
    let db = database(&codes);
    if let Some((region, _)) = country
        && let Some(idd) = db
            .by_id(region.as_ref())
            .and_then(|m| m.international_prefix())
        && let Some(found) = idd.find(&digits)
        && found.start() == 0
        && let Some(code) = leading_code(&digits[found.end()..])
        && !codes.contains(&code)
    {
        // Dialled through the default region's international prefix (`011 44 …` from the US).
        codes.push(code);
        return parse_in(database(&codes), country, input);
    }
    parse_in(db, country, input)
}

fn parse_in(
    db: Arc<Database>,
    country: Option<(CountryId, u16)>,
    input: &str,
) -> Result<(PhoneNumber, Lookup), ParseError> {
    let region = country.map(|(id, _)| id);
    match phonenumber::parse_with(&db, region, input) {
        Err(ParseError::InvalidCountryCode) if !plain(input) => {
            phonenumber::parse_with(&DATABASE, region, input).map(|n| (n, Lookup::Whole))
        }
        result => result.map(|n| (n, Lookup::Partial(db))),
    }
}

/// Digits, a leading `+` and the usual separators: input whose calling code [`parse`] reads as the
/// crate's parser does. Anything else may carry the code elsewhere (`tel:…;phone-context=+64`).
fn plain(input: &str) -> bool {
    input.chars().all(|c| {
        c.is_ascii_digit() || matches!(c, '+' | '(' | ')' | '-' | '.' | '/') || c.is_whitespace()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_and_region_of_the_crate_is_indexed() {
        let codes: Vec<u16> = (1..1000)
            .filter(|c| DATABASE.by_code(c).is_some())
            .collect();
        assert!(
            codes.contains(&882) && codes.contains(&800),
            "non-geographic codes too"
        );
        assert_eq!(codes, CODES.iter().map(|c| c.0).collect::<Vec<_>>());
        for meta in DATABASE.iter().filter(|m| m.id() != "001") {
            assert_eq!(
                calling_code(meta.id()),
                Some(meta.country_code()),
                "{}",
                meta.id()
            );
        }
        assert!(REGIONS.is_sorted_by_key(|r| r.0));
    }

    #[test]
    fn each_chunk_rebuilds_the_crates_regions_in_its_order() {
        for (code, _, _) in CODES {
            let db = database(&[*code]);
            let ours: Vec<&str> = db.region(code).unwrap();
            let theirs: Vec<&str> = DATABASE.region(code).unwrap();
            assert_eq!(ours, theirs, "+{code}");
            for (a, b) in db
                .by_code(code)
                .unwrap()
                .iter()
                .zip(DATABASE.by_code(code).unwrap())
            {
                let ascii = |s: &str| s.replace(r"\d", "[0-9]");
                assert_eq!(a.id(), b.id());
                assert_eq!(a.is_main_country_for_code(), b.is_main_country_for_code());
                let (da, db) = (a.descriptors(), b.descriptors());
                for (x, y) in [
                    (Some(da.general()), Some(db.general())),
                    (da.mobile(), db.mobile()),
                    (da.fixed_line(), db.fixed_line()),
                ] {
                    assert_eq!(
                        x.map(|d| ascii(d.national_number().as_str())),
                        y.map(|d| ascii(d.national_number().as_str()))
                    );
                    assert_eq!(
                        x.map(|d| d.possible_length()),
                        y.map(|d| d.possible_length())
                    );
                }
                assert_eq!(
                    a.national_prefix_for_parsing().map(|r| ascii(r.as_str())),
                    b.national_prefix_for_parsing().map(|r| ascii(r.as_str()))
                );
                assert_eq!(
                    a.national_prefix_transform_rule(),
                    b.national_prefix_transform_rule()
                );
                assert_eq!(
                    a.international_prefix().map(|r| ascii(r.as_str())),
                    b.international_prefix().map(|r| ascii(r.as_str()))
                );
                assert!(a.formats().is_empty(), "parsing metadata only");
            }
        }
    }

    /// The whole point: the same answers as the crate's own whole database, for every example
    /// number of every region in the forms people type them, from several default regions.
    #[test]
    fn partial_databases_answer_as_the_whole_one() {
        use phonenumber::metadata::Descriptor;
        let mut checked = 0;
        for default in ["US", "BR", "NZ"] {
            let id: CountryId = default.parse().unwrap();
            let country = Some((id, calling_code(default).unwrap()));
            for meta in DATABASE.iter() {
                let d = meta.descriptors();
                let examples = [d.fixed_line(), d.mobile(), d.toll_free()]
                    .into_iter()
                    .flatten()
                    .filter_map(Descriptor::example);
                for national in examples {
                    let code = meta.country_code();
                    let prefix = meta.national_prefix().unwrap_or("");
                    let forms = [
                        format!("+{code} {national}"),
                        format!("(+{code}) {national}"),
                        format!("+{code}{national}"),
                        format!("{prefix}{national}"),
                        format!("({national}"),
                        format!("00{code}{national}"),
                        format!("011 {code} {national}"),
                        format!("+011{code}{national}"),
                        format!("{code}{national}"),
                        format!("tel:{national};phone-context=+{code}"),
                        format!("+{code} {national} ext. 12"),
                        // Full-width digits and plus (the crate reads them; they take the whole database).
                        format!("\u{ff0b}{code}{national}")
                            .chars()
                            .map(|c| {
                                c.to_digit(10)
                                    .map_or(c, |d| char::from_u32(0xff10 + d).unwrap())
                            })
                            .collect(),
                    ];
                    for input in &forms {
                        for country in [country, None] {
                            let ours = parse(country, input).map(|(n, lookup)| {
                                let valid = lookup.valid(&n);
                                (n, valid)
                            });
                            let theirs =
                                phonenumber::parse_with(&DATABASE, country.map(|c| c.0), input)
                                    .map(|n| {
                                        let valid = phonenumber::is_valid_with(&DATABASE, &n);
                                        (n, valid)
                                    });
                            assert_eq!(
                                format!("{ours:?}"),
                                format!("{theirs:?}"),
                                "{input:?} from {default}"
                            );
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn leading_codes_are_read_as_the_parser_reads_them() {
        assert_eq!(leading_code("16505551234"), Some(1));
        assert_eq!(leading_code("5511912345678"), Some(55));
        assert_eq!(leading_code("351912345678"), Some(351));
        assert_eq!(leading_code("971501234567"), Some(971));
        assert_eq!(leading_code("80012345678"), Some(800));
        assert_eq!(leading_code("0123"), None);
        assert_eq!(leading_code("999"), None);
        assert_eq!(leading_code(""), None);
        assert_eq!(calling_code("BR"), Some(55));
        assert_eq!(calling_code("XX"), None);
        assert_eq!(calling_code("001"), None);
    }
}
