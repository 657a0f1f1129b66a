//! A 100 MB document (Meta's largest media) is copied from Meta to S3 by the media function, and
//! one uploaded by staff goes from S3 to Meta, with bounded memory: the heap this process
//! allocates while each runs stays far below the function's 256 MB (the fake Graph API generates
//! the document as it sends it and only counts what it receives, so the peak is the copy's own).
//! The two tests run one after the other (one counter for the process).
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use integration_tests::*;
use serde_json::json;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let now = CURRENT.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// One measurement at a time (the counters are the process's).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PNID: &str = "106540352242922";
const SIZE: u64 = 100 * 1024 * 1024;
/// The media function's memory size in template.yaml.
const FUNCTION_MEMORY: usize = 256 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_document_is_streamed_to_s3_with_bounded_memory() {
    let _one_at_a_time = SERIAL.lock().await;
    let graph = fake_graph::FakeGraph::start().await;
    let mut opts = options_with_graph(&graph, 5000);
    opts.env_overrides
        .insert("MEDIA_DOWNLOAD_TIMEOUT_MS".into(), "110000".into());
    let t = start_with(opts).await;
    let sha = graph.set_generated_media("9900", "application/pdf", SIZE);
    let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": PNID},
        "contacts": [{"profile": {"name": "Big"}, "wa_id": "15551239999"}],
        "messages": [{"from": "15551239999", "id": "wamid.big", "timestamp": chrono::Utc::now().timestamp().to_string(), "type": "document",
            "document": {"id": "9900", "mime_type": "application/pdf", "sha256": sha, "filename": "catalogue.pdf"}}]}}]}]})
    .to_string()
    .into_bytes();
    let conv = {
        t.post_signed(&payload).await;
        t.conversation_of("15551239999").await["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // From here on, what is allocated above this baseline is the copy's (and the polling's).
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let chat = t.token(&["whatsapp_chat:view"]);
    let link = eventually(Duration::from_secs(300), || async {
        let (s, v) = t.api("GET", "/api/v1/media/9900", Some(&chat), None).await;
        (s == 200).then_some(v)
    })
    .await
    .expect("the 100 MB document was copied");
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!(
        "100 MB copy: peak heap above baseline {:.1} MB",
        peak as f64 / 1048576.0
    );
    assert_eq!(link["size"], SIZE);
    assert!(
        peak < FUNCTION_MEMORY / 4,
        "copying 100 MB took {peak} bytes of heap at its peak"
    );
    let messages = t.messages(&conv).await;
    assert_eq!(messages[0]["media"]["state"], "copied");
    // The object in S3 is the whole document, byte for byte (by its sha256, read in parts).
    let mut obj = t
        .s3()
        .get_object()
        .bucket(&t.info().resource("MediaBucket").name)
        .key(format!(
            "media/{PNID}/{}/9900",
            conv.split_once(':').unwrap().1
        ))
        .send()
        .await
        .expect("object");
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = obj.body.try_next().await.expect("body") {
        n += chunk.len() as u64;
        h.update(&chunk);
    }
    assert_eq!(n, SIZE);
    assert_eq!(hex::encode(h.finalize()), sha);
}

/// The staff API's memory size in template.yaml.
const STAFF_API_MEMORY: usize = 256 * 1024 * 1024;

/// A 100 MB document uploaded by staff goes from S3 to Meta's media API as a stream: the
/// staff API never holds it (the browser's PUT to S3 is generated as it is sent, and the fake
/// Graph API only counts what it receives).
#[tokio::test(flavor = "multi_thread")]
async fn a_100_mb_upload_is_streamed_to_meta_with_bounded_memory() {
    let _one_at_a_time = SERIAL.lock().await;
    let graph = fake_graph::FakeGraph::start().await;
    let t = start_with(options_with_graph(&graph, 60_000)).await;
    t.post_signed(&text_payload(
        PNID,
        "15551238888",
        "Big",
        "wamid.bigup",
        chrono::Utc::now().timestamp(),
        "send me the catalogue",
    ))
    .await;
    let conv = t.conversation_of("15551238888").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let chat = t.token(&["whatsapp_chat:view"]);
    let (s, v) = t
        .api(
            "POST",
            "/api/v1/media/uploads",
            Some(&chat),
            Some(json!({"conversation_id": conv, "filename": "catalogue.pdf",
                        "mime_type": "application/pdf", "size": SIZE})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    // The browser's PUT, generated as it is sent (8 MB at a time, the same bytes as the fake
    // Graph API's generated media).
    let chunks = futures::stream::iter((0..SIZE).step_by(8 << 20).map(|offset| {
        let len = (SIZE - offset).min(8 << 20) as usize;
        Ok::<_, std::io::Error>(axum::body::Bytes::from(fake_graph::pattern(offset, len)))
    }));
    let put = t
        .http
        .put(v["url"].as_str().unwrap())
        .header("content-type", "application/pdf")
        .header("content-length", SIZE)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let upload_id = v["upload_id"].as_str().unwrap().to_string();
    // From here on, what is allocated above this baseline is the upload's.
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let (s, done) = t
        .api(
            "POST",
            &format!("/api/v1/media/uploads/{upload_id}/complete"),
            Some(&chat),
            None,
        )
        .await;
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    assert_eq!(s, 201, "{done}");
    eprintln!(
        "100 MB upload: peak heap above baseline {:.1} MB",
        peak as f64 / 1048576.0
    );
    assert!(
        peak < STAFF_API_MEMORY / 4,
        "uploading 100 MB took {peak} bytes of heap at its peak"
    );
    let up = graph
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/media"))
        .expect("uploaded to Meta");
    assert_eq!(up.body["well_formed"], true, "{}", up.body);
    // The whole document went: the multipart body is the file plus its framing.
    let framing = up.body["multipart_bytes"].as_u64().unwrap() - SIZE;
    assert!(framing > 0 && framing < 1024, "{}", up.body);
}
