//! The dashboard in a real browser: Debian's Chromium, headless, driven through chromedriver,
//! following the seed guides (Adjust, AppsFlyer) word by word. Each step saves a screenshot into
//! `screenshots/` at the repository root. Skipped, with a notice, when `chromedriver` is not on
//! PATH (`.ci/browser-deps` installs it).

mod common;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::TestApp;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless Chromium with its own chromedriver and profile; both go away on drop.
struct Browser {
    client: Client,
    driver: Child,
    profile: PathBuf,
    /// `http://app.<tenant>.localhost:<port>`
    origin: String,
    /// Prefix of this test's screenshots.
    name: &'static str,
    step: u32,
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Browser {
    /// `None` (and a printed notice) when chromedriver is not installed.
    async fn start(
        app: &TestApp,
        tenant: &str,
        name: &'static str,
        width: u32,
        height: u32,
    ) -> Option<Browser> {
        let Some(chromedriver) = on_path("chromedriver") else {
            eprintln!("NOTICE: chromedriver is not on PATH; browser test `{name}` skipped (run .ci/browser-deps)");
            return None;
        };
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!("gokart-chromium-{}", uuid::Uuid::new_v4()));
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--window-size={width},{height}"),
                    // Every tenant host (app.<tenant>.localhost) reaches the test server.
                    "--host-resolver-rules=MAP * 127.0.0.1",
                ]
            }
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut client = None;
        // chromedriver needs a moment to listen; this waits for a process, not for the app.
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await
            {
                Ok(connected) => {
                    client = Some(connected);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let client = client.expect("chromedriver and Chromium start");
        client.set_window_size(width, height).await.unwrap();
        let origin = format!("http://app.{tenant}.localhost:{}", app.addr.port());
        Some(Browser { client, driver, profile, origin, name, step: 0 })
    }

    async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.origin)).await.unwrap();
    }

    /// Saves `screenshots/<test>-<nn>-<what>.png`.
    async fn shot(&mut self, what: &str) {
        self.step += 1;
        let png = self.client.screenshot().await.unwrap();
        let file = screenshots_dir().join(format!("{}-{:02}-{what}.png", self.name, self.step));
        std::fs::write(file, png).unwrap();
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    }

    /// Clicks the button or link whose visible text is `text`.
    async fn press(&self, text: &str) {
        let xpath = format!(
            "//*[self::button or self::a][normalize-space(.)='{text}' or @aria-label='{text}']"
        );
        self.client.find(Locator::XPath(&xpath)).await.unwrap().click().await.unwrap();
    }

    async fn value(&self, css: &str) -> String {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.prop("value").await.unwrap().unwrap_or_default()
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.attr(name).await.unwrap().unwrap_or_default()
    }

    async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    async fn body(&self) -> String {
        self.text("body").await
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    async fn log_in(&mut self, email: &str, password: &str) {
        self.open("/login").await;
        self.fill("#f-email", email).await;
        self.fill("#f-password", password).await;
        self.press("Log in").await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

async fn close(browser: Browser) {
    let _ = browser.client.clone().close().await;
    drop(browser);
}

/// Seed 000 and 001, Part 2: log in, open Profile → Postback, click the eye icon next to the
/// postback URL, and read Domain, Security Segment and Signature; then rotate.
#[tokio::test]
async fn postback_credentials_behind_the_eye_icon() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let Some(mut browser) = Browser::start(&app, "brownboots", "postback", 1280, 900).await else {
        return;
    };
    browser.log_in("ops@brownboots.test", "password-123").await;
    browser.click(".profile-link").await;
    assert_eq!(browser.path().await, "/profile/postback");
    assert_eq!(browser.attr("#postback-url", "type").await, "password", "masked at first");
    browser.shot("postback-masked").await;

    browser.click("[data-reveal]").await;
    assert_eq!(browser.attr("#postback-url", "type").await, "text");
    browser.shot("postback-revealed").await;
    let url = browser.value("#postback-url").await;
    assert_eq!(url, tenant.postback_url);
    assert_eq!(browser.value("#domain").await, "brownboots");
    assert_eq!(browser.value("#security-segment").await, tenant.segment);
    assert_eq!(browser.value("#signature").await, tenant.signature);
    // The URL carries the three values the seeds ask for.
    assert!(url.contains(&format!("/api/v1/{}", tenant.segment)));
    assert!(url.contains(&format!("signature={}", tenant.signature)));
    let adjust = browser.value("#adjust-event").await;
    assert!(adjust.starts_with(&url), "{adjust}");
    assert!(adjust.contains("cnv_event_id="), "{adjust}");
    assert!(browser.value("#appsflyer-install").await.contains("cnv_event_id=Install"));

    browser.press("Rotate credentials").await;
    browser.shot("postback-rotated").await;
    let body = browser.body().await;
    assert!(body.contains("keep working until"), "{body}");
    let rotated = browser.value("#signature").await;
    assert_ne!(rotated, tenant.signature);
    // The old credentials still authenticate during the grace period.
    let old = app.engine.tenant("brownboots").await.unwrap().unwrap();
    let segment = tenant.segment.trim_end_matches('/');
    assert!(app.engine.verify_postback_credentials(&old, segment, &tenant.signature).await.unwrap());
    close(browser).await;
}

/// A wrong password says so plainly and signs nobody in; an expired session goes back to login.
#[tokio::test]
async fn wrong_password_and_expired_session() {
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let Some(mut browser) = Browser::start(&app, "brownboots", "login", 1280, 800).await else {
        return;
    };
    browser.log_in("ops@brownboots.test", "not-the-password").await;
    browser.shot("wrong-password").await;
    assert_eq!(browser.path().await, "/login");
    let alert = browser.text("[role=alert]").await;
    assert!(alert.contains("email or password is not right"), "{alert}");
    assert_eq!(browser.value("#f-email").await, "ops@brownboots.test", "the email is kept");
    browser.open("/profile/postback").await;
    assert_eq!(browser.path().await, "/login", "nothing was signed in");

    browser.log_in("ops@brownboots.test", "password-123").await;
    browser.open("/profile/postback").await;
    assert_eq!(browser.path().await, "/profile/postback");
    app.clock.advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    browser.open("/profile/postback").await;
    browser.shot("session-expired").await;
    assert_eq!(browser.path().await, "/login", "an expired session signs in again");
    close(browser).await;
}

/// A form without its CSRF token is refused with a clear page and changes nothing.
#[tokio::test]
async fn form_without_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let Some(mut browser) = Browser::start(&app, "brownboots", "csrf", 1280, 800).await else {
        return;
    };
    browser.log_in("ops@brownboots.test", "password-123").await;
    browser.open("/profile/postback").await;
    browser
        .client
        .execute(
            "document.querySelectorAll('input[name=_csrf]').forEach(function (e) { e.remove(); });",
            vec![],
        )
        .await
        .unwrap();
    browser.press("Rotate credentials").await;
    browser.shot("missing-csrf").await;
    let body = browser.body().await;
    assert!(body.contains("security token"), "{body}");
    let now = app.engine.tenant("brownboots").await.unwrap().unwrap();
    let info = app.engine.postback_credentials(&now).await.unwrap();
    assert_eq!(info.signature, tenant.signature, "not rotated");
    close(browser).await;
}

