//! libphonenumber's metadata, loaded one calling code at a time.
//!
//! Plain input is read by [`super::plain`] over the decoded metadata ([`regions_of`]) without
//! compiling anything; what follows is the path of other input (`tel:` URIs, extensions,
//! letters, non-ASCII digits), which the crate's parser reads.
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
//!
//! A code may have many regions (+1 has the 25 of the North American plan, +44 four), and each
//! region's expressions are syntax-checked when its database is built (≈ 5 ms for all of +1).
//! Most numbers belong to the code's main region, so that one is asked first: with a default
//! region, the parser only reads the default region's metadata and whether the number's code
//! exists (the main regions and the default region are enough); the validity of a number is
//! settled by its main region alone when that region takes it (see [`Lookup::valid`]); without
//! a default region, the main region's reading is kept only when it provably is the crate's
//! ([`parse`]). The other regions of a code are built the first time a number needs them.
use phonenumber::country::Id as CountryId;
use phonenumber::metadata::{DATABASE, Database, loader};
use phonenumber::{ParseError, PhoneNumber};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

static BLOB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/phone_metadata.bin"));
include!(concat!(env!("OUT_DIR"), "/phone_index.rs"));

/// Databases built so far, by their sorted set of calling codes and the regions kept of each.
static LOADED: LazyLock<Mutex<HashMap<DatabaseKey, Arc<Database>>>> =
    LazyLock::new(Default::default);

/// The sorted calling codes of a database, and which of their regions it holds.
type DatabaseKey = (Vec<u16>, Regions);

/// Which regions of each calling code a database holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Regions {
    /// All of them, in the crate's order: the crate's own answers for any number of the codes.
    All,
    /// The code's main region (first in the crate's order), and this region if it has the code.
    Main(Option<String>),
}

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

/// Every calling code the metadata knows, ascending.
#[cfg(test)]
pub(super) fn all_codes() -> impl Iterator<Item = u16> {
    CODES.iter().map(|(code, _, _)| *code)
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
    load(codes, Regions::All)
}

/// The crate's metadata of one calling code, in its order (main region first).
fn entries(code: u16) -> Vec<loader::Metadata> {
    let bytes = chunk(code).expect("only known codes are loaded");
    postcard::from_bytes::<Vec<loader::Metadata>>(bytes)
        .expect("build.rs wrote this chunk from the crate's own database")
}

/// The crate's metadata of one calling code, in its order (main region first), decoded once per
/// process and kept for its life (`None`: an unknown code).
pub(super) fn regions_of(code: u16) -> Option<&'static [loader::Metadata]> {
    static DECODED: LazyLock<Mutex<HashMap<u16, &'static [loader::Metadata]>>> =
        LazyLock::new(Default::default);
    chunk(code)?;
    let mut decoded = DECODED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(
        decoded
            .entry(code)
            .or_insert_with(|| Vec::leak(entries(code))),
    )
}

/// What [`load`] needs to know of a code before building anything.
struct CodeInfo {
    /// Its main region (first in the crate's order).
    main: Option<String>,
    regions: usize,
    /// The main region has no leading-digits pattern (see [`main_region_decides`]).
    main_without_leading_digits: bool,
}

/// A code's [`CodeInfo`], read once per process (`None`: an unknown code).
fn code_info(code: u16) -> Option<Arc<CodeInfo>> {
    static INFO: LazyLock<Mutex<HashMap<u16, Arc<CodeInfo>>>> = LazyLock::new(Default::default);
    chunk(code)?;
    let mut info = INFO.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Some(
        info.entry(code)
            .or_insert_with(|| {
                let all = regions_of(code).expect("a known code");
                Arc::new(CodeInfo {
                    main: all.first().and_then(|m| m.id.clone()),
                    regions: all.len(),
                    main_without_leading_digits: all
                        .first()
                        .is_some_and(|m| m.leading_digits.is_none()),
                })
            })
            .clone(),
    )
}

fn load(codes: &[u16], regions: Regions) -> Arc<Database> {
    let mut codes: Vec<u16> = codes
        .iter()
        .copied()
        .filter(|c| chunk(*c).is_some())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    // The same regions under one key: codes of one region (most of them) are whole either way,
    // and a default region that is its code's main region (or not of these codes) adds nothing.
    let regions = match regions {
        Regions::All => Regions::All,
        Regions::Main(also) => {
            let infos: Vec<Arc<CodeInfo>> = codes.iter().filter_map(|c| code_info(*c)).collect();
            let also = also.filter(|r| {
                calling_code(r).is_some_and(|c| codes.contains(&c))
                    && !infos.iter().any(|i| i.main.as_deref() == Some(r))
            });
            if infos.iter().all(|i| i.regions == 1) {
                Regions::All
            } else {
                Regions::Main(also)
            }
        }
    };
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    loaded
        .entry((codes, regions))
        .or_insert_with_key(|(codes, regions)| {
            let mut selected: Vec<loader::Metadata> = Vec::new();
            for code in codes {
                selected.extend(entries(*code).into_iter().enumerate().filter_map(|(i, m)| {
                    let keep = match regions {
                        Regions::All => true,
                        Regions::Main(also) => i == 0 || m.id.is_some() && m.id == *also,
                    };
                    keep.then_some(m)
                }));
            }
            Arc::new(
                Database::from(selected)
                    .expect("the crate's own metadata, already checked when build.rs read it"),
            )
        })
        .clone()
}

/// Whether the main region alone decides that a number of its code is valid: the crate looks
/// for a number's region in the crate's order, main region first, and settles on the main
/// region when it has no leading-digits pattern and the number is one of its types; the number
/// is then valid for the whole code exactly when it is for the main region alone.
fn main_region_decides(code: u16) -> bool {
    code_info(code).is_some_and(|i| i.main_without_leading_digits)
}

