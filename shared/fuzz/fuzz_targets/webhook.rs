//! What the webhook does with a POST body: signature check, parse, split into envelopes, and
//! the typed view of every item. Nothing may panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shared::meta::signature;
use shared::meta::webhook::{RawMessage, RawStatus, parse_notification};

const SECRET: &[u8] = b"fuzz-app-secret";

fuzz_target!(|data: &[u8]| {
    // A header made of the input's first bytes (malformed, wrong, or well-formed hex) …
    let head = String::from_utf8_lossy(&data[..data.len().min(80)]).into_owned();
    let _ = signature::verify(SECRET, data, Some(&head));
    // … and the right one: it must verify.
    let good = signature::sign(SECRET, data);
    assert!(signature::verify(SECRET, data, Some(&good)).is_ok());
    let Ok(n) = parse_notification(data) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let split = shared::envelope::split(&n, text, 1_700_000_000_000);
    for q in &split.queued {
        // Every envelope the webhook queues is one the inbound function can read back.
        let env = shared::envelope::Envelope::from_body(&q.body)
            .expect("a queued envelope is readable");
        let _ = RawMessage(env.item.clone()).parse();
        let _ = RawStatus(env.item.clone()).parse();
    }
    for e in &n.entry {
        for c in &e.changes {
            let _ = c.parse_value();
        }
    }
});