/// Without a browser: hosts, sessions and CSRF over plain HTTP.
#[tokio::test]
async fn dashboard_requires_the_app_host_a_session_and_csrf() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let app_host = format!("app.brownboots.localhost:{}", app.addr.port());
    let get = |host: String, path: &str| {
        app.client.get(format!("http://{}{path}", app.addr)).header("Host", host)
    };
    // The API host and unknown tenants have no dashboard.
    let response = get(app.api_host("brownboots"), "/login").send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response =
        get(format!("app.nobody.localhost:{}", app.addr.port()), "/login").send().await.unwrap();
    assert_eq!(response.status(), 404);
    // No session: to the login page.
    let response = get(app_host.clone(), "/profile/postback").send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");

    // Log in with the login form's double-submit token.
    let response = get(app_host.clone(), "/login").send().await.unwrap();
    let login_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(login_cookie.contains("HttpOnly") && login_cookie.contains("SameSite=Lax"));
    let login_token = login_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    let post = |path: &str, cookie: String, body: String| {
        app.client
            .post(format!("http://{}{path}", app.addr))
            .header("Host", &app_host)
            .header("Cookie", cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    };
    let response = post(
        "/login",
        String::new(),
        "email=ops%40brownboots.test&password=password-123".into(),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 403, "a login form without its token is refused");
    let response = post(
        "/login",
        format!("gokart_login_csrf={login_token}"),
        format!("_csrf={login_token}&email=ops%40brownboots.test&password=password-123"),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 303);
    let session_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("gokart_session="))
        .expect("session cookie");
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("Path=/"));
    assert!(!session_cookie.contains("Secure"), "plain http: no Secure, so no __Host- prefix");
    let session = session_cookie.split(';').next().unwrap().to_owned();

    // A POST with a wrong token: 403 and nothing rotated.
    let response =
        post("/profile/postback/rotate", session.clone(), "_csrf=wrong".into()).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("security token"), "{body}");
    let record = app.engine.tenant("brownboots").await.unwrap().unwrap();
    assert_eq!(app.engine.postback_credentials(&record).await.unwrap().signature, tenant.signature);

    // Logging out ends the session.
    let page = get(app_host.clone(), "/profile/postback")
        .header("Cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page.split("name=\"_csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let response =
        post("/logout", session.clone(), format!("_csrf={csrf}")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let response =
        get(app_host.clone(), "/profile/postback").header("Cookie", &session).send().await.unwrap();
    assert_eq!(response.status(), 303, "the session is gone");
}