/// Where a parse found its metadata; [`Lookup::valid`] must ask the same one.
pub(super) enum Lookup {
    /// The crate's whole database.
    Whole,
    /// The metadata of the number's calling code; `all`: the database the parse used, if it
    /// held all the regions of its codes.
    Code { all: Option<Arc<Database>> },
}

impl Lookup {
    /// libphonenumber's `isValidNumber`. Without a database of all the code's regions at hand,
    /// the number's main region is asked first (a code of many regions, +1's 25, is built whole
    /// only for a number its main region does not take).
    pub(super) fn valid(&self, number: &PhoneNumber) -> bool {
        let db = match self {
            Lookup::Whole => return phonenumber::is_valid_with(&DATABASE, number),
            Lookup::Code { all: Some(db) } => return phonenumber::is_valid_with(db, number),
            Lookup::Code { all: None } => {
                let code = number.code().value();
                if main_region_decides(code)
                    && phonenumber::is_valid_with(&load(&[code], Regions::Main(None)), number)
                {
                    return true;
                }
                database(&[code])
            }
        };
        phonenumber::is_valid_with(&db, number)
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
    let plus_first = input
        .find('+')
        .is_some_and(|p| first_digit.is_none_or(|d| p < d));
    let plus = plus_first.then(|| leading_code(&digits)).flatten();
    codes.extend(plus);
    if plus_first && digits.starts_with('0') {
        // `+0044-20-…`: the crate reads the digits before the first separator (RFC 3966 style)
        // as the code, leading zeros dropped.
        codes.extend(leading_code(digits.trim_start_matches('0')));
    }
    let Some((region, code)) = country else {
        return parse_without_region(plus, &codes, &digits, input);
    };
    codes.push(code);
    // With a default region the parser reads the default region's metadata and only asks
    // whether the number's code exists: the main regions of the codes and the default region
    // give the crate's answer.
    let lean = |codes: &[u16]| load(codes, Regions::Main(Some(region.as_ref().to_owned())));
    let db = lean(&codes);
    if let Some(idd) = db
        .by_id(region.as_ref())
        .and_then(|m| m.international_prefix())
        && let Some(found) = idd.find(&digits)
        && found.start() == 0
        && let Some(code) = leading_code(&digits[found.end()..])
        && !codes.contains(&code)
    {
        // Dialled through the default region's international prefix (`011 44 …` from the US).
        codes.push(code);
        return parse_in(lean(&codes), None, country, input);
    }
    parse_in(db, None, country, input)
}

/// Without a default region the parser picks the metadata of the number's region, which may
/// be any region of its code: the main region alone is asked first, and its answer kept when it
/// is provably the crate's (plain `+` input it read without a national prefix, valid for the
/// main region, which [`main_region_decides`]); otherwise all the regions of the code.
fn parse_without_region(
    plus: Option<u16>,
    codes: &[u16],
    digits: &str,
    input: &str,
) -> Result<(PhoneNumber, Lookup), ParseError> {
    if let Some(code) = plus
        && plain(input)
        && main_region_decides(code)
    {
        let national = &digits[code.to_string().len()..];
        let main = load(&[code], Regions::Main(None));
        if !national.starts_with('0')
            && let Ok(n) = phonenumber::parse_with(&main, None, input)
            && n.code().value() == code
            && n.national().to_string() == national
            && phonenumber::is_valid_with(&main, &n)
        {
            return Ok((n, Lookup::Code { all: None }));
        }
    }
    let db = database(codes);
    parse_in(db.clone(), Some(db), None, input)
}

fn parse_in(
    db: Arc<Database>,
    all: Option<Arc<Database>>,
    country: Option<(CountryId, u16)>,
    input: &str,
) -> Result<(PhoneNumber, Lookup), ParseError> {
    let region = country.map(|(id, _)| id);
    match phonenumber::parse_with(&db, region, input) {
        Err(ParseError::InvalidCountryCode) if !plain(input) => {
            phonenumber::parse_with(&DATABASE, region, input).map(|n| (n, Lookup::Whole))
        }
        result => result.map(|n| (n, Lookup::Code { all })),
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
        // CA and JE: default regions that are not their code's main region.
        for default in ["US", "BR", "NZ", "CA", "JE"] {
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
                        // The code after zeros, read by the crate's RFC 3966 parser.
                        format!("+00{code}-{national}"),
                        format!("+0{code}-{national}"),
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
    fn a_main_region_number_is_read_without_the_other_regions_of_its_code() {
        let us = || Some(("US".parse().unwrap(), 1));
        // The main region (US) takes these: +1's other 24 regions are not built for them.
        for (country, input) in [(us(), "(650) 253-0000"), (None, "+1 650 253 0000")] {
            let (n, lookup) = parse(country, input).unwrap();
            assert!(matches!(lookup, Lookup::Code { all: None }), "{input}");
            assert!(lookup.valid(&n), "{input}");
        }
        // A Canadian number is not the main region's: all of +1 answers.
        let (n, lookup) = parse(None, "+1 416 555 0123").unwrap();
        assert!(matches!(lookup, Lookup::Code { all: Some(_) }));
        assert!(lookup.valid(&n));
        // A national prefix read (`+44 (0)…`): all of +44 answers, as the parser may have
        // stripped it with another region's rules.
        let (_, lookup) = parse(None, "+44 (0) 20 7031 3000").unwrap();
        assert!(matches!(lookup, Lookup::Code { all: Some(_) }));
        assert!(main_region_decides(1) && main_region_decides(44));
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
