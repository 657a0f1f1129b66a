//! The JSON Schemas of `schemas/` against the code that reads and writes those events:
//! CRM directory details (`DirectoryChange::parse`) and our `lead.created` (`LeadCreated`).
//! Every sample detail in `events/` must validate; the schema and the parser must agree on what
//! is valid and on what is not.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jsonschema::{Registry, Validator};
use serde_json::{Value, json};
use shared::crm_events::{CrmEventError, DirectoryChange, LeadCreated};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Every detail-type the directory reads.
const DIRECTORY_TYPES: [&str; 10] = [
    "lead_created",
    "lead_updated",
    "lead_deleted",
    "lead_converted",
    "contact_created",
    "contact_updated",
    "contact_deleted",
    "staff_created",
    "staff_updated",
    "staff_deleted",
];

/// Every hook the notifications function reads that the directory does not (`lead_created`
/// and `contact_created` are both: their schema is the directory's, which allows the people).
const NOTIFICATION_TYPES: [&str; 8] = [
    "web_to_lead_form_submitted",
    "after_invoice_added",
    "after_add_task",
    "after_add_project",
    "proposal_created",
    "after_payment_added",
    "ticket_created",
    "after_cron_run",
];

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(format!("{ROOT}/{dir}"))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    out.sort();
    out
}

/// All schemas, registered under their `$id` so that `$ref`s between them resolve offline.
struct Schemas {
    registry: Registry<'static>,
}

impl Schemas {
    fn load() -> Self {
        let mut resources = Vec::new();
        for dir in ["schemas/crm", "schemas/whatsapp"] {
            for path in json_files(dir) {
                let schema = read_json(&path);
                jsonschema::meta::validate(&schema)
                    .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()));
                assert_eq!(
                    schema["$schema"],
                    "https://json-schema.org/draft/2020-12/schema",
                    "{}",
                    path.display()
                );
                let id = schema["$id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{} has no $id", path.display()))
                    .to_string();
                assert!(
                    id.ends_with(&format!(
                        "/{}/{}",
                        dir.trim_start_matches("schemas/"),
                        path.file_name().unwrap().to_str().unwrap()
                    )),
                    "{}: $id {id} does not name the file",
                    path.display()
                );
                resources.push((id, schema));
            }
        }
        let registry = Registry::new()
            .extend(resources)
            .expect("schema ids are URIs")
            .prepare()
            .expect("schemas resolve");
        Self { registry }
    }

    fn validator(&self, file: &str) -> Validator {
        let schema = read_json(&PathBuf::from(format!("{ROOT}/schemas/{file}")));
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    fn crm(&self, detail_type: &str) -> Validator {
        self.validator(&format!("crm/{detail_type}.json"))
    }
}

