//! Settings: the Meta connection (stored in Secrets Manager, read back masked, effective at
//! once), the connection test against a fake Graph API, the notification credentials with
//! their fallback to the inbox's, and the AI settings. Admin only.
use std::time::Duration;

use integration_tests::fake_graph::{FakeGraph, SUBSCRIBED_APP_ID};
use integration_tests::local_runner::{DEV_ACCESS_TOKEN, DEV_APP_SECRET, DEV_VERIFY_TOKEN};
use integration_tests::*;
use serde_json::{Value, json};

const PNID: &str = "106540352242922";
const WABA: &str = "102290129340398";
const NEW_TOKEN: &str = "EAAGnewSystemUserTokenForTheInbox0123456789";
const NEW_VERIFY: &str = "new-verify-token-4821";
const NEW_APP_SECRET: &str = "0123456789abcdef0123456789abcdef";
const NOTIFY_TOKEN: &str = "EAAGnotificationModuleToken9876543210abcdef";
const AI_KEY: &str = "sk-ant-api03-very-secret-key-value";

async fn stack_with_graph() -> (TestStack, FakeGraph) {
    start_with_graph(700).await
}

/// An admin call whose answer must not show any of the secrets in clear.
async fn admin(t: &TestStack, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let (s, v) = t.api(method, path, Some(&t.admin_token()), body).await;
    let text = v.to_string();
    for secret in [
        DEV_ACCESS_TOKEN,
        DEV_APP_SECRET,
        DEV_VERIFY_TOKEN,
        NEW_TOKEN,
        NEW_VERIFY,
        NEW_APP_SECRET,
        NOTIFY_TOKEN,
        AI_KEY,
    ] {
        assert!(
            !text.contains(secret),
            "{method} {path} shows a secret: {text}"
        );
    }
    (s, v)
}

async fn stored_secret(t: &TestStack, logical_id: &str) -> Value {
    let sm = aws_sdk_secretsmanager::Client::new(&t.stack.aws);
    let out = sm
        .get_secret_value()
        .secret_id(&t.info().resource(logical_id).arn)
        .send()
        .await
        .expect("secret readable");
    serde_json::from_str(out.secret_string().unwrap_or("{}")).expect("secret JSON")
}

async fn verify(t: &TestStack, token: &str) -> (u16, String) {
    let r = t
        .http
        .get(&t.info().webhook_url)
        .query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", token),
            ("hub.challenge", "1158201444"),
        ])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

