//! Parsing of Meta WhatsApp Cloud API webhook payloads (`shared::meta::webhook`) against the
//! fixtures in `tests/fixtures/meta/` (see its README for which are Meta's own).

use shared::meta::webhook::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/meta/");

const PHONE_NUMBER_ID: &str = "106540352242922";
const WABA: &str = "102290129340398";
const USER: &str = "16505551234";
const BSUID: &str = "US.13491208655302741918";
const BIZ_WAMID: &str = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA";

fn load(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("read fixture {name}: {e}"))
}

fn notification(name: &str) -> Notification {
    parse_notification(&load(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The single change of a single-entry fixture, typed.
fn only_change(name: &str) -> (Notification, ChangeValue) {
    let n = notification(name);
    assert_eq!(n.object, "whatsapp_business_account");
    assert_eq!(n.entry.len(), 1, "{name}: entries");
    assert_eq!(n.entry[0].changes.len(), 1, "{name}: changes");
    let v = n.entry[0].changes[0]
        .parse_value()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (n, v)
}

fn messages_value(name: &str) -> MessagesValue {
    match only_change(name).1 {
        ChangeValue::Messages(v) => v,
        other => panic!("{name}: expected messages, got {other:?}"),
    }
}

/// The value and its single message, parsed.
fn only_message(name: &str) -> (MessagesValue, InboundMessage) {
    let v = messages_value(name);
    assert_eq!(v.messages.len(), 1, "{name}: messages");
    assert!(v.statuses.is_empty(), "{name}: statuses");
    let m = v.messages[0]
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (v, m)
}

fn only_status(name: &str) -> (MessagesValue, Status) {
    let v = messages_value(name);
    assert!(v.messages.is_empty(), "{name}: messages");
    assert_eq!(v.statuses.len(), 1, "{name}: statuses");
    let s = v.statuses[0]
        .parse()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (v, s)
}

fn assert_default_metadata(v: &MessagesValue) {
    assert_eq!(v.messaging_product.as_deref(), Some("whatsapp"));
    assert_eq!(v.metadata.phone_number_id, PHONE_NUMBER_ID);
    assert_eq!(
        v.metadata.display_phone_number.as_deref(),
        Some("15550783881")
    );
}

fn assert_sheena(c: &Contact) {
    assert_eq!(c.wa_id.as_deref(), Some(USER));
    assert_eq!(
        c.profile.as_ref().unwrap().name.as_deref(),
        Some("Sheena Nelson")
    );
}

fn assert_from_sheena(m: &InboundMessage) {
    assert_eq!(m.from.as_deref(), Some(USER));
    assert_eq!(m.from_user_id.as_deref(), Some(BSUID));
    assert!(m.errors.is_empty());
}

fn reply_context(m: &InboundMessage) {
    let c = m.context.as_ref().expect("context");
    assert_eq!(c.from.as_deref(), Some("15550783881"));
    assert_eq!(c.id.as_deref(), Some(BIZ_WAMID));
    assert!(!c.forwarded);
    assert!(!c.frequently_forwarded);
}

// ------------------------------------------------------------------------------------------
// Every fixture
// ------------------------------------------------------------------------------------------

#[test]
fn every_fixture_parses_all_the_way_down() {
    let mut files: Vec<_> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 34, "fixtures found: {}", files.len());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read(&path).unwrap();
        let n = parse_notification(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(n.object, "whatsapp_business_account", "{name}");
        assert!(!n.entry.is_empty(), "{name}");
        for entry in &n.entry {
            assert!(!entry.changes.is_empty(), "{name}");
            for change in &entry.changes {
                match change
                    .parse_value()
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                {
                    ChangeValue::Messages(v) => {
                        for m in &v.messages {
                            let p = m.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
                            assert!(p.id.starts_with("wamid."), "{name}");
                            assert!(p.timestamp > 1_700_000_000, "{name}");
                            assert!(!p.content.summary().is_empty(), "{name}");
                        }
                        for s in &v.statuses {
                            let p = s.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
                            assert!(p.timestamp > 1_700_000_000, "{name}");
                        }
                    }
                    ChangeValue::SmbMessageEchoes(v) => {
                        for e in &v.message_echoes {
                            e.parse().unwrap_or_else(|err| panic!("{name}: {err}"));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn raw_parts_are_kept_verbatim() {
    let body = load("batch_multi.json");
    let original: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let n = parse_notification(&body).unwrap();
    for (ei, entry) in n.entry.iter().enumerate() {
        for (ci, change) in entry.changes.iter().enumerate() {
            let orig_value = &original["entry"][ei]["changes"][ci]["value"];
            let raw: serde_json::Value = serde_json::from_str(change.value.get()).unwrap();
            assert_eq!(&raw, orig_value);
            if let ChangeValue::Messages(v) = change.parse_value().unwrap() {
                for (mi, m) in v.messages.iter().enumerate() {
                    let raw: serde_json::Value = serde_json::from_str(m.raw()).unwrap();
                    assert_eq!(raw, orig_value["messages"][mi]);
                }
                for (si, s) in v.statuses.iter().enumerate() {
                    let raw: serde_json::Value = serde_json::from_str(s.raw()).unwrap();
                    assert_eq!(raw, orig_value["statuses"][si]);
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Meta's own examples
// ------------------------------------------------------------------------------------------

#[test]
fn meta_text_message() {
    let (n, m) = {
        let (n, v) = only_change("text_message.json");
        let ChangeValue::Messages(v) = v else {
            panic!()
        };
        let m = v.messages[0].parse().unwrap();
        assert_default_metadata(&v);
        assert_eq!(v.contacts.len(), 1);
        assert_sheena(&v.contacts[0]);
        assert_eq!(v.contacts[0].user_id, None);
        (n, m)
    };
    assert_eq!(n.entry[0].id, WABA);
    assert_eq!(n.entry[0].time, None);
    assert_eq!(n.entry[0].changes[0].field, "messages");
    assert_eq!(
        m.id,
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    assert_eq!(m.from.as_deref(), Some(USER));
    assert_eq!(m.from_user_id, None);
    assert_eq!(m.timestamp, 1_749_416_383);
    assert_eq!(m.kind, "text");
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: "Does it come in another color?".into()
        }
    );
    assert_eq!(m.content.summary(), "Does it come in another color?");
    assert_eq!(m.context, None);
    assert_eq!(m.referral, None);
    assert!(m.errors.is_empty());
}

#[test]
fn meta_interactive_list_reply() {
    let (v, m) = only_message("interactive_list_reply.json");
    assert_default_metadata(&v);
    assert_eq!(m.kind, "interactive");
    assert_eq!(m.timestamp, 1_749_854_575);
    let c = m.context.as_ref().unwrap();
    assert_eq!(c.from.as_deref(), Some("15550783881"));
    assert_eq!(
        c.id.as_deref(),
        Some("wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=")
    );
    assert_eq!(
        m.content,
        MessageContent::Interactive(Interactive::ListReply {
            id: "priority_express".into(),
            title: "Priority Mail Express".into(),
            description: Some("Next Day to 2 Days".into()),
        })
    );
    assert_eq!(m.content.summary(), "Priority Mail Express");
}

#[test]
fn meta_status_failed() {
    let (v, s) = only_status("status_failed.json");
    assert_default_metadata(&v);
    assert!(v.contacts.is_empty());
    assert_eq!(
        s.id,
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA"
    );
    assert_eq!(s.status, StatusKind::Failed);
    assert_eq!(s.status.rank(), 4);
    assert_eq!(s.status.as_str(), "failed");
    assert_eq!(s.timestamp, 1_751_142_888);
    assert_eq!(s.recipient_id.as_deref(), Some(USER));
    assert_eq!(s.recipient_user_id, None);
    assert_eq!(s.biz_opaque_callback_data, None);
    assert_eq!(s.conversation, None);
    assert_eq!(s.pricing, None);
    assert_eq!(s.errors.len(), 1);
    let e = &s.errors[0];
    assert_eq!(e.code, 131049);
    assert_eq!(
        e.title.as_deref(),
        Some("This message was not delivered to maintain healthy ecosystem engagement.")
    );
    assert_eq!(e.message, e.title);
    assert_eq!(
        e.error_data.as_ref().unwrap().details.as_deref(),
        Some(
            "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."
        )
    );
    assert_eq!(
        e.href.as_deref(),
        Some("/documentation/business-messaging/whatsapp/support/error-codes")
    );
}

// ------------------------------------------------------------------------------------------
// Inbound message kinds
// ------------------------------------------------------------------------------------------

#[test]
fn text_reply_with_context() {
    let (v, m) = only_message("text_reply_context.json");
    assert_default_metadata(&v);
    assert_sheena(&v.contacts[0]);
    assert_eq!(v.contacts[0].user_id.as_deref(), Some(BSUID));
    assert_from_sheena(&m);
    assert_eq!(m.timestamp, 1_749_416_500);
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: "Yes, the blue one please".into()
        }
    );
    reply_context(&m);
    assert_eq!(m.context.as_ref().unwrap().referred_product, None);
}

#[test]
fn text_forwarded() {
    let (_, m) = only_message("text_forwarded.json");
    assert_from_sheena(&m);
    let c = m.context.as_ref().unwrap();
    assert!(c.forwarded);
    assert!(c.frequently_forwarded);
    assert_eq!(c.from, None);
    assert_eq!(c.id, None);
    assert_eq!(
        m.content.summary(),
        "Check this offer: https://example.com/deal"
    );
}

#[test]
fn image() {
    let (_, m) = only_message("image.json");
    assert_from_sheena(&m);
    assert_eq!(m.kind, "image");
    let MessageContent::Image(media) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(media.id.as_deref(), Some("1003383421387256"));
    assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        media.sha256.as_deref(),
        Some("81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3")
    );
    assert_eq!(media.caption.as_deref(), Some("Is this the right part?"));
    assert!(
        media
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://lookaside.fbsbx.com/")
    );
    assert_eq!(media.filename, None);
    assert!(!media.voice);
    assert_eq!(m.content.summary(), "[image] Is this the right part?");
}

#[test]
fn video() {
    let (_, m) = only_message("video.json");
    let MessageContent::Video(media) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(media.id.as_deref(), Some("1249847532982511"));
    assert_eq!(media.mime_type.as_deref(), Some("video/mp4"));
    assert_eq!(media.caption.as_deref(), Some("The noise it makes"));
    assert_eq!(m.content.summary(), "[video] The noise it makes");
}

#[test]
fn audio_voice() {
    let (_, m) = only_message("audio_voice.json");
    let MessageContent::Audio(media) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert!(media.voice);
    assert_eq!(media.id.as_deref(), Some("1375993943914711"));
    assert_eq!(media.mime_type.as_deref(), Some("audio/ogg; codecs=opus"));
    assert_eq!(media.caption, None);
    assert_eq!(m.content.summary(), "[voice message]");
    let plain = MessageContent::Audio(Media::default());
    assert_eq!(plain.summary(), "[audio]");
}

#[test]
fn document() {
    let (_, m) = only_message("document.json");
    let MessageContent::Document(media) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(media.filename.as_deref(), Some("invoice-2025-03.pdf"));
    assert_eq!(media.caption.as_deref(), Some("Invoice for March"));
    assert_eq!(media.mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(media.id.as_deref(), Some("1090874539620316"));
    assert_eq!(m.content.summary(), "[document] invoice-2025-03.pdf");
}

#[test]
fn sticker() {
    let (_, m) = only_message("sticker.json");
    let MessageContent::Sticker(media) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(media.mime_type.as_deref(), Some("image/webp"));
    assert_eq!(media.id.as_deref(), Some("1211358230497891"));
    assert!(!media.animated);
    assert_eq!(m.content.summary(), "[sticker]");
}

#[test]
fn location() {
    let (_, m) = only_message("location.json");
    assert_eq!(
        m.content,
        MessageContent::Location(Location {
            latitude: 37.483307,
            longitude: -122.148981,
            name: Some("Philz Coffee".into()),
            address: Some("1 Hacker Way, Menlo Park, CA 94025".into()),
            url: Some("https://philzcoffee.com".into()),
        })
    );
    assert_eq!(m.content.summary(), "📍 Philz Coffee");
    let bare = MessageContent::Location(Location {
        latitude: 1.5,
        longitude: -2.25,
        ..Default::default()
    });
    assert_eq!(bare.summary(), "📍 1.5, -2.25");
}

#[test]
fn contacts_cards() {
    let (_, m) = only_message("contacts.json");
    let MessageContent::Contacts(cards) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(cards.len(), 2);
    let c = &cards[0];
    let name = c.name.as_ref().unwrap();
    assert_eq!(name.formatted_name.as_deref(), Some("Barbara J. Johnson"));
    assert_eq!(name.first_name.as_deref(), Some("Barbara"));
    assert_eq!(name.last_name.as_deref(), Some("Johnson"));
    assert_eq!(name.middle_name.as_deref(), Some("Joana"));
    assert_eq!(name.prefix.as_deref(), Some("Dr."));
    assert_eq!(name.suffix.as_deref(), Some("Esq."));
    assert_eq!(c.birthday.as_deref(), Some("1999-01-23"));
    assert_eq!(c.phones.len(), 2);
    assert_eq!(c.phones[0].phone.as_deref(), Some("+1 (940) 555-1234"));
    assert_eq!(c.phones[0].wa_id.as_deref(), Some("19405551234"));
    assert_eq!(c.phones[0].kind.as_deref(), Some("HOME"));
    assert_eq!(c.phones[1].wa_id, None);
    assert_eq!(
        c.emails[0].email.as_deref(),
        Some("bjohnson@luckyshrub.com")
    );
    assert_eq!(c.emails[0].kind.as_deref(), Some("WORK"));
    assert_eq!(c.urls[0].url.as_deref(), Some("https://www.luckyshrub.com"));
    let org = c.org.as_ref().unwrap();
    assert_eq!(org.company.as_deref(), Some("Lucky Shrub"));
    assert_eq!(org.department.as_deref(), Some("Legal"));
    assert_eq!(org.title.as_deref(), Some("Lead Counsel"));
    let a = &c.addresses[0];
    assert_eq!(a.street.as_deref(), Some("1 Hacker Way"));
    assert_eq!(a.city.as_deref(), Some("Menlo Park"));
    assert_eq!(a.state.as_deref(), Some("CA"));
    assert_eq!(a.zip.as_deref(), Some("94025"));
    assert_eq!(a.country_code.as_deref(), Some("us"));
    assert_eq!(a.kind.as_deref(), Some("WORK"));
    let c2 = &cards[1];
    assert_eq!(
        c2.name.as_ref().unwrap().formatted_name.as_deref(),
        Some("Pablo Morales")
    );
    assert!(c2.emails.is_empty() && c2.addresses.is_empty() && c2.org.is_none());
    assert_eq!(m.content.summary(), "[contact] Barbara J. Johnson +1");
}

#[test]
fn interactive_button_reply() {
    let (_, m) = only_message("interactive_button_reply.json");
    reply_context(&m);
    assert_eq!(
        m.content,
        MessageContent::Interactive(Interactive::ButtonReply {
            id: "cancel-button".into(),
            title: "Cancel".into()
        })
    );
    assert_eq!(m.content.summary(), "Cancel");
}

#[test]
fn interactive_nfm_reply() {
    let (_, m) = only_message("interactive_nfm_reply.json");
    reply_context(&m);
    let MessageContent::Interactive(Interactive::NfmReply {
        name,
        body,
        response_json,
    }) = &m.content
    else {
        panic!("{:?}", m.content)
    };
    assert_eq!(name.as_deref(), Some("flow"));
    assert_eq!(body.as_deref(), Some("Sent"));
    let r: serde_json::Value = serde_json::from_str(response_json).unwrap();
    assert_eq!(r["flow_token"], "lead-form-7f3a");
    assert_eq!(r["email"], "sheena@example.com");
    assert_eq!(m.content.summary(), "[form response]");
}

#[test]
fn button_template_quick_reply() {
    let (_, m) = only_message("button_quick_reply.json");
    reply_context(&m);
    assert_eq!(m.kind, "button");
    assert_eq!(
        m.content,
        MessageContent::Button {
            payload: "STOP_PROMOTIONS".into(),
            text: "Stop promotions".into()
        }
    );
    assert_eq!(m.content.summary(), "Stop promotions");
}

#[test]
fn reaction() {
    let (_, m) = only_message("reaction.json");
    assert_eq!(
        m.content,
        MessageContent::Reaction {
            message_id: BIZ_WAMID.into(),
            emoji: Some("👍".into())
        }
    );
    assert_eq!(m.content.summary(), "reacted 👍");
}

#[test]
fn reaction_removed() {
    let (_, m) = only_message("reaction_removed.json");
    let MessageContent::Reaction { message_id, emoji } = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(message_id, BIZ_WAMID);
    // kept verbatim: `""` (or a missing emoji) means "removed"
    assert_eq!(emoji.as_deref(), Some(""));
    assert_eq!(m.content.summary(), "[reaction removed]");
}

#[test]
fn order() {
    let (_, m) = only_message("order.json");
    let MessageContent::Order(o) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(o.catalog_id.as_deref(), Some("194836987003835"));
    assert_eq!(o.text.as_deref(), Some("Love these!"));
    assert_eq!(
        o.product_items,
        vec![
            ProductItem {
                product_retailer_id: "di9ozbzfi4".into(),
                quantity: 2,
                item_price: 7.99,
                currency: Some("USD".into())
            },
            ProductItem {
                product_retailer_id: "nqryix03ez".into(),
                quantity: 1,
                item_price: 19.5,
                currency: Some("USD".into())
            },
        ]
    );
    assert_eq!(m.content.summary(), "[order] 2 items: Love these!");
}

#[test]
fn system_user_changed_number() {
    let (v, m) = only_message("system_user_changed_number.json");
    assert!(
        v.contacts.is_empty(),
        "system messages come without contacts[]"
    );
    assert_from_sheena(&m);
    let MessageContent::System(sys) = &m.content else {
        panic!("{:?}", m.content)
    };
    assert_eq!(sys.kind.as_deref(), Some("user_changed_number"));
    assert_eq!(sys.wa_id.as_deref(), Some("12195555358"));
    assert_eq!(sys.user_id.as_deref(), Some("US.11815799212886844830"));
    assert_eq!(sys.previous_user_id.as_deref(), Some(BSUID));
    assert_eq!(sys.new_wa_id, None);
    assert_eq!(
        m.content.summary(),
        "User Sheena Nelson changed from 16505551234 to 12195555358"
    );
}

#[test]
fn unsupported_with_errors() {
    let (_, m) = only_message("unsupported.json");
    assert_eq!(m.kind, "unsupported");
    assert_eq!(m.content, MessageContent::Unsupported);
    assert_eq!(m.errors.len(), 1);
    assert_eq!(m.errors[0].code, 131051);
    assert_eq!(m.errors[0].title.as_deref(), Some("Message type unknown"));
    assert_eq!(
        m.errors[0].error_data.as_ref().unwrap().details.as_deref(),
        Some("Message type is currently not supported.")
    );
    assert_eq!(m.content.summary(), "[unsupported message]");
}

#[test]
fn referral_click_to_whatsapp_ad() {
    let (_, m) = only_message("referral_ctwa.json");
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: "Hi! I saw your ad about the spring sale".into()
        }
    );
    let r = m.referral.as_ref().unwrap();
    assert_eq!(r.source_url.as_deref(), Some("https://fb.me/3cr4Wqqkv"));
    assert_eq!(r.source_id.as_deref(), Some("120226305854810726"));
    assert_eq!(r.source_type.as_deref(), Some("ad"));
    assert_eq!(r.headline.as_deref(), Some("Chat with us"));
    assert_eq!(
        r.body.as_deref(),
        Some("Spring sale: 30% off all succulents")
    );
    assert_eq!(r.media_type.as_deref(), Some("image"));
    assert!(r.image_url.as_deref().unwrap().ends_with("ad-image.jpg"));
    assert_eq!(r.video_url, None);
    assert_eq!(
        r.ctwa_clid.as_deref(),
        Some("Afc3nYt8hX1n0pQ9zQ7j1JmWbS2Xq3vLrT4u5V6w7X8y9Z0")
    );
    assert_eq!(
        r.welcome_message.as_ref().unwrap().text.as_deref(),
        Some("Hi there! How can we help you today?")
    );
}

#[test]
fn username_user_with_bsuid_only() {
    let (v, m) = only_message("username_user_bsuid_only.json");
    assert_eq!(v.contacts.len(), 1);
    let c = &v.contacts[0];
    assert_eq!(c.wa_id, None);
    assert_eq!(c.user_id.as_deref(), Some("CA.8847261930475512"));
    let p = c.profile.as_ref().unwrap();
    assert_eq!(p.name.as_deref(), Some("Marc"));
    assert_eq!(p.username.as_deref(), Some("@marc.dubois"));
    assert_eq!(m.from, None);
    assert_eq!(m.from_user_id.as_deref(), Some("CA.8847261930475512"));
    assert_eq!(m.timestamp, 1_749_418_300);
    assert_eq!(m.content.summary(), "Hello, do you ship to Canada?");
}

#[test]
fn unknown_message_type() {
    let (v, m) = only_message("unknown_type.json");
    assert_from_sheena(&m);
    assert_eq!(m.kind, "hologram");
    assert_eq!(
        m.content,
        MessageContent::Unknown {
            kind: "hologram".into()
        }
    );
    assert_eq!(m.content.summary(), "[hologram]");
    // not typed, but nothing is lost: the raw message still carries the content
    let raw: serde_json::Value = serde_json::from_str(v.messages[0].raw()).unwrap();
    assert_eq!(raw["hologram"]["shape"], "cube");
}

// ------------------------------------------------------------------------------------------
// Statuses
// ------------------------------------------------------------------------------------------

#[test]
fn status_sent() {
    let (v, s) = only_status("status_sent.json");
    assert_sheena(&v.contacts[0]);
    assert_eq!(
        s.id,
        "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI0QkJDMzlBRjAwQjdCNUEzRDQA"
    );
    assert_eq!(s.status, StatusKind::Sent);
    assert_eq!(s.status.rank(), 1);
    assert_eq!(s.timestamp, 1_750_263_773);
    assert_eq!(s.recipient_id.as_deref(), Some(USER));
    assert_eq!(s.recipient_user_id.as_deref(), Some(BSUID));
    assert_eq!(
        s.biz_opaque_callback_data.as_deref(),
        Some("msg_01JXAMPLE7Q2")
    );
    assert_eq!(
        s.conversation,
        Some(StatusConversation {
            id: Some("6ceb9d929c1e3b3b6f3a4f8d7ee1c2a3".into()),
            expiration_timestamp: Some(1_750_350_180),
            origin: Some(ConversationOrigin {
                kind: Some("utility".into())
            }),
        })
    );
    assert_eq!(
        s.pricing,
        Some(Pricing {
            billable: Some(true),
            pricing_model: Some("CBP".into()),
            category: Some("utility".into()),
            kind: None,
        })
    );
    assert!(s.errors.is_empty());
}

#[test]
fn status_delivered() {
    let (_, s) = only_status("status_delivered.json");
    assert_eq!(s.status, StatusKind::Delivered);
    assert_eq!(s.status.rank(), 2);
    assert_eq!(s.status.as_str(), "delivered");
    assert_eq!(s.timestamp, 1_750_263_775);
    assert_eq!(
        s.biz_opaque_callback_data.as_deref(),
        Some("msg_01JXAMPLE7Q2")
    );
    let c = s.conversation.as_ref().unwrap();
    assert_eq!(c.expiration_timestamp, None);
    let p = s.pricing.as_ref().unwrap();
    assert_eq!(p.pricing_model.as_deref(), Some("PMP"));
    assert_eq!(p.kind.as_deref(), Some("regular"));
    assert_eq!(p.category.as_deref(), Some("utility"));
}

#[test]
fn status_read() {
    let (v, s) = only_status("status_read.json");
    assert_eq!(
        v.contacts[0].profile.as_ref().unwrap().username.as_deref(),
        Some("@sheena")
    );
    assert_eq!(s.status, StatusKind::Read);
    assert_eq!(s.status.rank(), 3);
    assert_eq!(s.timestamp, 1_750_263_790);
    assert_eq!(
        s.conversation
            .as_ref()
            .unwrap()
            .origin
            .as_ref()
            .unwrap()
            .kind
            .as_deref(),
        Some("service")
    );
    let p = s.pricing.as_ref().unwrap();
    assert_eq!(p.billable, Some(false));
    assert_eq!(p.kind.as_deref(), Some("free_customer_service"));
}

#[test]
fn status_kinds_and_ranks() {
    assert!(StatusKind::Sent.rank() < StatusKind::Delivered.rank());
    assert!(StatusKind::Delivered.rank() < StatusKind::Read.rank());
    assert!(StatusKind::Read.rank() < StatusKind::Failed.rank());
    let played: StatusKind = serde_json::from_str("\"played\"").unwrap();
    assert_eq!(played, StatusKind::Other("played".into()));
    assert_eq!(played.rank(), 0);
    assert_eq!(played.as_str(), "played");
    assert_eq!(
        StatusKind::from("deleted"),
        StatusKind::Other("deleted".into())
    );
    assert_eq!(
        serde_json::to_string(&StatusKind::Read).unwrap(),
        "\"read\""
    );
    let raw = RawStatus(
        serde_json::value::RawValue::from_string(
            r#"{"id":"wamid.X","status":"played","timestamp":1750000000}"#.into(),
        )
        .unwrap(),
    );
    let s = raw.parse().unwrap();
    assert_eq!(s.status, StatusKind::Other("played".into()));
    assert_eq!(s.timestamp, 1_750_000_000);
}

// ------------------------------------------------------------------------------------------
// Batches and value-level errors
// ------------------------------------------------------------------------------------------

#[test]
fn batch_with_several_entries_changes_messages() {
    let n = notification("batch_multi.json");
    assert_eq!(n.entry.len(), 3);
    assert_eq!(n.entry[0].id, WABA);
    assert_eq!(n.entry[0].changes.len(), 2);

    let ChangeValue::Messages(first) = n.entry[0].changes[0].parse_value().unwrap() else {
        panic!()
    };
    assert_eq!(first.contacts.len(), 2);
    assert_eq!(first.contacts[1].wa_id.as_deref(), Some("14155550123"));
    let msgs: Vec<_> = first.messages.iter().map(|m| m.parse().unwrap()).collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].content.summary(), "First");
    assert_eq!(msgs[0].timestamp, 1_751_000_001);
    assert_eq!(msgs[1].from.as_deref(), Some("14155550123"));
    assert_eq!(
        msgs[1].from_user_id.as_deref(),
        Some("US.22222222222222222222")
    );
    assert!(
        matches!(&msgs[1].content, MessageContent::Image(m) if m.id.as_deref() == Some("2754859441498128"))
    );
    assert_eq!(msgs[1].content.summary(), "[image]");

    let ChangeValue::Messages(statuses) = n.entry[0].changes[1].parse_value().unwrap() else {
        panic!()
    };
    let st: Vec<_> = statuses
        .statuses
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(st.len(), 2);
    assert_eq!(st[0].status, StatusKind::Delivered);
    assert_eq!(
        st[0].pricing.as_ref().unwrap().category.as_deref(),
        Some("marketing")
    );
    assert_eq!(st[1].status, StatusKind::Read);
    assert_eq!(st[1].pricing, None);
    assert_eq!(st[1].conversation, None);

    let ChangeValue::Messages(other_number) = n.entry[1].changes[0].parse_value().unwrap() else {
        panic!()
    };
    assert_eq!(other_number.metadata.phone_number_id, "109876543210987");
    assert_eq!(
        other_number.messages[0].parse().unwrap().content.summary(),
        "Third"
    );

    assert_eq!(n.entry[2].time, Some(1_751_000_006));
    let ChangeValue::TemplateStatus(t) = n.entry[2].changes[0].parse_value().unwrap() else {
        panic!()
    };
    assert_eq!(t.event, "APPROVED");
    assert_eq!(t.message_template_name, "appointment_reminder");
}

#[test]
fn value_level_errors() {
    let v = messages_value("value_errors.json");
    assert_default_metadata(&v);
    assert!(v.messages.is_empty() && v.statuses.is_empty() && v.contacts.is_empty());
    assert_eq!(
        v.errors,
        vec![MetaError {
            code: 131000,
            title: Some("Something went wrong".into()),
            message: Some("Something went wrong".into()),
            error_data: Some(ErrorData {
                details: Some("Message failed to send due to an unknown error.".into())
            }),
            href: Some("/documentation/business-messaging/whatsapp/support/error-codes".into()),
        }]
    );
}

// ------------------------------------------------------------------------------------------
// Other fields
// ------------------------------------------------------------------------------------------

#[test]
fn user_preferences_stop() {
    let (_, v) = only_change("user_preferences_stop.json");
    let ChangeValue::UserPreferences(v) = v else {
        panic!("{v:?}")
    };
    assert_eq!(v.metadata.phone_number_id, PHONE_NUMBER_ID);
    assert_sheena(&v.contacts[0]);
    assert_eq!(
        v.user_preferences,
        vec![UserPreference {
            wa_id: Some(USER.into()),
            user_id: Some(BSUID.into()),
            parent_user_id: None,
            detail: Some("User requested to stop marketing messages".into()),
            category: Some("marketing_messages".into()),
            value: "stop".into(),
            timestamp: 1_731_705_721,
        }]
    );
}

#[test]
fn smb_message_echoes() {
    let (_, v) = only_change("smb_message_echoes.json");
    let ChangeValue::SmbMessageEchoes(v) = v else {
        panic!("{v:?}")
    };
    assert_eq!(v.metadata.phone_number_id, PHONE_NUMBER_ID);
    assert_eq!(v.message_echoes.len(), 2);
    let e0 = v.message_echoes[0].parse().unwrap();
    assert_eq!(
        e0,
        EchoMessage {
            id: "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJFQ0hPMDAwMDAwMDAwMDAwMDEA".into(),
            from: Some("15550783881".into()),
            to: Some(USER.into()),
            to_user_id: None,
            timestamp: 1_749_420_000,
            kind: "text".into(),
            content: MessageContent::Text {
                body: "Here's the info you requested! https://www.meta.com/quest/quest-3/".into()
            },
        }
    );
    let e1 = v.message_echoes[1].parse().unwrap();
    assert_eq!(e1.to_user_id.as_deref(), Some(BSUID));
    assert_eq!(e1.kind, "image");
    assert_eq!(e1.timestamp, 1_749_420_060);
    assert_eq!(e1.content.summary(), "[image] Price list");
    assert!(v.message_echoes[1].raw().contains("\"to_user_id\""));
}

#[test]
fn template_status_approved() {
    let (n, v) = only_change("template_status_approved.json");
    assert_eq!(n.entry[0].time, Some(1_751_247_548));
    let ChangeValue::TemplateStatus(t) = v else {
        panic!("{v:?}")
    };
    assert_eq!(t.event, "APPROVED");
    assert_eq!(t.message_template_id, "1689556908129832");
    assert_eq!(t.message_template_name, "order_confirmation");
    assert_eq!(t.message_template_language, "en_US");
    assert_eq!(t.reason.as_deref(), Some("NONE"));
    assert_eq!(t.message_template_category.as_deref(), Some("UTILITY"));
    assert_eq!(t.rejection_info, None);
    assert_eq!(t.other_info, None);
    assert_eq!(t.disable_info, None);
}

#[test]
fn template_status_rejected() {
    let (_, v) = only_change("template_status_rejected.json");
    let ChangeValue::TemplateStatus(t) = v else {
        panic!("{v:?}")
    };
    assert_eq!(t.event, "REJECTED");
    // sent as a string here: both forms are accepted
    assert_eq!(t.message_template_id, "1689556908129835");
    assert_eq!(t.message_template_name, "abandoned_cart");
    assert_eq!(t.message_template_language, "en");
    assert_eq!(t.reason.as_deref(), Some("INVALID_FORMAT"));
    assert_eq!(t.message_template_category.as_deref(), Some("MARKETING"));
    let r = t.rejection_info.unwrap();
    assert_eq!(
        r.reason.as_deref(),
        Some("Variable parameters are not sequential.")
    );
    assert!(
        r.recommendation
            .unwrap()
            .starts_with("Number your variables")
    );
}

#[test]
fn account_update_restriction() {
    let (n, v) = only_change("account_update_restriction.json");
    assert_eq!(n.entry[0].time, Some(1_752_000_000));
    let ChangeValue::AccountUpdate(a) = v else {
        panic!("{v:?}")
    };
    assert_eq!(a.event, "ACCOUNT_RESTRICTION");
    assert_eq!(a.phone_number.as_deref(), Some("15550783881"));
    assert_eq!(
        a.restriction_info,
        vec![
            Restriction {
                restriction_type: Some("RESTRICTED_BIZ_INITIATED_MESSAGING".into()),
                expiration: Some("2025-07-19T13:59:20+0000".into()),
                remediation: None,
            },
            Restriction {
                restriction_type: Some("RESTRICTED_ADD_PHONE_NUMBER_ACTION".into()),
                expiration: Some("2025-07-19T13:59:20+0000".into()),
                remediation: None,
            },
        ]
    );
    assert_eq!(a.violation_info, None);
    assert_eq!(a.ban_info, None);
}

#[test]
fn account_update_violation() {
    let (_, v) = only_change("account_update_violation.json");
    let ChangeValue::AccountUpdate(a) = v else {
        panic!("{v:?}")
    };
    assert_eq!(a.event, "ACCOUNT_VIOLATION");
    assert_eq!(
        a.violation_info,
        Some(ViolationInfo {
            violation_type: Some("SCAM".into()),
            remediation: None,
        })
    );
    assert!(a.restriction_info.is_empty());
}

#[test]
fn account_update_single_restriction_object_and_ban_info() {
    let c = change(
        "account_update",
        r#"{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"DISABLE","waba_ban_date":"October 9, 2023"},
            "restriction_info":{"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION","expiration":"x"}}"#,
    );
    let ChangeValue::AccountUpdate(a) = c.parse_value().unwrap() else {
        panic!()
    };
    assert_eq!(a.event, "DISABLED_UPDATE");
    assert_eq!(a.ban_info.unwrap()["waba_ban_state"], "DISABLE");
    assert_eq!(a.restriction_info.len(), 1);
}

#[test]
fn unknown_field_is_other() {
    let (n, v) = only_change("unknown_field.json");
    assert_eq!(
        v,
        ChangeValue::Other {
            field: "phone_number_quality_update".into()
        }
    );
    // the caller archives the raw value
    assert!(n.entry[0].changes[0].value.get().contains("TIER_10K"));
}

// ------------------------------------------------------------------------------------------
// Errors and leniency
// ------------------------------------------------------------------------------------------

fn change(field: &str, value: &str) -> Change {
    Change {
        field: field.into(),
        value: serde_json::value::RawValue::from_string(value.into()).unwrap(),
    }
}

fn raw_message(json: &str) -> RawMessage {
    RawMessage(serde_json::value::RawValue::from_string(json.into()).unwrap())
}

#[test]
fn not_json_bodies() {
    for body in [
        &b""[..],
        b"not json",
        b"<html></html>",
        b"{\"object\":\"whatsapp_business_account\",\"entry\":[",
        b"\xff\xfe",
    ] {
        match parse_notification(body) {
            Err(WebhookError::NotJson(msg)) => assert!(!msg.is_empty()),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
    let e = parse_notification(b"nope").unwrap_err();
    assert!(e.to_string().starts_with("body is not JSON: "));
}

#[test]
fn wrong_shape_bodies() {
    for body in [
        &b"[]"[..],
        b"42",
        b"\"whatsapp\"",
        b"{}",
        b"{\"entry\":[]}",
        b"{\"object\":\"whatsapp_business_account\"}",
        b"{\"object\":1,\"entry\":[]}",
        b"{\"object\":\"x\",\"entry\":{}}",
        b"{\"object\":\"x\",\"entry\":[{\"changes\":[]}]}",
        b"{\"object\":\"x\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"messages\"}]}]}",
    ] {
        match parse_notification(body) {
            Err(WebhookError::Shape(msg)) => assert!(!msg.is_empty()),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(body)),
        }
    }
    let e = parse_notification(b"[]").unwrap_err();
    assert!(e.to_string().starts_with("unexpected shape: "));
}

#[test]
fn minimal_notification_and_entry_time_forms() {
    let n = parse_notification(br#"{"object":"page","entry":[]}"#).unwrap();
    assert_eq!(n.object, "page");
    assert!(n.entry.is_empty());
    let n = parse_notification(
        br#"{"object":"x","entry":[{"id":"1","time":"1700000000"},{"id":"2","time":1700000001}]}"#,
    )
    .unwrap();
    assert_eq!(n.entry[0].time, Some(1_700_000_000));
    assert!(n.entry[0].changes.is_empty());
    assert_eq!(n.entry[1].time, Some(1_700_000_001));
}

#[test]
fn change_value_shape_errors() {
    // `messages` without metadata
    let e = change(
        "messages",
        r#"{"messaging_product":"whatsapp","messages":[]}"#,
    )
    .parse_value()
    .unwrap_err();
    assert!(matches!(e, WebhookError::Shape(_)), "{e:?}");
    // template update without event
    let e = change(
        "message_template_status_update",
        r#"{"message_template_id":1}"#,
    )
    .parse_value()
    .unwrap_err();
    assert!(matches!(e, WebhookError::Shape(_)), "{e:?}");
    // preference without value
    let e = change(
        "user_preferences",
        r#"{"metadata":{"phone_number_id":"1"},"user_preferences":[{"wa_id":"1","timestamp":1}]}"#,
    )
    .parse_value()
    .unwrap_err();
    assert!(matches!(e, WebhookError::Shape(_)), "{e:?}");
    // an unknown field never fails, whatever its value
    assert_eq!(
        change("history", "[1,2,3]").parse_value().unwrap(),
        ChangeValue::Other {
            field: "history".into()
        }
    );
    // a known field whose value is not its shape is a shape error (the caller archives it)
    let e = change("calls", "[1,2,3]").parse_value().unwrap_err();
    assert!(matches!(e, WebhookError::Shape(_)), "{e:?}");
}

#[test]
fn message_without_id_or_timestamp_is_an_error() {
    let e =
        raw_message(r#"{"from":"1","timestamp":"1700000000","type":"text","text":{"body":"x"}}"#)
            .parse()
            .unwrap_err();
    assert!(
        matches!(&e, WebhookError::Shape(m) if m.contains("id")),
        "{e:?}"
    );
    let e = raw_message(r#"{"from":"1","id":"wamid.A","type":"text","text":{"body":"x"}}"#)
        .parse()
        .unwrap_err();
    assert!(
        matches!(&e, WebhookError::Shape(m) if m.contains("timestamp")),
        "{e:?}"
    );
    let e = raw_message(r#"{"id":"wamid.A","timestamp":"soon","type":"text"}"#)
        .parse()
        .unwrap_err();
    assert!(matches!(e, WebhookError::Shape(_)), "{e:?}");
    let e = raw_message(r#"{"id":"wamid.A","timestamp":"1700000000","type":"text","text":"flat"}"#)
        .parse()
        .unwrap_err();
    assert!(matches!(e, WebhookError::Shape(_)), "{e:?}");
    // statuses too
    let raw = RawStatus(
        serde_json::value::RawValue::from_string(r#"{"id":"wamid.A","status":"sent"}"#.into())
            .unwrap(),
    );
    assert!(matches!(raw.parse(), Err(WebhookError::Shape(_))));
}

#[test]
fn lenient_forms() {
    // numeric timestamp, no `from`, text object missing, extra unknown fields
    let m =
        raw_message(r#"{"id":"wamid.A","timestamp":1700000000,"type":"text","brand_new":{"x":1}}"#)
            .parse()
            .unwrap();
    assert_eq!(m.timestamp, 1_700_000_000);
    assert_eq!(m.from, None);
    assert_eq!(
        m.content,
        MessageContent::Text {
            body: String::new()
        }
    );
    // no `type` at all
    let m = raw_message(r#"{"id":"wamid.A","timestamp":"1700000000"}"#)
        .parse()
        .unwrap();
    assert_eq!(m.kind, "");
    assert_eq!(
        m.content,
        MessageContent::Unknown {
            kind: String::new()
        }
    );
    // an interactive type we do not model
    let m = raw_message(
        r#"{"id":"wamid.A","timestamp":"1700000000","type":"interactive",
            "interactive":{"type":"call_permission_reply","call_permission_reply":{"response":"accept"}}}"#,
    )
    .parse()
    .unwrap();
    assert_eq!(
        m.content,
        MessageContent::Interactive(Interactive::Other {
            kind: "call_permission_reply".into()
        })
    );
    assert_eq!(m.content.summary(), "[interactive]");
    // location as strings, legacy `unknown` type, system with numeric new_wa_id
    let m = raw_message(
        r#"{"id":"wamid.A","timestamp":"1700000000","type":"location","location":{"latitude":"1.25","longitude":"-3"}}"#,
    )
    .parse()
    .unwrap();
    assert!(
        matches!(m.content, MessageContent::Location(ref l) if l.latitude == 1.25 && l.longitude == -3.0)
    );
    let m = raw_message(r#"{"id":"wamid.A","timestamp":"1700000000","type":"unknown"}"#)
        .parse()
        .unwrap();
    assert_eq!(m.content, MessageContent::Unsupported);
    let m = raw_message(
        r#"{"id":"wamid.A","timestamp":"1700000000","type":"system",
            "system":{"body":"changed","new_wa_id":12195555358,"type":"customer_changed_number"}}"#,
    )
    .parse()
    .unwrap();
    let MessageContent::System(s) = m.content else {
        panic!()
    };
    assert_eq!(s.new_wa_id.as_deref(), Some("12195555358"));
    // a reaction without emoji = removed
    let m = raw_message(
        r#"{"id":"wamid.A","timestamp":"1700000000","type":"reaction","reaction":{"message_id":"wamid.B"}}"#,
    )
    .parse()
    .unwrap();
    assert_eq!(
        m.content,
        MessageContent::Reaction {
            message_id: "wamid.B".into(),
            emoji: None
        }
    );
    assert_eq!(m.content.summary(), "[reaction removed]");
}

#[test]
fn summaries_are_one_line_and_bounded() {
    let long = MessageContent::Text {
        body: format!("line one\nline two {}", "é".repeat(500)),
    };
    let s = long.summary();
    assert_eq!(s.chars().count(), SUMMARY_MAX_CHARS);
    assert!(s.starts_with("line one line two é"));
    assert!(s.ends_with('…'));
    assert!(!s.contains('\n'));
    let exact = MessageContent::Text {
        body: "a".repeat(SUMMARY_MAX_CHARS),
    };
    assert_eq!(exact.summary(), "a".repeat(SUMMARY_MAX_CHARS));
    assert_eq!(
        MessageContent::Unknown {
            kind: "poll".into()
        }
        .summary(),
        "[poll]"
    );
    assert_eq!(MessageContent::Image(Media::default()).summary(), "[image]");
    assert_eq!(
        MessageContent::Interactive(Interactive::NfmReply {
            name: Some("address_message".into()),
            body: None,
            response_json: "{}".into()
        })
        .summary(),
        "[address]"
    );
    assert_eq!(
        MessageContent::System(SystemChange {
            kind: Some("user_changed_user_id".into()),
            ..Default::default()
        })
        .summary(),
        "[system] user_changed_user_id"
    );
}

#[test]
fn typed_values_round_trip_through_serde() {
    for name in [
        "contacts.json",
        "order.json",
        "referral_ctwa.json",
        "audio_voice.json",
    ] {
        let (_, m) = only_message(name);
        let json = serde_json::to_string(&m).unwrap();
        let back: InboundMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m, "{name}");
    }
    let (_, s) = only_status("status_sent.json");
    let back: Status = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    let n = notification("batch_multi.json");
    let back: Notification = serde_json::from_str(&serde_json::to_string(&n).unwrap()).unwrap();
    assert_eq!(back, n);
}

#[test]
fn account_update_as_meta_documents_it_integer_expiration_and_remediation() {
    let (_, v) = only_change("account_update_restriction_meta.json");
    let ChangeValue::AccountUpdate(a) = v else {
        panic!("{v:?}")
    };
    assert_eq!(a.event, "ACCOUNT_RESTRICTION");
    assert!(!a.restriction_info.is_empty());
    // Meta documents `expiration` as a Unix timestamp (a number): kept as text.
    assert!(
        a.restriction_info
            .iter()
            .filter_map(|r| r.expiration.as_deref())
            .all(|e| e.parse::<i64>().is_ok())
    );
    for f in [
        "account_update_violation_meta.json",
        "account_update_ban.json",
    ] {
        let (_, v) = only_change(f);
        assert!(matches!(v, ChangeValue::AccountUpdate(_)), "{f}: {v:?}");
    }
}

#[test]
fn template_quality_components_and_category_updates_parse() {
    let (_, v) = only_change("template_quality_update.json");
    let ChangeValue::TemplateQuality(q) = v else {
        panic!("{v:?}")
    };
    assert!(!q.message_template_id.is_empty());
    assert!(["GREEN", "YELLOW", "RED", "UNKNOWN"].contains(&q.new_quality_score.as_str()));
    let (_, v) = only_change("template_components_update.json");
    let ChangeValue::TemplateComponents(c) = v else {
        panic!("{v:?}")
    };
    assert!(c.message_template_element.is_some());
    assert!(!c.message_template_buttons.is_empty());
    let (_, v) = only_change("template_category_update.json");
    let ChangeValue::TemplateCategory(c) = v else {
        panic!("{v:?}")
    };
    assert!(c.previous_category.is_some() && c.correct_category.is_none());
    let (_, v) = only_change("template_category_update_impending.json");
    let ChangeValue::TemplateCategory(c) = v else {
        panic!("{v:?}")
    };
    assert!(c.correct_category.is_some() && c.category_update_timestamp.is_some());
}

#[test]
fn calls_events_and_statuses_parse() {
    use shared::meta::webhook::{CallEvent, CallStatus};
    let (_, v) = only_change("calls_connect.json");
    let ChangeValue::Calls(c) = v else {
        panic!("{v:?}")
    };
    let e: CallEvent = serde_json::from_str(c.calls[0].get()).unwrap();
    assert_eq!(e.event, "connect");
    assert!(e.user_initiated());
    assert!(e.customer().0.is_some() || e.customer().1.is_some());
    let (_, v) = only_change("calls_terminate.json");
    let ChangeValue::Calls(c) = v else {
        panic!("{v:?}")
    };
    let e: CallEvent = serde_json::from_str(c.calls[0].get()).unwrap();
    assert_eq!(e.event, "terminate");
    assert!(e.duration.is_some_and(|d| d > 0));
    assert!(!e.missed());
    let (_, v) = only_change("calls_status.json");
    let ChangeValue::Calls(c) = v else {
        panic!("{v:?}")
    };
    let st: CallStatus = serde_json::from_str(c.statuses[0].get()).unwrap();
    assert_eq!(st.kind.as_deref(), Some("call"));
    assert_eq!(st.status, "RINGING");
}
