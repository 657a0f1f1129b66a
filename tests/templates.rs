//! Message templates against a fake Graph API: the sync reads every page, flags templates
//! gone from Meta, status webhooks apply at once without touching the components, the lists
//! filter, `load_template` is required to load, a template send is checked before Meta is
//! called, and the local runner's scheduled tick runs the same sync.
use std::time::Duration;

use integration_tests::fake_graph::FakeGraph;
use integration_tests::local_runner::DEV_ACCESS_TOKEN;
use integration_tests::*;
use serde_json::{Value, json};
use shared::store::templates::TemplateStatusChange;

const PNID: &str = "106540352242922";
/// The WABA of the dev Meta secret the local runner seeds.
const WABA: &str = "102290129340398";
const VIEW: &str = "whatsapp_template:view";
const LOAD: &str = "whatsapp_template:load_template";

async fn stack_with_graph() -> (TestStack, FakeGraph) {
    start_with_graph(2000).await
}

fn tpl(
    id: u64,
    name: &str,
    language: &str,
    status: &str,
    category: &str,
    format: Option<&str>,
    components: Value,
) -> Value {
    let mut t = json!({"id": id.to_string(), "name": name, "language": language, "status": status,
                       "category": category, "components": components});
    if let Some(f) = format {
        t["parameter_format"] = json!(f);
    }
    t
}