fn mask(secret: &str) -> String {
    shared::secrets::Redacted::new(secret).masked()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_is_stored_read_back_masked_and_effective_at_once() {
    let (t, graph) = stack_with_graph().await;
    // The webhook has the current verify token cached, the staff API the current access token.
    assert_eq!(verify(&t, DEV_VERIFY_TOKEN).await.0, 200);
    t.post_signed(&text_payload(
        PNID,
        "15550404040",
        "Ana",
        "wamid.settings-0",
        chrono::Utc::now().timestamp(),
        "hi",
    ))
    .await;
    let conv = t.conversation_of("15550404040").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let send = |key: &'static str| {
        let (t, conv, graph) = (&t, conv.clone(), &graph);
        async move {
            let r = t
                .http
                .post(format!(
                    "{}/api/v1/conversations/{conv}/messages",
                    t.info().http_base
                ))
                .bearer_auth(t.token(&["whatsapp_chat:view"]))
                .header("idempotency-key", key)
                .json(&json!({"content": {"type": "text", "body": "hello"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 201);
            graph
                .requests()
                .last()
                .cloned()
                .expect("a send")
                .authorization
        }
    };
    assert_eq!(
        send("before").await,
        Some(format!("Bearer {DEV_ACCESS_TOKEN}"))
    );
    let (s, v) = admin(&t, "GET", "/api/v1/settings/connection", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["waba_id"], WABA);
    assert_eq!(v["access_token"], mask(DEV_ACCESS_TOKEN).as_str());
    assert_eq!(v["set"]["access_token"], true);
    assert_eq!(v["set"]["verify_token"], true);

    let (s, v) = admin(
        &t,
        "PUT",
        "/api/v1/settings/connection",
        Some(
            json!({"access_token": NEW_TOKEN, "verify_token": NEW_VERIFY,
                    "app_secret": NEW_APP_SECRET, "business_id": "5550001"}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["access_token"], mask(NEW_TOKEN).as_str());
    assert_eq!(v["business_id"], "5550001");
    assert_eq!(
        v["waba_id"], WABA,
        "fields absent from the PUT keep their value"
    );
    // Replies use the new access token at once (the staff API's cache was invalidated).
    assert_eq!(send("after").await, Some(format!("Bearer {NEW_TOKEN}")));
    let (_, again) = admin(&t, "GET", "/api/v1/settings/connection", None).await;
    assert_eq!(again, v);

    // Secrets Manager holds the new values, under the keys MetaSecrets reads.
    let stored = stored_secret(&t, "MetaSecret").await;
    assert_eq!(stored["access_token"], NEW_TOKEN);
    assert_eq!(stored["verify_token"], NEW_VERIFY);
    assert_eq!(stored["app_secret"], NEW_APP_SECRET);
    assert_eq!(stored["business_id"], "5550001");
    assert_eq!(stored["waba_id"], WABA);
    assert_eq!(stored["app_id"], "dev-app");
    let typed: shared::secrets::MetaSecrets = serde_json::from_value(stored.clone()).unwrap();
    assert_eq!(typed.access_token.expose(), NEW_TOKEN);

    // Meta's verification GET honours the new token at once (the webhook re-reads on a
    // mismatch); the old one stops working once the webhook's short cache expires.
    assert_eq!(
        verify(&t, NEW_VERIFY).await,
        (200, "1158201444".to_string())
    );
    let refused = eventually(Duration::from_secs(10), || async {
        (verify(&t, DEV_VERIFY_TOKEN).await.0 == 403).then_some(())
    })
    .await;
    assert!(refused.is_some(), "the old verify token is refused");
    // A webhook POST signed with the new app secret is accepted.
    let body = text_payload(
        PNID,
        "15550404040",
        "Ana",
        "wamid.settings-1",
        chrono::Utc::now().timestamp(),
        "hi again",
    );
    let sig = shared::meta::signature::sign(NEW_APP_SECRET.as_bytes(), &body);
    assert_eq!(t.post_raw(body, Some(&sig)).await.0, 200);

    // Sending a mask back keeps the value; a wrong mask, a bad id or an unknown field is refused.
    let (s, v) = admin(
        &t,
        "PUT",
        "/api/v1/settings/connection",
        Some(json!({"access_token": mask(NEW_TOKEN), "app_id": "777"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        stored_secret(&t, "MetaSecret").await["access_token"],
        NEW_TOKEN
    );
    assert_eq!(stored_secret(&t, "MetaSecret").await["app_id"], "777");
    for (body, field) in [
        (json!({"access_token": "••••••••zzzz"}), "access_token"),
        (json!({"waba_id": "12/34"}), "waba_id"),
        (json!({"verify_token": "has space"}), "verify_token"),
        (json!({"app_secret": 42}), "app_secret"),
        (json!({"token": "x"}), "unknown field \"token\""),
    ] {
        let (s, v) = admin(&t, "PUT", "/api/v1/settings/connection", Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(field),
            "{body}: {v}"
        );
    }
    assert_eq!(
        stored_secret(&t, "MetaSecret").await["access_token"],
        NEW_TOKEN
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_settings_route_is_admin_only() {
    let (t, _graph) = stack_with_graph().await;
    let all_perms = [
        "whatsapp_chat:view",
        "whatsapp_bot:create",
        "whatsapp_bot:edit",
        "whatsapp_template:view",
        "whatsapp_template:load_template",
        "whatsapp_campaign:edit",
        "whatsapp_numbers:view",
        "whatsapp_numbers:edit",
        "whatsapp_contacts:edit",
        "whatsapp_groups:edit",
        "whatsapp_log_activity:view",
        "whatsapp_log_activity:clear_log",
        "quickreplies:edit",
    ];
    let staff = t.token(&all_perms);
    let routes = [
        ("GET", "/api/v1/settings/connection", None),
        (
            "PUT",
            "/api/v1/settings/connection",
            Some(json!({"access_token": "EAAGhijack"})),
        ),
        ("POST", "/api/v1/settings/connection/test", None),
        ("GET", "/api/v1/settings/notifications-connection", None),
        (
            "PUT",
            "/api/v1/settings/notifications-connection",
            Some(json!({"access_token": "EAAGhijack"})),
        ),
        (
            "GET",
            "/api/v1/settings/notifications-connection/effective",
            None,
        ),
        (
            "POST",
            "/api/v1/settings/notifications-connection/test",
            None,
        ),
        ("GET", "/api/v1/settings/ai", None),
        ("PUT", "/api/v1/settings/ai", Some(json!({"mode": "auto"}))),
    ];
    for (method, path, body) in &routes {
        let (s, v) = t.api(method, path, Some(&staff), body.clone()).await;
        assert_eq!(s, 403, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "forbidden", "{method} {path}: {v}");
        let (s, _) = t.api(method, path, None, body.clone()).await;
        assert_eq!(s, 401, "{method} {path} without a token");
        let (s, v) = admin(&t, method, path, None).await;
        assert_eq!(s, 200, "{method} {path} as admin: {v}");
    }
    // Nothing was changed by the refused calls.
    assert_eq!(
        stored_secret(&t, "MetaSecret").await["access_token"],
        DEV_ACCESS_TOKEN
    );
    assert_eq!(stored_secret(&t, "NotifySecret").await, json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connection_test_reports_what_works_and_meta_auth_errors() {
    let (t, graph) = stack_with_graph().await;
    graph.set_account(WABA, &[PNID]);
    graph.set_app_secret(Some(DEV_APP_SECRET));
    let (s, v) = admin(&t, "POST", "/api/v1/settings/connection/test", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["credentials"], "inbox");
    let check = |v: &Value, name: &str| -> Value {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no check {name}: {v}"))
    };
    for name in [
        "access_token",
        "app_secret",
        "waba",
        "phone_numbers",
        "webhook_subscription",
        "verify_token",
    ] {
        assert_eq!(check(&v, name)["ok"], true, "{name}: {v:#}");
    }
    assert_eq!(check(&v, "phone_numbers")["numbers"][0]["id"], PNID);
    assert!(
        check(&v, "webhook_subscription")["detail"]
            .as_str()
            .unwrap()
            .contains(SUBSCRIBED_APP_ID)
    );
    assert!(
        check(&v, "waba")["detail"]
            .as_str()
            .unwrap()
            .contains("Fake WABA")
    );
    // Meta was asked with the stored token, for the documented paths.
    let reqs = graph.requests();
    assert!(
        reqs.iter()
            .all(|r| r.authorization.as_deref()
                == Some(format!("Bearer {DEV_ACCESS_TOKEN}").as_str()))
    );
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    for p in [
        "/v25.0/me".to_string(),
        format!("/v25.0/{WABA}"),
        format!("/v25.0/{WABA}/phone_numbers"),
        format!("/v25.0/{WABA}/subscribed_apps"),
    ] {
        assert!(paths.contains(&p.as_str()), "{p} in {paths:?}");
    }
    assert!(graph.problems().is_empty(), "{:?}", graph.problems());

    // Values given in the body are tested, not saved: a wrong app secret fails its check.
    let (s, v) = admin(
        &t,
        "POST",
        "/api/v1/settings/connection/test",
        Some(json!({"app_secret": NEW_APP_SECRET})),
    )
    .await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(false)), "{v:#}");
    let app = check(&v, "app_secret");
    assert_eq!(app["ok"], false);
    assert_eq!(app["error"]["code"], 100);
    assert_eq!(check(&v, "access_token")["ok"], true);
    assert_eq!(
        stored_secret(&t, "MetaSecret").await["app_secret"],
        DEV_APP_SECRET
    );

    // Meta refuses the token (190, quoting it): reported clearly, the rest skipped, and the
    // token is not echoed back.
    graph.fail_token(Some((401, 190)));
    let (s, v) = admin(&t, "POST", "/api/v1/settings/connection/test", None).await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(false)), "{v:#}");
    let tok = check(&v, "access_token");
    assert_eq!(tok["ok"], false);
    assert_eq!(tok["error"]["code"], 190);
    assert_eq!(tok["error"]["class"], "auth");
    assert_eq!(tok["error"]["http_status"], 401);
    assert!(
        tok["detail"]
            .as_str()
            .unwrap()
            .contains("Meta refused the credentials (code 190)"),
        "{tok}"
    );
    assert!(
        tok["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Malformed access token"),
        "{tok}"
    );
    for name in ["waba", "phone_numbers", "webhook_subscription"] {
        let c = check(&v, name);
        assert!(c["ok"].is_null(), "{name}: {c}");
        assert!(c["detail"].as_str().unwrap().starts_with("skipped"));
    }

    // Nothing configured: said so without calling Meta.
    let before = graph.requests().len();
    let (s, v) = admin(
        &t,
        "POST",
        "/api/v1/settings/connection/test",
        Some(json!({"access_token": ""})),
    )
    .await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(false)));
    assert_eq!(
        check(&v, "access_token")["detail"],
        "access_token is not set"
    );
    assert_eq!(graph.requests().len(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_use_their_own_credentials_or_fall_back_to_the_inbox() {
    let (t, graph) = stack_with_graph().await;
    let effective = || async {
        let (s, v) = admin(
            &t,
            "GET",
            "/api/v1/settings/notifications-connection/effective",
            None,
        )
        .await;
        assert_eq!(s, 200, "{v}");
        v
    };
    let v = effective().await;
    assert_eq!(v["source"], "inbox", "{v}");
    assert_eq!(v["access_token"], mask(DEV_ACCESS_TOKEN).as_str());
    assert_eq!(v["waba_id"], WABA);
    assert!(v["phone_number_id"].is_null());
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("no notification credentials")
    );

    let (s, v) = admin(&t, "GET", "/api/v1/settings/notifications-connection", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["set"]["access_token"], false);
    assert_eq!(v["access_token"], "");

    let (s, v) = admin(
        &t,
        "PUT",
        "/api/v1/settings/notifications-connection",
        Some(json!({"access_token": NOTIFY_TOKEN, "waba_id": "987654321",
                    "phone_number_id": "123123", "business_id": "42"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["access_token"], mask(NOTIFY_TOKEN).as_str());
    assert_eq!(v["phone_number_id"], "123123");
    let stored = stored_secret(&t, "NotifySecret").await;
    assert_eq!(stored["access_token"], NOTIFY_TOKEN);
    assert_eq!(stored["waba_id"], "987654321");
    // The inbox's connection is untouched.
    assert_eq!(
        stored_secret(&t, "MetaSecret").await["access_token"],
        DEV_ACCESS_TOKEN
    );

    let v = effective().await;
    assert_eq!(v["source"], "notifications", "{v}");
    assert_eq!(v["access_token"], mask(NOTIFY_TOKEN).as_str());
    assert_eq!(v["waba_id"], "987654321");
    assert_eq!(v["phone_number_id"], "123123");
    assert_eq!(v["missing"], json!([]));

    // The notification test runs with the notification set.
    graph.set_account("987654321", &["123123"]);
    let (s, v) = admin(
        &t,
        "POST",
        "/api/v1/settings/notifications-connection/test",
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["credentials"], "notifications");
    assert_eq!(v["ok"], true, "{v:#}");
    assert!(
        graph
            .requests()
            .iter()
            .all(|r| r.authorization.as_deref() == Some(format!("Bearer {NOTIFY_TOKEN}").as_str()))
    );

    // Without its token, the notification set gives way to the inbox's again.
    let (s, _) = admin(
        &t,
        "PUT",
        "/api/v1/settings/notifications-connection",
        Some(json!({"access_token": ""})),
    )
    .await;
    assert_eq!(s, 200);
    let v = effective().await;
    assert_eq!(v["source"], "inbox", "{v}");
    assert!(
        v["reason"].as_str().unwrap().contains("no access token"),
        "{v}"
    );
    assert_eq!(
        stored_secret(&t, "NotifySecret").await["waba_id"],
        "987654321"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ai_settings_keep_their_key_secret() {
    let (t, _graph) = stack_with_graph().await;
    let (s, v) = admin(&t, "GET", "/api/v1/settings/ai", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"enabled": false, "provider": "", "model": "", "mode": "manual", "api_key": "", "api_key_set": false, "system_prompt": "", "fallback_text": ""})
    );
    let (s, v) = admin(
        &t,
        "PUT",
        "/api/v1/settings/ai",
        Some(
            json!({"provider": "google", "model": "gemini-2.0-flash", "mode": "auto",
                    "api_key": AI_KEY, "enabled": true, "system_prompt": "We repair bikes."}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["api_key"], mask(AI_KEY).as_str());
    assert_eq!(v["api_key_set"], true);
    assert_eq!(
        (v["mode"].as_str(), v["enabled"].as_bool()),
        (Some("auto"), Some(true))
    );
    let stored = stored_secret(&t, "AiSecret").await;
    assert_eq!(stored["api_key"], AI_KEY);
    assert_eq!(stored["provider"], "gemini");
    assert_eq!(stored["system_prompt"], "We repair bikes.");
    let typed: shared::credentials::AiSettings = serde_json::from_value(stored).unwrap();
    assert_eq!(typed.mode, shared::credentials::AiMode::Auto);

    // Partial update keeps the key.
    let (s, v) = admin(
        &t,
        "PUT",
        "/api/v1/settings/ai",
        Some(json!({"mode": "manual"})),
    )
    .await;
    assert_eq!(
        (s, v["mode"].as_str(), v["api_key_set"].as_bool()),
        (200, Some("manual"), Some(true))
    );
    assert_eq!(stored_secret(&t, "AiSecret").await["api_key"], AI_KEY);
    for (body, start) in [
        (json!({"provider": "acme"}), "provider must be one of"),
        (
            json!({"api_key": ""}),
            "enabled needs provider, model and api_key; missing: api_key",
        ),
        (json!({"mode": "sometimes"}), "mode must be auto or manual"),
    ] {
        let (s, v) = admin(&t, "PUT", "/api/v1/settings/ai", Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().starts_with(start),
            "{body}: {v}"
        );
    }
    assert_eq!(stored_secret(&t, "AiSecret").await["api_key"], AI_KEY);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_widget_snippet_escapes_hostile_settings() {
    let t = start().await;
    let admin = t.admin_token();
    // Never configured: off.
    let (s, _) = t
        .api("GET", "/api/v1/widget/snippet", Some(&admin), None)
        .await;
    assert_eq!(s, 409);
    for (body, field) in [
        (json!({"phone": "12", "enabled": true}), "phone"),
        (json!({"phone": "+16505551234", "color": "red"}), "color"),
        (
            json!({"phone": "+16505551234", "pages": ["pricing"]}),
            "pages[0]",
        ),
    ] {
        let (s, v) = t
            .api("PUT", "/api/v1/settings/widget", Some(&admin), Some(body))
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains(field), "{field}: {v}");
    }
    let (s, v) = t
        .api(
            "PUT",
            "/api/v1/settings/widget",
            Some(&admin),
            Some(json!({"enabled": true, "phone": "+1 650 555 1234",
                        "prefilled_text": "Hi <b>\"there\"</b> & more",
                        "greeting": "<script>document.body.setAttribute('data-pwned','0')</script><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">",
                        "label": "Chat\" onmouseover=\"alert(1)",
                        "position": "left", "pages": ["/", "/pricing*"]})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["phone"], "+16505551234");
    let resp = t
        .http
        .get(format!("{}/api/v1/widget/snippet", t.info().http_base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(
            "href=\"https://wa.me/16505551234?text=Hi%20%3Cb%3E%22there%22%3C%2Fb%3E%20%26%20more\""
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "&lt;script&gt;document.body.setAttribute(&#39;data-pwned&#39;,&#39;0&#39;)&lt;/script&gt;"
        ),
        "{html}"
    );
    assert!(!html.contains("onmouseover=\"alert"), "{html}");
    assert_eq!(
        html.matches("<script").count(),
        1,
        "only the widget's own inline script"
    );
    assert!(
        !html.contains("<script src") && !html.contains(" src=\"http"),
        "no third-party script: {html}"
    );
    assert!(html.contains("data-pages=\"/,/pricing*\""), "{html}");
    in_a_browser(&html).await;
    // Admin only.
    let (s, _) = t
        .api(
            "GET",
            "/api/v1/widget/snippet",
            Some(&t.token(&["whatsapp_chat:view"])),
            None,
        )
        .await;
    assert_eq!(s, 403);
}

/// What a browser makes of the snippet pasted into a site's page: the link, the label and the
/// greeting exactly as configured and inert, the widget shown only on its pages.
async fn in_a_browser(snippet: &str) {
    // A probe after the snippet writes what the browser sees onto <html data-report="…">.
    const PROBE: &str = "<script>(function(){var w=document.getElementById('wa-chat-widget');\
var a=w.querySelector('a.wa-button'),g=w.querySelector('.wa-greeting'),s=getComputedStyle(w),\
u=new URL(a.href);document.documentElement.setAttribute('data-report',JSON.stringify({\
display:s.display,position:s.position,left:s.left,host:u.host,path:u.pathname,\
text:u.searchParams.get('text'),label:a.textContent,aria:a.getAttribute('aria-label'),\
target:a.target,rel:a.rel,attrs:Array.prototype.map.call(a.attributes,function(x){return x.name;}),\
greeting:g?g.textContent:null,elements:w.querySelectorAll('*').length,\
scripts:document.scripts.length}));})();</script>";
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Shop</title></head>\
         <body><main>Our shop</main>\n{snippet}{PROBE}</body></html>"
    );
    let base = integration_tests::browser::serve_page(page).await;
    for (path, shown) in [("/", true), ("/pricing/plans", true), ("/contact", false)] {
        let dom = integration_tests::browser::dump_dom(&format!("{base}{path}")).await;
        let report: Value = serde_json::from_str(
            &integration_tests::browser::attribute(&dom, "data-report")
                .unwrap_or_else(|| panic!("the probe did not run on {path}: {dom}")),
        )
        .unwrap();
        assert_eq!(
            report["display"],
            if shown { "flex" } else { "none" },
            "{path}: {report}"
        );
        assert_eq!(
            (&report["position"], &report["left"]),
            (&json!("fixed"), &json!("20px")),
            "{report}"
        );
        assert_eq!(
            (&report["host"], &report["path"]),
            (&json!("wa.me"), &json!("/16505551234")),
            "{report}"
        );
        // The pre-filled text arrives in WhatsApp as typed.
        assert_eq!(report["text"], "Hi <b>\"there\"</b> & more", "{report}");
        // The label shows as typed and adds no attribute.
        assert_eq!(report["label"], "Chat\" onmouseover=\"alert(1)", "{report}");
        assert_eq!(report["aria"], report["label"], "{report}");
        assert_eq!(
            report["attrs"],
            json!(["class", "href", "target", "rel", "aria-label", "style"]),
            "{report}"
        );
        assert_eq!(
            (&report["target"], &report["rel"]),
            (&json!("_blank"), &json!("noopener noreferrer")),
            "{report}"
        );
        // The hostile greeting is text: no element, no script, no handler ran (an alert would
        // hold the page: none is used).
        assert_eq!(
            report["greeting"],
            "<script>document.body.setAttribute('data-pwned','0')</script><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">",
            "{report}"
        );
        assert_eq!(report["elements"], 2, "a greeting and a button: {report}");
        assert_eq!(
            report["scripts"], 2,
            "the widget's and the probe's: {report}"
        );
        assert!(
            integration_tests::browser::attribute(&dom, "data-pwned").is_none(),
            "an injected handler ran: {dom}"
        );
    }
}
