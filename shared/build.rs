//! Splits libphonenumber's metadata (as the `phonenumber` crate embeds it) by calling code, so that
//! a function loads and checks only the codes of the numbers it meets (see `src/phone/metadata.rs`).
//!
//! The crate's own database (`phonenumber::metadata::DATABASE`) deserialises every region and
//! syntax-checks every one of its regular expressions the first time it is touched: ~70 ms on a
//! fast core, far more on a Lambda's fraction of one, on the first message after every cold start.
//! Here, at build time, that database is read once and written back per calling code in the
//! crate's own loader format (`phonenumber::metadata::loader::Metadata`, postcard-encoded), in the
//! order the crate keeps (main region of a code first), with two index tables:
//! - `CODES`: `(calling code, start, end)` of each code's chunk in `phone_metadata.bin`, sorted;
//! - `REGIONS`: `(ISO region, calling code)`, sorted by region.
//!
//! Only what parsing and validation read is kept (the crate's parser and `is_valid` never look at
//! formats, examples, or the emergency / short-code / standard-rate / carrier / no-international
//! descriptors), and `\d` is written `[0-9]`: these expressions only ever see numbers whose digits
//! the parser has already made ASCII (`src/phone/metadata.rs` sends anything else to the crate's
//! whole database), and a Unicode `\d` makes each one several times slower to compile.
use phonenumber::metadata::{DATABASE, Descriptor, Metadata, loader};
use std::fmt::Write as _;
use std::path::PathBuf;

/// An expression over ASCII digits.
fn ascii(pattern: &str) -> String {
    pattern.replace(r"\d", "[0-9]")
}

fn descriptor(d: &Descriptor) -> loader::Descriptor {
    loader::Descriptor {
        national_number: Some(ascii(d.national_number().as_str())),
        possible_length: d.possible_length().to_vec(),
        possible_local_length: d.possible_local_length().to_vec(),
        example: None,
    }
}

fn metadata(m: &Metadata) -> loader::Metadata {
    let d = m.descriptors();
    loader::Metadata {
        general: Some(descriptor(d.general())),
        fixed_line: d.fixed_line().map(descriptor),
        mobile: d.mobile().map(descriptor),
        toll_free: d.toll_free().map(descriptor),
        premium_rate: d.premium_rate().map(descriptor),
        shared_cost: d.shared_cost().map(descriptor),
        personal_number: d.personal_number().map(descriptor),
        voip: d.voip().map(descriptor),
        pager: d.pager().map(descriptor),
        uan: d.uan().map(descriptor),
        voicemail: d.voicemail().map(descriptor),
        emergency: None,
        short_code: None,
        standard_rate: None,
        carrier: None,
        no_international: None,
        id: Some(m.id().to_owned()),
        country_code: Some(m.country_code()),
        international_prefix: m.international_prefix().map(|r| ascii(r.as_str())),
        preferred_international_prefix: m.preferred_international_prefix().map(str::to_owned),
        national_prefix: m.national_prefix().map(str::to_owned),
        preferred_extension_prefix: m.preferred_extension_prefix().map(str::to_owned),
        national_prefix_for_parsing: m.national_prefix_for_parsing().map(|r| ascii(r.as_str())),
        national_prefix_transform_rule: m.national_prefix_transform_rule().map(str::to_owned),
        formats: Vec::new(),
        international_formats: Vec::new(),
        main_country_for_code: m.is_main_country_for_code(),
        leading_digits: m.leading_digits().map(|r| ascii(r.as_str())),
        mobile_number_portable: m.is_mobile_number_portable(),
        defaults: Default::default(),
    }
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    // Every calling code (`iter` sees one non-geographic entity only: they share the id "001").
    let codes: Vec<u16> = (1..1000)
        .filter(|c| DATABASE.by_code(c).is_some())
        .collect();
    let mut regions: Vec<(String, u16)> = DATABASE
        .iter()
        .filter(|m| m.id() != "001") // non-geographic entities (+800, +882…): no region to default to
        .map(|m| (m.id().to_owned(), m.country_code()))
        .collect();
    regions.sort();

    let mut blob = Vec::new();
    let mut index = String::from(
        "/// `(calling code, start, end)` of each code's metadata in `phone_metadata.bin`.\n\
         static CODES: &[(u16, u32, u32)] = &[\n",
    );
    for code in &codes {
        // `by_code` keeps the crate's order (main region first), which its lookups rely on.
        let entries: Vec<loader::Metadata> = DATABASE
            .by_code(code)
            .expect("a code listed by the database")
            .into_iter()
            .map(metadata)
            .collect();
        let start = blob.len();
        blob.extend(postcard::to_stdvec(&entries).expect("metadata serialises"));
        writeln!(index, "    ({code}, {start}, {}),", blob.len()).unwrap();
    }
    index.push_str("];\n\n/// `(ISO region, calling code)`, sorted by region.\nstatic REGIONS: &[(&str, u16)] = &[\n");
    for (id, code) in &regions {
        writeln!(index, "    ({id:?}, {code}),").unwrap();
    }
    index.push_str("];\n");

    std::fs::write(out.join("phone_metadata.bin"), blob).expect("write phone_metadata.bin");
    std::fs::write(out.join("phone_index.rs"), index).expect("write phone_index.rs");
}