/// Seven templates, as Meta lists them (3 pages of 3, 3 and 1).
fn catalogue() -> Vec<Value> {
    vec![
        tpl(
            1001,
            "order_update",
            "en_US",
            "APPROVED",
            "UTILITY",
            Some("POSITIONAL"),
            json!([{"type": "BODY", "text": "Your order {{1}} has shipped.", "example": {"body_text": [["4821"]]}}]),
        ),
        tpl(
            1002,
            "order_update",
            "es",
            "APPROVED",
            "UTILITY",
            Some("POSITIONAL"),
            json!([{"type": "BODY", "text": "Su pedido {{1}} fue enviado."}]),
        ),
        tpl(
            1003,
            "welcome_named",
            "en_US",
            "APPROVED",
            "MARKETING",
            Some("NAMED"),
            json!([{"type": "BODY", "text": "Hi {{first_name}}, welcome to {{shop}}!"}]),
        ),
        tpl(
            1004,
            "promo_summer",
            "en_US",
            "PAUSED",
            "MARKETING",
            None,
            json!([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Sale ends {{1}}"}]),
        ),
        tpl(
            1005,
            "shipping_link",
            "en_US",
            "APPROVED",
            "UTILITY",
            Some("POSITIONAL"),
            json!([{"type": "BODY", "text": "Track parcel {{1}}"},
                   {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://x.example/t/{{1}}"}]}]),
        ),
        tpl(
            1006,
            "abandoned_cart",
            "en",
            "PENDING",
            "MARKETING",
            Some("POSITIONAL"),
            json!([{"type": "BODY", "text": "You left {{1}} in your cart"}]),
        ),
        tpl(
            1007,
            "verify_code",
            "en_US",
            "APPROVED",
            "AUTHENTICATION",
            Some("POSITIONAL"),
            json!([{"type": "BODY", "text": "*{{1}}* is your code."},
                   {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy"}]}]),
        ),
    ]
}

async fn load(t: &TestStack) -> (u16, Value) {
    t.api(
        "POST",
        "/api/v1/templates/load",
        Some(&t.token(&[LOAD])),
        None,
    )
    .await
}

async fn view(t: &TestStack, path: &str) -> (u16, Value) {
    t.api("GET", path, Some(&t.token(&[VIEW])), None).await
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}/{}",
                t["name"].as_str().unwrap(),
                t["language"].as_str().unwrap()
            )
        })
        .collect()
}

fn template_status_payload(name: &str, language: &str, event: &str, reason: &str) -> Vec<u8> {
    template_status_at(
        name,
        language,
        event,
        reason,
        chrono::Utc::now().timestamp(),
    )
}

/// A status update whose `entry.time` (when it happened at Meta) is `time` (Unix seconds).
fn template_status_at(name: &str, language: &str, event: &str, reason: &str, time: i64) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": time,
        "changes": [{"field": "message_template_status_update", "value": {
            "event": event, "message_template_id": 1001, "message_template_name": name,
            "message_template_language": language, "reason": reason,
            "other_info": {"title": "FIRST_PAUSE", "description": "Paused for low quality"}}}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_loads_every_page_and_serves_the_templates() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    let (s, r) = load(&t).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (&r["loaded"], &r["created"], &r["updated"], &r["gone"]),
        (&json!(7), &json!(7), &json!(0), &json!(0)),
        "{r}"
    );
    // Three pages, each asked with the cursor of the one before, with the token, for our WABA.
    let reqs = graph.template_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert_eq!(reqs[0].path, format!("/v25.0/{WABA}/message_templates"));
    assert_eq!(reqs[0].body.get("after"), None);
    assert_eq!(reqs[1].body["after"], "QVFIU00003");
    assert_eq!(reqs[2].body["after"], "QVFIU00006");
    let bearer = format!("Bearer {DEV_ACCESS_TOKEN}");
    assert!(
        reqs.iter()
            .all(|r| r.authorization.as_deref() == Some(bearer.as_str()))
    );
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());
    assert!(!r.to_string().contains(DEV_ACCESS_TOKEN));

    let (s, list) = view(&t, "/api/v1/templates").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(
        names(&list),
        [
            "abandoned_cart/en",
            "order_update/en_US",
            "order_update/es",
            "promo_summer/en_US",
            "shipping_link/en_US",
            "verify_code/en_US",
            "welcome_named/en_US"
        ]
    );
    assert_eq!(list["last_sync"]["loaded"], 7);
    let (s, w) = view(&t, "/api/v1/templates/welcome_named/en_US").await;
    assert_eq!(s, 200, "{w}");
    assert_eq!(w["id"], "1003");
    assert_eq!(w["category"], "MARKETING");
    assert_eq!(w["status"], "APPROVED");
    assert_eq!(w["parameter_format"], "NAMED");
    assert_eq!(
        w["components"][0]["text"],
        "Hi {{first_name}}, welcome to {{shop}}!"
    );
    assert_eq!(w["parameters"]["body"], json!(["first_name", "shop"]));
    assert_eq!(w["sendable"], true);
    assert_eq!(w["gone"], false);
    let (_, p) = view(&t, "/api/v1/templates/promo_summer/en_US").await;
    assert_eq!(p["parameter_format"], "POSITIONAL");
    assert_eq!(p["parameters"]["header"], json!({"format": "IMAGE"}));
    assert_eq!(p["sendable"], false);
    // Unknown language: 404 naming the languages it exists in.
    let (s, e) = view(&t, "/api/v1/templates/order_update/fr").await;
    assert_eq!(s, 404, "{e}");
    assert_eq!(e["error"]["code"], "template_not_found");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("en_US, es"),
        "{e}"
    );

    // Nothing changed at Meta: nothing written.
    let (s, r) = load(&t).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (&r["created"], &r["updated"], &r["unchanged"]),
        (&json!(0), &json!(0), &json!(7))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_gone_from_meta_is_flagged_and_kept() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    assert_eq!(load(&t).await.0, 200);
    let mut next: Vec<Value> = catalogue()
        .into_iter()
        .filter(|x| x["name"] != "promo_summer")
        .collect();
    next[0]["status"] = json!("PAUSED");
    graph.set_templates(next);
    let (s, r) = load(&t).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        (&r["loaded"], &r["updated"], &r["gone"]),
        (&json!(6), &json!(1), &json!(1)),
        "{r}"
    );
    let (s, p) = view(&t, "/api/v1/templates/promo_summer/en_US").await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["gone"], true);
    assert_eq!(p["status"], "DELETED");
    assert!(p["gone_at"].is_i64());
    assert_eq!(
        p["components"].as_array().unwrap().len(),
        2,
        "kept with its components"
    );
    let (_, o) = view(&t, "/api/v1/templates/order_update/en_US").await;
    assert_eq!(o["status"], "PAUSED");
    let (_, list) = view(&t, "/api/v1/templates").await;
    assert_eq!(names(&list).len(), 6);
    assert!(!names(&list).contains(&"promo_summer/en_US".to_string()));
    let (_, all) = view(&t, "/api/v1/templates?include_gone=true").await;
    assert_eq!(names(&all).len(), 7);

    // Meta refuses: surfaced, and nothing is flagged gone or changed.
    graph.set_templates(vec![]);
    graph.fail_templates(Some((400, 190)));
    let (s, e) = load(&t).await;
    assert_eq!(s, 502, "{e}");
    assert_eq!(e["error"]["code"], "meta_error");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("190") && msg.contains("nothing was changed"),
        "{e}"
    );
    assert!(!e.to_string().contains(DEV_ACCESS_TOKEN));
    let (_, list) = view(&t, "/api/v1/templates").await;
    assert_eq!(names(&list).len(), 6, "a failed load flags nothing gone");

    // It comes back at Meta: listed again, no longer gone.
    graph.set_templates(catalogue());
    let (_, r) = load(&t).await;
    assert_eq!((&r["created"], &r["gone"]), (&json!(0), &json!(0)), "{r}");
    let (_, p) = view(&t, "/api/v1/templates/promo_summer/en_US").await;
    assert_eq!(
        (&p["gone"], &p["status"]),
        (&json!(false), &json!("PAUSED"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_webhook_applies_at_once_and_keeps_the_components() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    assert_eq!(load(&t).await.0, 200);
    let (s, _) = t
        .post_signed(&template_status_payload(
            "order_update",
            "en_US",
            "PAUSED",
            "NONE",
        ))
        .await;
    assert_eq!(s, 200);
    let o = eventually(Duration::from_secs(20), || async {
        let (_, o) = view(&t, "/api/v1/templates/order_update/en_US").await;
        (o["status"] == "PAUSED").then_some(o)
    })
    .await
    .expect("the webhook's status applied");
    assert_eq!(o["reason"], "NONE");
    assert_eq!(o["sendable"], false);
    assert_eq!(
        o["components"][0]["text"], "Your order {{1}} has shipped.",
        "components kept"
    );
    assert_eq!(o["id"], "1001");
    // Meta's fixture: abandoned_cart (en) rejected, with its reason, as it happens now (after
    // the sync: a change older than what the sync saw would not undo it).
    let mut rejected: Value =
        serde_json::from_slice(&fixture("template_status_rejected.json")).unwrap();
    rejected["entry"][0]["time"] = json!(chrono::Utc::now().timestamp());
    t.post_signed(rejected.to_string().as_bytes()).await;
    let a = eventually(Duration::from_secs(20), || async {
        let (_, a) = view(&t, "/api/v1/templates/abandoned_cart/en").await;
        (a["status"] == "REJECTED").then_some(a)
    })
    .await
    .expect("rejection applied");
    assert_eq!(a["reason"], "INVALID_FORMAT");
    assert_eq!(a["components"][0]["text"], "You left {{1}} in your cart");

    // Newest wins: a status older than the stored one changes nothing.
    let applied = t
        .store()
        .apply_template_status(&TemplateStatusChange {
            waba_id: WABA,
            name: "order_update",
            language: "en_US",
            event: "DISABLED",
            reason: None,
            template_id: None,
            category: None,
            raw: "{}",
            at_ms: 1_000,
        })
        .await
        .unwrap();
    assert!(!applied);
    let (_, o) = view(&t, "/api/v1/templates/order_update/en_US").await;
    assert_eq!(o["status"], "PAUSED");

    // A later sync is newer than the webhooks: Meta's list is the truth again. (Meta's
    // `entry.time` is whole seconds, taken as the end of its second: a sync started within the
    // same second would not be newer.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, r) = load(&t).await;
    assert_eq!(r["updated"], 2, "{r}");
    let (_, o) = view(&t, "/api/v1/templates/order_update/en_US").await;
    assert_eq!(
        (&o["status"], &o["components"][0]["text"]),
        (&json!("APPROVED"), &json!("Your order {{1}} has shipped."))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_filter_by_status_language_category_and_name() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    assert_eq!(load(&t).await.0, 200);
    let q = |query: &'static str| {
        let t = &t;
        async move {
            let (s, v) = view(t, &format!("/api/v1/templates?{query}")).await;
            assert_eq!(s, 200, "{query}: {v}");
            names(&v)
        }
    };
    assert_eq!(q("status=PAUSED").await, ["promo_summer/en_US"]);
    assert_eq!(q("language=es").await, ["order_update/es"]);
    assert_eq!(
        q("category=marketing").await,
        [
            "abandoned_cart/en",
            "promo_summer/en_US",
            "welcome_named/en_US"
        ]
    );
    assert_eq!(
        q("name=order").await,
        ["order_update/en_US", "order_update/es"]
    );
    assert_eq!(
        q("sendable=true").await,
        [
            "order_update/en_US",
            "order_update/es",
            "shipping_link/en_US",
            "verify_code/en_US",
            "welcome_named/en_US"
        ]
    );
    assert_eq!(
        q("sendable=true&language=en_US&category=UTILITY").await,
        ["order_update/en_US", "shipping_link/en_US"]
    );
    // Pages of 3 walk the whole list once, in order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => "/api/v1/templates?limit=3".to_string(),
            Some(c) => format!("/api/v1/templates?limit=3&cursor={c}"),
        };
        let (s, v) = view(&t, &path).await;
        assert_eq!(s, 200, "{v}");
        seen.extend(names(&v));
        cursor = v["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
    assert_eq!(seen[0], "abandoned_cart/en");
    // A cursor is only good for the filters it was made for.
    let (_, v) = view(&t, "/api/v1/templates?limit=3").await;
    let c = v["next_cursor"].as_str().unwrap();
    let (s, e) = view(
        &t,
        &format!("/api/v1/templates?limit=3&status=APPROVED&cursor={c}"),
    )
    .await;
    assert_eq!((s, &e["error"]["code"]), (400, &json!("invalid_cursor")));
    // Bad filters name the field.
    for (query, field) in [
        ("status=not%20a%20status", "status"),
        ("language=en%23US", "language"),
        ("sendable=maybe", "sendable"),
        ("sendable=true&status=PAUSED", "sendable"),
        ("limit=0", "limit"),
    ] {
        let (s, e) = view(&t, &format!("/api/v1/templates?{query}")).await;
        assert_eq!(s, 400, "{query}: {e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(field),
            "{query}: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn loading_needs_load_template_and_viewing_needs_view() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    let routes = [
        ("GET", "/api/v1/templates", VIEW),
        ("GET", "/api/v1/templates/order_update/en_US", VIEW),
        ("POST", "/api/v1/templates/load", LOAD),
    ];
    for (method, path, needed) in routes {
        let (s, _) = t.api(method, path, None, None).await;
        assert_eq!(s, 401, "{method} {path} without a token");
        for perms in [
            vec!["whatsapp_chat:view"],
            vec![if needed == VIEW { LOAD } else { VIEW }],
        ] {
            let (s, e) = t.api(method, path, Some(&t.token(&perms)), None).await;
            assert_eq!(s, 403, "{method} {path} with {perms:?}: {e}");
            assert_eq!(e["error"]["code"], "forbidden", "{e}");
            assert!(
                e["error"]["message"].as_str().unwrap().contains(needed),
                "{e}"
            );
        }
    }
    assert!(
        graph.template_requests().is_empty(),
        "nothing loaded without the permission"
    );
    // With the permission (or as admin) it works.
    let (s, r) = load(&t).await;
    assert_eq!(s, 200, "{r}");
    for (method, path, needed) in routes {
        let (s, v) = t.api(method, path, Some(&t.token(&[needed])), None).await;
        assert_eq!(s, 200, "{method} {path}: {v}");
        let (s, v) = t.api(method, path, Some(&t.admin_token()), None).await;
        assert_eq!(s, 200, "{method} {path} as admin: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_send_is_checked_against_the_stored_template_before_meta() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    assert_eq!(load(&t).await.0, 200);
    let now = chrono::Utc::now().timestamp();
    t.post_signed(&text_payload(
        PNID,
        "15550404040",
        "Cust",
        "wamid.in-tpl",
        now,
        "hello",
    ))
    .await;
    let conv = t.conversation_of("15550404040").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let send = |key: &'static str, content: Value| {
        let (t, conv) = (&t, conv.clone());
        async move {
            let r = t
                .http
                .post(format!(
                    "{}/api/v1/conversations/{conv}/messages",
                    t.info().http_base
                ))
                .bearer_auth(t.token(&["whatsapp_chat:view"]))
                .header("idempotency-key", key)
                .json(&json!({"content": content}))
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let text = |s: &str| json!({"type": "text", "text": s});
    let order = |params: Vec<Value>| {
        json!({"type": "template", "name": "order_update", "language": "en_US",
               "components": [{"type": "body", "parameters": params}]})
    };
    let sends = || {
        graph
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/messages"))
            .count()
    };

    // Wrong parameter count: refused before any intent or send.
    let (s, e) = send("k-1", order(vec![text("4821"), text("extra")])).await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["error"]["code"], "template_invalid");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("content.components[0].parameters")
            && msg.contains("1 parameter ({{1}}); 2 given"),
        "{e}"
    );
    assert_eq!(sends(), 0, "Meta is not called");
    // Unknown template, unknown language, not approved, positional given to a named template,
    // dynamic URL button missing.
    let cases = [
        (
            json!({"type": "template", "name": "no_such_template", "language": "en_US"}),
            404,
            "template_not_found",
            "not known",
        ),
        (
            json!({"type": "template", "name": "order_update", "language": "fr",
                "components": [{"type": "body", "parameters": [text("1")]}]}),
            404,
            "template_not_found",
            "en_US, es",
        ),
        (
            json!({"type": "template", "name": "promo_summer", "language": "en_US"}),
            422,
            "template_invalid",
            "PAUSED, not APPROVED",
        ),
        (
            json!({"type": "template", "name": "welcome_named", "language": "en_US",
                "components": [{"type": "body", "parameters": [text("Ann"), text("Shop")]}]}),
            422,
            "template_invalid",
            "named parameters",
        ),
        (
            json!({"type": "template", "name": "shipping_link", "language": "en_US",
                "components": [{"type": "body", "parameters": [text("P1")]}]}),
            422,
            "template_invalid",
            "button 0",
        ),
    ];
    for (i, (content, status, code, words)) in cases.into_iter().enumerate() {
        let key: &'static str = ["c0", "c1", "c2", "c3", "c4"][i];
        let (s, e) = send(key, content).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (status, Some(code)),
            "case {i}: {e}"
        );
        assert!(
            e["error"]["message"].as_str().unwrap().contains(words),
            "case {i}: {e}"
        );
    }
    assert_eq!(sends(), 0, "Meta is not called");
    // The corrected request, same idempotency key: nothing was recorded, so it goes, once.
    let (s, v) = send("k-1", order(vec![text("4821")])).await;
    assert_eq!(s, 201, "{v}");
    let named = json!({"type": "template", "name": "welcome_named", "language": "en_US",
        "components": [{"type": "body", "parameters": [
            {"type": "text", "text": "Ann", "parameter_name": "first_name"},
            {"type": "text", "text": "Shop", "parameter_name": "shop"}]}]});
    let (s, v) = send("k-2", named).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(sends(), 2);
    let reqs: Vec<_> = graph
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/messages"))
        .collect();
    assert_eq!(reqs[0].body["template"]["name"], "order_update");
    assert_eq!(
        reqs[1].body["template"]["components"][0]["parameters"][1]["parameter_name"],
        "shop"
    );
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduled_tick_of_the_local_runner_runs_the_sync() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    let report = t
        .stack
        .run_schedule("TemplateSyncFunction")
        .await
        .expect("scheduled sync runs");
    assert_eq!(
        (&report["loaded"], &report["created"]),
        (&json!(7), &json!(7)),
        "{report}"
    );
    assert_eq!(graph.template_requests().len(), 3);
    let (_, list) = view(&t, "/api/v1/templates?sendable=true").await;
    assert_eq!(names(&list).len(), 5);
    // A failure fails the run (the Lambda's Errors metric), naming Meta's code.
    graph.fail_templates(Some((401, 190)));
    let e = t
        .stack
        .run_schedule("TemplateSyncFunction")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("190"), "{e}");
    assert!(!e.contains(DEV_ACCESS_TOKEN));
    assert!(t.stack.run_schedule("NoSuchFunction").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_for_a_template_never_loaded_is_kept_but_not_sendable() {
    let (t, _graph) = stack_with_graph().await;
    for f in [
        "template_status_approved.json",
        "template_status_rejected.json",
    ] {
        let (s, b) = t.post_signed(&fixture(f)).await;
        assert_eq!(s, 200, "{f}: {b}");
    }
    let o = eventually(Duration::from_secs(20), || async {
        let (s, o) = view(&t, "/api/v1/templates/order_confirmation/en_US").await;
        (s == 200).then_some(o)
    })
    .await
    .expect("status stored");
    assert_eq!(
        (&o["status"], &o["id"], &o["category"]),
        (
            &json!("APPROVED"),
            &json!("1689556908129832"),
            &json!("UTILITY")
        )
    );
    assert_eq!(o["components"], json!([]));
    assert_eq!(
        o["sendable"], false,
        "not loaded: its parameters are unknown"
    );
    let (_, list) = view(&t, "/api/v1/templates?sendable=true").await;
    assert!(names(&list).is_empty(), "{list}");
    let (_, list) = view(&t, "/api/v1/templates?status=APPROVED").await;
    assert_eq!(names(&list), ["order_confirmation/en_US"]);
    eventually(Duration::from_secs(20), || async {
        (view(&t, "/api/v1/templates/abandoned_cart/en").await.0 == 200).then_some(())
    })
    .await
    .expect("rejection stored");
    // Acknowledged (deleted from the queue) just after it was stored.
    eventually(Duration::from_secs(10), || async {
        (t.queue_depth("InboundQueue").await == (0, 0)).then_some(())
    })
    .await
    .expect("nothing left on the queue");
    assert_eq!(t.queue_depth("InboundDLQ").await, (0, 0));
    assert!(t.archived("parked/").await.is_empty());
    // Sending it waits for a load: its parameters are not known yet.
    let now = chrono::Utc::now().timestamp();
    t.post_signed(&text_payload(
        PNID,
        "15550505050",
        "Cust",
        "wamid.in-oc",
        now,
        "hi",
    ))
    .await;
    let conv = t.conversation_of("15550505050").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, e) = t
        .api(
            "POST",
            &format!("/api/v1/conversations/{conv}/messages"),
            Some(&t.token(&["whatsapp_chat:view"])),
            Some(json!({"content": {"type": "template", "name": "order_confirmation", "language": "en_US"}})),
        )
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (422, &json!("template_invalid")),
        "{e}"
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not been loaded"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resent_older_status_never_undoes_a_newer_one() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    assert_eq!(load(&t).await.0, 200);
    let now = chrono::Utc::now().timestamp();
    // Paused now; then Meta re-sends the approval it made an hour ago (delivery is unordered).
    let (s, _) = t
        .post_signed(&template_status_at(
            "order_update",
            "en_US",
            "PAUSED",
            "NONE",
            now,
        ))
        .await;
    assert_eq!(s, 200);
    eventually(Duration::from_secs(20), || async {
        let (_, o) = view(&t, "/api/v1/templates/order_update/en_US").await;
        (o["status"] == "PAUSED").then_some(())
    })
    .await
    .expect("paused");
    let (s, _) = t
        .post_signed(&template_status_at(
            "order_update",
            "en_US",
            "APPROVED",
            "NONE",
            now - 3600,
        ))
        .await;
    assert_eq!(s, 200);
    eventually(Duration::from_secs(20), || async {
        (t.queue_depth("InboundQueue").await == (0, 0)).then_some(())
    })
    .await
    .expect("processed");
    let (_, o) = view(&t, "/api/v1/templates/order_update/en_US").await;
    assert_eq!(o["status"], "PAUSED", "{o}");
}

fn template_change(field: &str, value: Value) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": WABA, "time": chrono::Utc::now().timestamp(),
        "changes": [{"field": field, "value": value}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn quality_components_and_category_webhooks_update_the_stored_template() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    assert_eq!(load(&t).await.0, 200);
    let tpl = |extra: Value| {
        let mut v = json!({"message_template_id": 1001, "message_template_name": "order_update",
                           "message_template_language": "en_US"});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    for (field, value) in [
        (
            "message_template_quality_update",
            tpl(json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW"})),
        ),
        (
            "template_category_update",
            tpl(json!({"previous_category": "UTILITY", "new_category": "MARKETING"})),
        ),
        (
            "message_template_components_update",
            tpl(
                json!({"message_template_element": "Hello {{1}}, order {{2}} has shipped",
                       "message_template_footer": "Thanks"}),
            ),
        ),
    ] {
        let (s, b) = t.post_signed(&template_change(field, value)).await;
        assert_eq!(s, 200, "{field}: {b}");
    }
    let o = eventually(Duration::from_secs(20), || async {
        let (_, o) = view(&t, "/api/v1/templates/order_update/en_US").await;
        (o["quality"]["score"] == "YELLOW"
            && o["category"] == "MARKETING"
            && !o["components_at"].is_null())
        .then_some(o)
    })
    .await
    .expect("all three applied");
    assert_eq!(o["quality"]["previous"], "GREEN");
    assert_eq!(o["category_previous"], "UTILITY");
    let body = o["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "BODY")
        .unwrap()
        .clone();
    assert_eq!(body["text"], "Hello {{1}}, order {{2}} has shipped");
    assert!(
        o["components"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "FOOTER" && c["text"] == "Thanks")
    );
    // An announced category change is shown with when it takes effect.
    let (s, _) = t
        .post_signed(&template_change(
            "template_category_update",
            tpl(
                json!({"new_category": "MARKETING", "correct_category": "UTILITY",
                       "category_update_timestamp": chrono::Utc::now().timestamp() + 86_400}),
            ),
        ))
        .await;
    assert_eq!(s, 200);
    let o = eventually(Duration::from_secs(20), || async {
        let (_, o) = view(&t, "/api/v1/templates/order_update/en_US").await;
        (o["category_change"]["to"] == "UTILITY").then_some(o)
    })
    .await
    .expect("impending change recorded");
    assert!(o["category_change"]["effective_at"].as_i64().unwrap() > 0);
    assert_eq!(
        o["category"], "MARKETING",
        "unchanged until it takes effect"
    );
    assert!(t.archived("raw/").await.is_empty(), "nothing archived");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_failing_on_a_later_page_changes_nothing() {
    let (t, graph) = stack_with_graph().await;
    graph.set_templates(catalogue());
    assert_eq!(load(&t).await.0, 200);
    // Meta now lists one template fewer and a changed status, but fails on the second page.
    let mut next: Vec<Value> = catalogue()
        .into_iter()
        .filter(|x| x["name"] != "promo_summer")
        .collect();
    next[0]["status"] = json!("PAUSED");
    let first_name = next[0]["name"].as_str().unwrap().to_string();
    let first_lang = next[0]["language"].as_str().unwrap().to_string();
    graph.set_templates(next);
    graph.fail_later_template_pages(Some((500, 2)));
    let (s, e) = load(&t).await;
    assert!(s >= 500, "{s} {e}");
    assert!(
        graph.template_requests().len() >= 5,
        "the first page was read before the failure"
    );
    // Only a complete list is applied: nothing gone, nothing changed.
    let (_, all) = view(&t, "/api/v1/templates?include_gone=true").await;
    assert_eq!(names(&all).len(), 7);
    let (_, p) = view(&t, "/api/v1/templates/promo_summer/en_US").await;
    assert_eq!(p["gone"], false);
    let (_, o) = view(&t, &format!("/api/v1/templates/{first_name}/{first_lang}")).await;
    assert_ne!(o["status"], "PAUSED", "{o}");
}
