//! The operator's page in a real browser (issue 16): Debian's `chromium`, headless, driven over
//! CDP by chromiumoxide. It opens the page, sends a signed NetBox POST and a forged one, sees both
//! rows arrive live within 2 s with the right outcome and reason, opens the forged one, checks the
//! signature is masked and that a body's `<img onerror>` made no element, and saves screenshots
//! to `target/` (CI artifacts; `docs/admin-page.png` is `admin-page.png`, taken after a reload so
//! the per-hook counts and the NATS sink's row are filled in).
//!
//! Without chromium the test fails under CI (`CI` set) and is skipped with a message otherwise.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures_util::StreamExt;
use serde_json::Value;

use crate::common::*;

const CHROMIUM: &str = "/usr/bin/chromium";

fn artifact(name: &str) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Evaluates `js` in `page` until it gives something other than `null`/`false`, or `within` ends.
async fn wait_for(page: &Page, js: &str, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(v) = page.evaluate(js).await {
            match v.into_value::<Value>() {
                Ok(Value::Null | Value::Bool(false)) | Err(_) => {}
                Ok(v) => return Some(v),
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn eval(page: &Page, js: &str) -> Value {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("{js}: {e}"))
        .into_value()
        .unwrap_or(Value::Null)
}

/// Whether chromium is there: a failure under CI (`CI` set), else a skip with a message.
fn have_chromium() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    let why = format!("{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)");
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_deliveries_live_masks_signatures_and_escapes_bodies() {
    if !have_chromium() {
        return;
    }
    // One NATS sink, so the page's sinks panel (and the README's screenshot of it) has a row.
    let nats = crate::common::brokers::Nats::start();
    let hooks = format!(
        "{}[[sinks]]\nname = \"bus\"\nkind = \"nats\"\nurl = \"{}\"\nstream = \"WEBHOOKS\"\n",
        netbox_hook("/webhook/"),
        nats.url()
    );
    let server = Server::start(&hooks);
    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(CHROMIUM)
        .user_data_dir(profile.path())
        .no_sandbox()
        .args(["--disable-gpu", "--disable-background-networking"])
        .window_size(1400, 900)
        // The window's size, not chromiumoxide's 800x600 emulated viewport.
        .viewport(None)
        .launch_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.expect("launch chromium");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    let page = browser
        .new_page(server.admin_url("/"))
        .await
        .expect("open the page");
    // The stream is open once app.js says so: the readiness signal, not a sleep.
    let live = wait_for(
        &page,
        "document.getElementById('live').textContent === 'live'",
        Duration::from_secs(20),
    )
    .await;
    assert!(live.is_some(), "the live stream never opened");

    let signed_body = netbox_body("0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a10");
    let forged_body =
        br#"{"event": "created", "data": {"name": "<img src=x onerror=\"window.__pwned=1\">"}}"#
            .to_vec();
    let forged_sig = "ab".repeat(64);
    let t0 = Instant::now();
    assert_eq!(
        post_netbox(&server.url("/webhook/"), &signed_body).await.0,
        200
    );
    let forged = [("x-hook-signature", forged_sig.clone())];
    assert_eq!(
        post(&server.url("/webhook/"), &forged, forged_body).await.0,
        401
    );
    let rows = wait_for(
        &page,
        "(() => { const r = [...document.querySelectorAll('#rows tr')]; \
           return r.length >= 2 && r.map(tr => [...tr.cells].map(td => td.textContent)); })()",
        Duration::from_secs(2),
    )
    .await;
    let seen_after = t0.elapsed();
    let rows = rows.unwrap_or_else(|| panic!("two live rows within 2 s (waited {seen_after:?})"));
    // Newest first: the forged one, then the signed one. Columns as in the page's header.
    let (forged_row, signed_row) = (&rows[0], &rows[1]);
    assert_eq!(forged_row[5], "rejected_signature", "{rows}");
    assert!(
        forged_row[6]
            .as_str()
            .unwrap()
            .contains("signature mismatch"),
        "{rows}"
    );
    assert_eq!(signed_row[5], "accepted", "{rows}");
    assert_eq!(signed_row[8], "dcim.site.created", "{rows}");
    assert_eq!(
        eval(&page, "document.querySelectorAll('img').length").await,
        0
    );
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        artifact("admin-live.png"),
    )
    .await
    .expect("screenshot");

    // Once the sink has the accepted event, a reload shows the per-hook counts and the sink's row
    // (server-rendered; the live part adds rows only): that is the README's screenshot.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sinks: Value = client()
            .get(server.admin_url("/api/sinks"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if sinks[0]["delivered"] == 1 && sinks[0]["lag_events"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sink never delivered: {sinks}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    page.goto(server.admin_url("/")).await.expect("reload");
    let counts = wait_for(
        &page,
        "(() => { const t = document.querySelector('table.hooks tbody').textContent; \
           const s = document.querySelector('#sinks tr[data-sink=bus]'); \
           return t.includes('accepted 1') && t.includes('rejected_signature 1') && s !== null \
             && document.getElementById('live').textContent === 'live' && s.textContent; })()",
        Duration::from_secs(10),
    )
    .await
    .expect("per-hook counts and the sink's row after a reload");
    assert!(counts.as_str().unwrap().contains("connected"), "{counts}");
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        artifact("admin-page.png"),
    )
    .await
    .expect("screenshot");

    // Open the forged delivery from its row.
    page.find_element("#rows tr a")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let opened = wait_for(
        &page,
        "location.pathname.startsWith('/deliveries/') && document.getElementById('headers') !== null",
        Duration::from_secs(10),
    )
    .await;
    assert!(opened.is_some(), "the detail page did not open");
    let reason = eval(&page, "document.getElementById('reason').textContent").await;
    assert!(
        reason.as_str().unwrap().contains("signature mismatch"),
        "{reason}"
    );
    let sig = eval(
        &page,
        "[...document.querySelectorAll('#headers tr')] \
           .find(tr => tr.children[0].textContent === 'x-hook-signature').children[1].textContent",
    )
    .await;
    assert_eq!(sig, "‹masked, 128 bytes›");
    let html = eval(&page, "document.documentElement.outerHTML").await;
    assert!(
        !html.as_str().unwrap().contains(&forged_sig),
        "signature value on the page"
    );
    let body = eval(&page, "document.getElementById('body').textContent").await;
    assert!(
        body.as_str().unwrap().contains("<img src=x onerror="),
        "{body}"
    );
    assert_eq!(
        eval(&page, "document.querySelectorAll('img').length").await,
        0
    );
    assert_eq!(eval(&page, "window.__pwned === undefined").await, true);
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        artifact("admin-detail.png"),
    )
    .await
    .expect("screenshot");

    browser.close().await.ok();
    let _ = browser.wait().await;
    events.abort();
}

/// DNS rebinding, as a browser does it: chromium resolves `evil.example` to 127.0.0.1 (what a
/// rebinding attacker's DNS answers), opens the admin listener under that name and fetches the
/// API same-origin. The listener answers 421 to the page and to the fetch, so the script reads
/// nothing; the same browser on `127.0.0.1` is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_under_a_rebound_name_cannot_read_the_admin_listener() {
    if !have_chromium() {
        return;
    }
    let server = Server::start(&netbox_hook("/webhook/"));
    let port = server.admin.expect("admin listener").port();
    assert_eq!(
        netbox_status(
            &server.url("/webhook/"),
            "0c6a1c7e-3a9e-4a43-9b1e-2f8d2d6f7a50"
        )
        .await,
        200
    );
    let profile = tempfile::tempdir().unwrap();
    let config = BrowserConfig::builder()
        .chrome_executable(CHROMIUM)
        .user_data_dir(profile.path())
        .no_sandbox()
        .args([
            "--disable-gpu",
            "--disable-background-networking",
            "--host-resolver-rules=MAP evil.example 127.0.0.1",
        ])
        .launch_timeout(Duration::from_secs(60))
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let (mut browser, mut handler) = Browser::launch(config).await.expect("launch chromium");
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });

    // The script a rebinding page runs: fetch the API from its own origin, keep what it read.
    let steal = "fetch('/api/deliveries').then(async r => { window.__stolen = [r.status, await r.text()]; }) \
                 .catch(e => { window.__stolen = [0, String(e)]; }); true";
    let mut seen = Vec::new();
    for origin in [
        format!("http://evil.example:{port}"),
        format!("http://127.0.0.1:{port}"),
    ] {
        let page = browser
            .new_page(format!("{origin}/login"))
            .await
            .expect("open the page");
        eval(&page, steal).await;
        let got = wait_for(&page, "window.__stolen", Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{origin}: the fetch never finished"));
        let title = eval(&page, "document.body.innerText").await;
        seen.push((origin, got, title));
    }
    let (evil, stolen, shown) = &seen[0];
    assert_eq!(stolen[0], 421, "{evil}: {stolen}");
    assert!(
        !stolen[1].as_str().unwrap().contains("7a50"),
        "{evil}: {stolen}"
    );
    assert!(
        shown
            .as_str()
            .unwrap()
            .contains("does not serve that host name"),
        "{evil}: the page itself is refused too: {shown}"
    );
    let (good, read, _) = &seen[1];
    assert_eq!(read[0], 200, "{good}: {read}");
    assert!(
        read[1].as_str().unwrap().contains("accepted"),
        "{good}: {read}"
    );

    browser.close().await.ok();
    let _ = browser.wait().await;
    events.abort();
}
