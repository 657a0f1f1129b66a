//! What the inbound function reads from its queue: an envelope body, then the typed view of
//! its item for each kind. Nothing may panic, whatever the body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use shared::envelope::Envelope;
use shared::meta::webhook::{
    AccountUpdate, CallEvent, CallStatus, RawEcho, RawMessage, RawStatus, TemplateCategoryUpdate,
    TemplateComponentsUpdate, TemplateQualityUpdate, TemplateStatusUpdate, UserPreference,
};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(env) = Envelope::from_body(body) else {
        return;
    };
    let item = env.item.get();
    let _ = env.happened_at_ms();
    if let Ok(m) = RawMessage(env.item.clone()).parse() {
        let _ = m.content.summary();
    }
    let _ = RawStatus(env.item.clone()).parse();
    let _ = RawEcho(env.item.clone()).parse();
    let _ = serde_json::from_str::<UserPreference>(item);
    let _ = serde_json::from_str::<TemplateStatusUpdate>(item);
    let _ = serde_json::from_str::<TemplateQualityUpdate>(item);
    let _ = serde_json::from_str::<TemplateCategoryUpdate>(item);
    if let Ok(u) = serde_json::from_str::<TemplateComponentsUpdate>(item) {
        let _ = shared::templates::components_after_update(&[], &u);
    }
    let _ = serde_json::from_str::<AccountUpdate>(item);
    if let Ok(c) = serde_json::from_str::<CallEvent>(item) {
        let _ = (c.summary(), c.missed(), c.customer());
    }
    let _ = serde_json::from_str::<CallStatus>(item);
});
