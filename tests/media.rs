//! Media: inbound media copied to S3 from Meta only, served by presigned URL after a permission
//! check; outbound uploads through a presigned PUT, then Meta's media API.
use std::time::Duration;

use integration_tests::fake_graph::FakeGraph;
use integration_tests::*;
use serde_json::json;

const PNID: &str = "106540352242922";

async fn stack_with_graph() -> (TestStack, FakeGraph) {
    start_with_graph(2000).await
}

fn image_payload(from: &str, wamid: &str, media_id: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Pic"}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": chrono::Utc::now().timestamp().to_string(), "type": "image",
            "image": {"id": media_id, "mime_type": "image/jpeg", "sha256": "x", "caption": "the broken part"}}]}}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn inbound_media_is_copied_and_served_by_presigned_url() {
    let (t, graph) = stack_with_graph().await;
    let jpeg = b"\xff\xd8\xff\xe0fake-jpeg-bytes".repeat(100);
    graph.set_media("9001", "image/jpeg", &jpeg, None);
    t.post_signed(&image_payload("15551230101", "wamid.img1", "9001"))
        .await;
    let conv = t.conversation_of("15551230101").await;
    assert_eq!(
        conv["last_message_preview"]
            .as_str()
            .map(|p| p.contains("broken part")),
        Some(true)
    );
    let chat = t.token(&["whatsapp_chat:view"]);
    let link = eventually(Duration::from_secs(20), || async {
        let (s, v) = t.api("GET", "/api/v1/media/9001", Some(&chat), None).await;
        (s == 200).then_some(v)
    })
    .await
    .expect("media copied");
    assert_eq!(link["mime_type"], "image/jpeg");
    // Served as an attachment: nothing a customer sends renders inline on the bucket's origin.
    assert!(
        link["url"]
            .as_str()
            .unwrap()
            .contains("response-content-disposition=attachment"),
        "{link}"
    );
    assert_eq!(link["size"], jpeg.len());
    let body = reqwest::get(link["url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(body.as_ref(), jpeg.as_slice());
    let conv_id = conv["id"].as_str().unwrap().to_string();
    assert_eq!(media_state_of(&t, &conv_id, "copied").await["id"], "9001");
    // The token went to Meta only, on the media lookup and the download.
    for r in graph.requests() {
        assert!(
            r.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Bearer ")),
            "{r:?}"
        );
    }
    // The inbound function's Graph API calls are in the activity log too.
    let log = t.token(&["whatsapp_log_activity:view"]);
    let entries = eventually(Duration::from_secs(10), || async {
        let (s, v) = t
            .api(
                "GET",
                "/api/v1/activity-log?kind=download_media",
                Some(&log),
                None,
            )
            .await;
        (s == 200 && v["data"].as_array().is_some_and(|a| !a.is_empty())).then_some(v)
    })
    .await
    .expect("download logged");
    assert!(
        !entries
            .to_string()
            .contains(integration_tests::local_runner::DEV_ACCESS_TOKEN)
    );
    // Permission checked.
    let (s, _) = t
        .api(
            "GET",
            "/api/v1/media/9001",
            Some(&t.token(&["whatsapp_bot:view"])),
            None,
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = t.api("GET", "/api/v1/media/9001", None, None).await;
    assert_eq!(s, 401);
    let (s, _) = t
        .api("GET", "/api/v1/media/unknown", Some(&chat), None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn media_on_a_non_meta_host_is_never_fetched() {
    let (t, graph) = stack_with_graph().await;
    graph.set_media(
        "9002",
        "image/jpeg",
        b"x",
        Some("https://evil.example.com/steal".into()),
    );
    graph.set_media(
        "9003",
        "image/jpeg",
        b"x",
        Some("http://lookaside.fbsbx.com/plain-http".into()),
    );
    t.post_signed(&image_payload("15551230202", "wamid.img2", "9002"))
        .await;
    t.post_signed(&image_payload("15551230303", "wamid.img3", "9003"))
        .await;
    // The messages are stored; the media lookups happen, no download is attempted anywhere,
    // and each message shows its media as failed, with the reason.
    for (wa_id, media_id) in [("15551230202", "9002"), ("15551230303", "9003")] {
        let conv = t.conversation_of(wa_id).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let media = media_state_of(&t, &conv, "failed").await;
        assert_eq!(media["id"], media_id);
        let error = media["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("not one of Meta's hosts") || error.contains("not https"),
            "{error}"
        );
    }
    assert!(
        graph
            .requests()
            .iter()
            .all(|r| !r.path.starts_with("/cdn/"))
    );
    assert!(t.archived("parked/").await.is_empty(), "nothing parked");
    let chat = t.token(&["whatsapp_chat:view"]);
    assert_eq!(
        t.api("GET", "/api/v1/media/9002", Some(&chat), None)
            .await
            .0,
        404
    );
}

/// Waits until the conversation's (only) media message shows `state`; returns its `media`.
async fn media_state_of(t: &TestStack, conv: &str, state: &str) -> serde_json::Value {
    eventually(Duration::from_secs(30), || async {
        t.messages(conv)
            .await
            .into_iter()
            .find_map(|m| (m["media"]["state"] == state).then(|| m["media"].clone()))
    })
    .await
    .unwrap_or_else(|| panic!("media of {conv} never became {state}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_media_copy_never_holds_back_its_conversation() {
    let graph = fake_graph::FakeGraph::start().await;
    let mut opts = options_with_graph(&graph, 2000);
    opts.media_max_attempts = 2;
    let t = start_with(opts).await;
    // Meta's media endpoint fails (as with an expired token or an outage at Meta).
    graph.set_media("9100", "image/jpeg", b"late", None);
    graph.fail_media("9100", Some((500, 2)));
    let now = chrono::Utc::now().timestamp();
    t.post_signed(&image_payload("15551230505", "wamid.img5", "9100"))
        .await;
    t.post_signed(&text_payload(
        PNID,
        "15551230505",
        "Pic",
        "wamid.after-img5",
        now + 1,
        "did you get my photo?",
    ))
    .await;
    let conv = t.conversation_of("15551230505").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The message after the media is there at once: the copy is not in the conversation's path.
    let listed = eventually(Duration::from_secs(10), || async {
        let m = t.messages(&conv).await;
        (m.len() == 2).then_some(m)
    })
    .await
    .expect("both messages stored while the media copy fails");
    assert!(listed.iter().any(|m| m["id"] == "wamid.after-img5"));
    // The copy is retried, then given up with the reason; the inbound queue never saw a failure.
    let media = media_state_of(&t, &conv, "failed").await;
    assert!(
        media["error"]
            .as_str()
            .is_some_and(|e| e.contains("gave up after 2 attempts")),
        "{media}"
    );
    let lookups = graph
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/9100"))
        .count();
    // Two attempts of the function, each with the Graph client's own retries of a temporary error.
    let per_attempt = shared::meta::graph::GraphConfig::default().max_attempts as usize;
    assert_eq!(lookups, 2 * per_attempt, "two attempts, then given up");
    assert_eq!(t.queue_depth("InboundDLQ").await, (0, 0));
    assert_eq!(t.queue_depth("MediaDLQ").await, (0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_media_copy_retried_after_a_failure_ends_copied() {
    let (t, graph) = stack_with_graph().await;
    graph.set_media("9200", "image/jpeg", b"second time lucky", None);
    graph.fail_media("9200", Some((503, 131000)));
    t.post_signed(&image_payload("15551230606", "wamid.img6", "9200"))
        .await;
    let conv = t.conversation_of("15551230606").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let pending = media_state_of(&t, &conv, "pending").await;
    eventually(Duration::from_secs(10), || async {
        let m = t.messages(&conv).await;
        m.iter()
            .any(|m| m["media"]["error"].as_str().is_some_and(|e| !e.is_empty()))
            .then_some(())
    })
    .await
    .expect("the failed attempt's error is shown while it is retried");
    assert_eq!(pending["id"], "9200");
    graph.fail_media("9200", None);
    let copied = media_state_of(&t, &conv, "copied").await;
    assert!(copied["error"].is_null(), "{copied}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_goes_to_s3_then_to_meta_then_into_a_reply() {
    let (t, graph) = stack_with_graph().await;
    t.post_signed(&text_payload(
        PNID,
        "15551230404",
        "Up",
        "wamid.up0",
        chrono::Utc::now().timestamp(),
        "send me the invoice",
    ))
    .await;
    let conv = t.conversation_of("15551230404").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chat = t.token(&["whatsapp_chat:view"]);
    let pdf = b"%PDF-1.4 fake invoice".to_vec();
    let (s, v) = t
        .api("POST", "/api/v1/media/uploads", Some(&chat), Some(json!({"conversation_id": conv, "filename": "invoice.pdf", "mime_type": "application/pdf", "size": pdf.len()})))
        .await;
    assert_eq!(s, 201, "{v}");
    // The link is bound to the declared size (a signed Content-Length).
    assert!(
        v["url"]
            .as_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("content-length"),
        "{v}"
    );
    let put = t
        .http
        .put(v["url"].as_str().unwrap())
        .header("content-type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let upload_id = v["upload_id"].as_str().unwrap();
    let (s, done) = t
        .api(
            "POST",
            &format!("/api/v1/media/uploads/{upload_id}/complete"),
            Some(&chat),
            None,
        )
        .await;
    assert_eq!(s, 201, "{done}");
    let media_id = done["media_id"].as_str().unwrap().to_string();
    let up = graph
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/media"))
        .expect("uploaded to Meta");
    assert_eq!(up.body["well_formed"], true);
    // Streamed from S3 to Meta byte for byte, with an exact Content-Length.
    assert_eq!(up.body["file"], "%PDF-1.4 fake invoice");
    let (s, v) = t
        .api("POST", &format!("/api/v1/conversations/{conv}/messages"), Some(&chat),
             Some(json!({"content": {"type": "media", "kind": "document", "source": {"id": media_id}, "filename": "invoice.pdf"}})))
        .await;
    assert_eq!(s, 201, "{v}");
    let sent = graph
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/messages"))
        .unwrap();
    assert_eq!(sent.body["type"], "document");
    assert_eq!(sent.body["document"]["id"], media_id.as_str());
    // Bad uploads are refused with the field named.
    let (s, v) = t
        .api("POST", "/api/v1/media/uploads", Some(&chat), Some(json!({"conversation_id": conv, "filename": "x.exe", "mime_type": "application/x-msdownload", "size": 10})))
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mime_type")
    );
    let (s, _) = t
        .api("POST", "/api/v1/media/uploads", Some(&chat), Some(json!({"conversation_id": conv, "filename": "big.jpg", "mime_type": "image/jpeg", "size": 6 * 1024 * 1024})))
        .await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_of_another_size_than_declared_is_refused() {
    let (t, graph) = stack_with_graph().await;
    t.post_signed(&text_payload(
        PNID,
        "15551230707",
        "Up",
        "wamid.up7",
        chrono::Utc::now().timestamp(),
        "send it",
    ))
    .await;
    let conv = t.conversation_of("15551230707").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chat = t.token(&["whatsapp_chat:view"]);
    let (s, v) = t
        .api("POST", "/api/v1/media/uploads", Some(&chat), Some(json!({"conversation_id": conv, "filename": "a.pdf", "mime_type": "application/pdf", "size": 100})))
        .await;
    assert_eq!(s, 201, "{v}");
    // S3 refuses a body of another size than the signed one; moto does not check signatures,
    // so the staff API's own check is what this proves.
    let put = t
        .http
        .put(v["url"].as_str().unwrap())
        .header("content-type", "application/pdf")
        .body(vec![b'x'; 50])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success() || put.status().is_client_error());
    let (s, e) = t
        .api(
            "POST",
            &format!(
                "/api/v1/media/uploads/{}/complete",
                v["upload_id"].as_str().unwrap()
            ),
            Some(&chat),
            None,
        )
        .await;
    assert_eq!(s, 409, "{e}");
    assert!(
        graph.requests().iter().all(|r| !r.path.ends_with("/media")),
        "nothing sent to Meta"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_written_part_by_part_appears_whole_or_not_at_all() {
    use shared::media::{MediaBucket, PART_BYTES};
    let t = start().await;
    let name = t.info().resources["MediaBucket"].name.clone();
    let bucket = MediaBucket::new(t.s3(), name.clone());
    // Two full parts and a short last one, written in chunks that straddle the part edges.
    let data: Vec<u8> = (0..2 * PART_BYTES + 12_345)
        .map(|i| (i % 251) as u8)
        .collect();
    let mut w = bucket.writer("exports/test/long.csv", "text/csv");
    for chunk in data.chunks(1_000_003) {
        w.write(chunk).await.unwrap();
    }
    assert_eq!(w.finish().await.unwrap(), data.len() as u64);
    let got = t
        .s3()
        .get_object()
        .bucket(&name)
        .key("exports/test/long.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/csv"));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(
        body.as_ref() == data.as_slice(),
        "{} bytes back",
        body.len()
    );
    // Short: one PutObject.
    let mut w = bucket.writer("exports/test/short.csv", "text/csv");
    w.write(b"a,b\r\n").await.unwrap();
    assert_eq!(w.finish().await.unwrap(), 5);
    // Given up after a part went up: no object, no upload left open.
    let mut w = bucket.writer("exports/test/abandoned.csv", "text/csv");
    w.write(&data[..PART_BYTES + 1]).await.unwrap();
    w.abort().await;
    let head = t
        .s3()
        .head_object()
        .bucket(&name)
        .key("exports/test/abandoned.csv")
        .send()
        .await;
    assert!(head.is_err(), "an abandoned object is visible");
    let open = t
        .s3()
        .list_multipart_uploads()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    assert!(open.uploads().is_empty(), "{:?}", open.uploads());
}
