//! A real browser for the tests that must see what a page does, not only what it says: Debian's
//! headless Chromium (`make test` installs it through `infra/install-chromium.sh`; `CHROMIUM`
//! names another Chromium or Chrome binary).
use std::time::Duration;

use axum::Router;
use axum::response::Html;

/// The binary the tests run.
pub fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// The DOM of `url` as Chromium serialises it once the page loaded and its scripts ran (timers
/// included, up to two seconds of the page's virtual time).
pub async fn dump_dom(url: &str) -> String {
    let profile = std::env::temp_dir().join(format!("chromium-{}", uuid::Uuid::new_v4().simple()));
    let run = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium answered within 90 s")
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{}` ({e}): `make browser` installs Debian's chromium, or set CHROMIUM",
                chromium()
            )
        });
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the DOM is UTF-8")
}

/// Serves `page` at every path of a loopback HTTP server (the page can read `location`);
/// returns its base URL. The server lives as long as the test's runtime.
pub async fn serve_page(page: String) -> String {
    let app = Router::new().fallback(move || {
        let page = page.clone();
        async move { Html(page) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The value of attribute `name` on the first element whose start tag carries it, with the
/// entities Chromium writes in attribute values decoded.
pub fn attribute(dom: &str, name: &str) -> Option<String> {
    let start = dom.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = dom[start..].find('"')?;
    Some(
        dom[start..start + len]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&nbsp;", "\u{a0}")
            .replace("&amp;", "&"),
    )
}