fn errors(v: &Validator, doc: &Value) -> String {
    v.iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn there_is_one_schema_per_directory_detail_type() {
    let files: BTreeSet<String> = json_files("schemas/crm")
        .iter()
        .map(|p| p.file_stem().unwrap().to_str().unwrap().to_string())
        .collect();
    let mut expected: BTreeSet<String> = DIRECTORY_TYPES
        .iter()
        .chain(NOTIFICATION_TYPES.iter())
        .map(|s| s.to_string())
        .collect();
    expected.insert("directory-record".into());
    expected.insert("notification-event".into());
    assert_eq!(files, expected);
    let schemas = Schemas::load();
    let minimal = json!({"event_id": "e1", "updated_at": 1, "record": {"id": 1}});
    for t in DIRECTORY_TYPES {
        assert!(schemas.crm(t).is_valid(&minimal), "{t}");
        assert!(DirectoryChange::parse(t, &minimal).is_ok(), "{t}");
    }
    // A hook the directory does not read has no schema here, and the parser refuses it.
    assert!(matches!(
        DirectoryChange::parse("invoice_paid", &minimal),
        Err(CrmEventError::UnknownType(_))
    ));
}

/// `events/crm-<detail-type>-detail.json` files, and the `detail` of every SQS sample whose body is
/// an EventBridge envelope from the CRM.
#[test]
fn every_crm_detail_in_events_is_valid() {
    let schemas = Schemas::load();
    let mut checked = Vec::new();
    for path in json_files("events") {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let doc = read_json(&path);
        let mut details: Vec<(String, Value)> = Vec::new();
        if let Some(t) = name
            .strip_prefix("crm-")
            .and_then(|n| n.strip_suffix("-detail.json"))
        {
            details.push((t.replace('-', "_"), doc.clone()));
        }
        for record in doc["Records"].as_array().into_iter().flatten() {
            let Some(body) = record["body"].as_str() else {
                continue;
            };
            let Ok(env) = serde_json::from_str::<Value>(body) else {
                continue;
            };
            if env["source"] == "crm" {
                let t = env["detail-type"]
                    .as_str()
                    .expect("detail-type")
                    .to_string();
                details.push((t, env["detail"].clone()));
            }
        }
        for (t, detail) in details {
            let v = schemas.crm(&t);
            assert!(v.is_valid(&detail), "{name} ({t}): {}", errors(&v, &detail));
            if DIRECTORY_TYPES.contains(&t.as_str()) {
                DirectoryChange::parse(&t, &detail).unwrap_or_else(|e| panic!("{name} ({t}): {e}"));
            }
            checked.push(format!("{name}:{t}"));
        }
    }
    assert!(
        checked
            .iter()
            .any(|c| c.starts_with("crm-contact-created-detail.json")),
        "{checked:?}"
    );
    assert!(
        checked.iter().any(|c| c.starts_with("directory-sqs.json")),
        "{checked:?}"
    );
}

fn valid_details() -> Vec<Value> {
    vec![
        json!({"event_id": "crm:lead_updated:7:1749412800", "updated_at": "2025-06-08 20:00:00", "record": {"id": "7", "name": "Ana", "phonenumber": "+55 11 91234-5678"}}),
        json!({"event_id": "e", "updated_at": 1_749_412_800, "record": {"id": 7}}),
        json!({"event_id": "e", "updated_at": 1_749_412_800_123i64, "record": {"id": 7.5, "name": null, "phone": null}}),
        json!({"event_id": "e", "updated_at": "1749412800", "record": {"id": "7", "phone": "+1 650 555 1234"}}),
        json!({"event_id": "e", "updated_at": "1749412800123", "record": {"id": "7", "phone_number": "6505551234"}}),
        json!({"event_id": "e", "updated_at": "2025-06-08T20:00:00Z", "record": {"id": "lead-7", "correlation_id": "0b8c6e1e-5f53-5ad1-9c47-06c3a9ba8f4e"}}),
        json!({"event_id": "e", "updated_at": "2025-06-08T20:00:00.123+02:00", "record": {"id": "7", "whatsapp_correlation_id": "c1"}}),
        json!({"event_id": "e", "updated_at": "2025-06-08 20:00:00-03:00", "record": {"id": "7"}}),
        json!({"event_id": "x".repeat(200), "updated_at": 0, "record": {"id": 0, "email": "a@b.c", "extra": [1, 2]}, "hook": "lead_updated"}),
    ]
}

#[test]
fn documents_valid_per_schema_parse() {
    let schemas = Schemas::load();
    for t in DIRECTORY_TYPES {
        let v = schemas.crm(t);
        for doc in valid_details() {
            assert!(v.is_valid(&doc), "{t}: {doc}: {}", errors(&v, &doc));
            let c = DirectoryChange::parse(t, &doc).unwrap_or_else(|e| panic!("{t}: {doc}: {e}"));
            assert_eq!(c.event_id, doc["event_id"].as_str().unwrap());
            assert!(!c.record.id.trim().is_empty());
        }
    }
}

fn invalid_details() -> Vec<(&'static str, Value)> {
    vec![
        (
            "missing event_id",
            json!({"updated_at": 1, "record": {"id": "1"}}),
        ),
        (
            "empty event_id",
            json!({"event_id": "", "updated_at": 1, "record": {"id": "1"}}),
        ),
        (
            "blank event_id",
            json!({"event_id": "   ", "updated_at": 1, "record": {"id": "1"}}),
        ),
        (
            "event_id too long",
            json!({"event_id": "x".repeat(201), "updated_at": 1, "record": {"id": "1"}}),
        ),
        (
            "numeric event_id",
            json!({"event_id": 12, "updated_at": 1, "record": {"id": "1"}}),
        ),
        (
            "missing updated_at",
            json!({"event_id": "e", "record": {"id": "1"}}),
        ),
        (
            "null updated_at",
            json!({"event_id": "e", "updated_at": null, "record": {"id": "1"}}),
        ),
        (
            "boolean updated_at",
            json!({"event_id": "e", "updated_at": true, "record": {"id": "1"}}),
        ),
        (
            "object updated_at",
            json!({"event_id": "e", "updated_at": {"s": 1}, "record": {"id": "1"}}),
        ),
        (
            "fractional updated_at",
            json!({"event_id": "e", "updated_at": 1.5, "record": {"id": "1"}}),
        ),
        (
            "word updated_at",
            json!({"event_id": "e", "updated_at": "yesterday", "record": {"id": "1"}}),
        ),
        (
            "updated_at without offset",
            json!({"event_id": "e", "updated_at": "2025-06-08T20:00:00", "record": {"id": "1"}}),
        ),
        (
            "updated_at month 13",
            json!({"event_id": "e", "updated_at": "2025-13-08 20:00:00", "record": {"id": "1"}}),
        ),
        ("missing record", json!({"event_id": "e", "updated_at": 1})),
        (
            "record not an object",
            json!({"event_id": "e", "updated_at": 1, "record": "7"}),
        ),
        (
            "missing id",
            json!({"event_id": "e", "updated_at": 1, "record": {"name": "Ana"}}),
        ),
        (
            "empty id",
            json!({"event_id": "e", "updated_at": 1, "record": {"id": ""}}),
        ),
        (
            "blank id",
            json!({"event_id": "e", "updated_at": 1, "record": {"id": "  "}}),
        ),
        (
            "null id",
            json!({"event_id": "e", "updated_at": 1, "record": {"id": null}}),
        ),
        (
            "boolean id",
            json!({"event_id": "e", "updated_at": 1, "record": {"id": true}}),
        ),
        (
            "numeric name",
            json!({"event_id": "e", "updated_at": 1, "record": {"id": "1", "name": 5}}),
        ),
        (
            "numeric phone",
            json!({"event_id": "e", "updated_at": 1, "record": {"id": "1", "phonenumber": 5511912345678i64}}),
        ),
        (
            "two phone aliases",
            json!({"event_id": "e", "updated_at": 1, "record": {"id": "1", "phone": "+1", "phonenumber": "+1"}}),
        ),
        (
            "two correlation aliases",
            json!({"event_id": "e", "updated_at": 1, "record": {"id": "1", "correlation_id": "a", "whatsapp_correlation_id": "a"}}),
        ),
        ("not an object", json!(["e", 1])),
    ]
}

#[test]
fn invalid_documents_are_rejected_by_schema_and_parser() {
    let schemas = Schemas::load();
    for t in DIRECTORY_TYPES {
        let v = schemas.crm(t);
        for (why, doc) in invalid_details() {
            assert!(!v.is_valid(&doc), "{t}: schema accepts {why}: {doc}");
            assert!(
                matches!(
                    DirectoryChange::parse(t, &doc),
                    Err(CrmEventError::Invalid(_))
                ),
                "{t}: parser accepts {why}: {doc}"
            );
        }
    }
}

fn lead_created(full: bool) -> LeadCreated {
    let correlation_id = "0b8c6e1e-5f53-5ad1-9c47-06c3a9ba8f4e".to_string();
    let some = |s: &str| full.then(|| s.to_string());
    LeadCreated {
        event_id: format!("lead.created:{correlation_id}"),
        correlation_id,
        phone: some("+16505551234"),
        wa_id: some("16505551234"),
        bsuid: some("US.13491208655302741918"),
        name: some("Sheena Nelson"),
        status: some("1"),
        source: some("2"),
        assignee: some("3"),
        phone_number_id: "106540352242922".into(),
        conversation_id: "106540352242922:3f9a1c2e-8d41-4b7a-9f3e-2a6d5c4b1e0f".into(),
        first_message_at: 1_749_416_383_000,
    }
}

#[test]
fn lead_created_matches_its_schema() {
    let schemas = Schemas::load();
    let v = schemas.validator("whatsapp/lead.created.json");
    for full in [true, false] {
        let event = lead_created(full).into_event();
        assert_eq!(event.detail_type, "lead.created");
        assert!(
            v.is_valid(&event.detail),
            "{}: {}",
            event.detail,
            errors(&v, &event.detail)
        );
    }
    // The schema lists exactly the fields the struct writes.
    let schema = read_json(&PathBuf::from(format!(
        "{ROOT}/schemas/whatsapp/lead.created.json"
    )));
    let listed: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let detail = serde_json::to_value(lead_created(true)).unwrap();
    let written: BTreeSet<&str> = detail
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(listed, written);
    // And it is not a rubber stamp.
    let mut bad = detail.clone();
    bad["first_message_at"] = json!("yesterday");
    assert!(!v.is_valid(&bad));
    let mut bad = detail.clone();
    bad.as_object_mut().unwrap().remove("correlation_id");
    assert!(!v.is_valid(&bad));
    let mut bad = detail;
    bad["phone"] = json!("6505551234");
    assert!(!v.is_valid(&bad), "phone must be E.164");
}
