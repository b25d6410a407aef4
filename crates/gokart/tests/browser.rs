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
        let profile =
            std::env::temp_dir().join(format!("gokart-chromium-{}", uuid::Uuid::new_v4()));
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
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
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

    /// Clicks the button or link whose visible text is `text`, and waits for the next page.
    async fn press(&self, text: &str) {
        let xpath = format!(
            "//*[self::button or self::a][not(@aria-hidden='true')][normalize-space(.)='{text}' or @aria-label='{text}']"
        );
        let target = self.client.find(Locator::XPath(&xpath)).await.unwrap();
        self.navigate_by(target).await;
    }

    /// Clicks the element matching `css` and waits for the next page.
    async fn follow(&self, css: &str) {
        let target = self.client.find(Locator::Css(css)).await.unwrap();
        self.navigate_by(target).await;
    }

    /// Clicks `target` and waits until the page it was on has been replaced: a form post may
    /// start navigating only after the click returns.
    async fn navigate_by(&self, target: fantoccini::elements::Element) {
        let old_page = self.client.find(Locator::Css("html")).await.unwrap();
        target.click().await.unwrap();
        for _ in 0..200 {
            if old_page.tag_name().await.is_err() {
                let ready = "return document.readyState;";
                for _ in 0..100 {
                    if self.client.execute(ready, vec![]).await.ok() == Some(json!("complete")) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the click did not lead to a new page");
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

    async fn choose(&self, css: &str, label: &str) {
        let select = self.client.find(Locator::Css(css)).await.unwrap();
        select.select_by_label(label).await.unwrap();
    }

    /// Date inputs take typed text in the browser's locale; the value is set directly instead.
    async fn set_value(&self, id: &str, value: &str) {
        let script = "document.getElementById(arguments[0]).value = arguments[1];";
        self.client.execute(script, vec![json!(id), json!(value)]).await.unwrap();
    }

    async fn upload(&self, css: &str, file: &Path) {
        let input = self.client.find(Locator::Css(css)).await.unwrap();
        input.send_keys(&file.display().to_string()).await.unwrap();
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
    browser.follow(".profile-link").await;
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
    assert!(app
        .engine
        .verify_postback_credentials(&old, segment, &tenant.signature)
        .await
        .unwrap());
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
    let response =
        post("/login", String::new(), "email=ops%40brownboots.test&password=password-123".into())
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
    let response = post("/profile/postback/rotate", session.clone(), "_csrf=wrong".into())
        .send()
        .await
        .unwrap();
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
    let response = post("/logout", session.clone(), format!("_csrf={csrf}")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    let response =
        get(app_host.clone(), "/profile/postback").header("Cookie", &session).send().await.unwrap();
    assert_eq!(response.status(), 303, "the session is gone");
}

/// A 1×1 PNG, as an App Store screenshot would be for the test's purposes.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gokart-upload-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Uploads land in a throwaway data directory for the whole test binary.
fn use_temp_data_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gokart-data-{}", uuid::Uuid::new_v4()));
        gokart_http::dashboard::set_data_dir(&dir);
        dir
    })
    .clone()
}

/// One event row of the Event Mapping step.
struct EventRow<'a> {
    id: &'a str,
    name: &'a str,
    /// `None` for Independent.
    sequence: Option<u32>,
    revenue: &'a str,
    reward: &'a str,
}

/// What the seeds' Offer Details ask for.
struct SeedOffer<'a> {
    system: &'a str,
    advertiser: &'a str,
    campaign: &'a str,
    name: &'a str,
    link: &'a str,
    events: &'a [EventRow<'a>],
}

impl Browser {
    /// Back Office: adds an item of `kind` from `(field, value)` pairs.
    async fn add_back_office(&mut self, kind: &str, values: &[(&str, &str)]) {
        self.open(&format!("/back-office/{kind}")).await;
        for (field, value) in values {
            self.fill(&format!("#f-{field}"), value).await;
        }
        self.press("Add").await;
    }

    /// Offer Management → Create Offer, step by step with the seed's labels.
    async fn create_offer(&mut self, offer: &SeedOffer<'_>, png: &Path) {
        self.open("/offers").await;
        self.press("Create Offer").await;
        self.click("input[name=offer_type][value=MultiEvent]").await;
        self.choose("#f-tracking_system", offer.system).await;
        self.shot("create-offer-type").await;
        self.press("Proceed").await;
        assert_eq!(self.text(".wizard h2").await, "Offer Details", "{}", self.body().await);

        self.choose("#f-advertiser_id", offer.advertiser).await;
        self.fill("#f-campaign_name", offer.campaign).await;
        self.fill("#f-name", offer.name).await;
        self.fill("#f-link", offer.link).await;
        self.shot("offer-details").await;
        self.press("Next").await;

        self.fill("#f-headline", "Reach the levels and earn coins").await;
        self.fill("#f-description", "Pet dogs, solve puzzles, climb the levels.").await;
        self.fill("#f-categories", "Golf, Sports").await;
        self.upload("#f-creative", png).await;
        self.shot("description-creative").await;
        self.press("Next").await;

        self.fill("#f-budget", "5000").await;
        self.set_value("f-launch_date", "2026-11-22").await;
        self.fill("#f-age_from", "18+").await;
        self.choose("#f-platform", "iOS").await;
        self.fill("#f-countries", "United States, South Africa, Australia").await;
        self.fill("#f-epc", "1").await;
        self.shot("targeting-budget").await;
        self.press("Next").await;
        let heading = self.text(".wizard h2").await;
        assert_eq!(heading, "Event Mapping", "{}", self.body().await);

        for (index, event) in offer.events.iter().enumerate() {
            if index > 0 {
                self.press("Add event").await;
            }
            self.fill(&format!("#f-ev_id_{index}"), event.id).await;
            self.fill(&format!("#f-ev_name_{index}"), event.name).await;
            match event.sequence {
                Some(sequence) => {
                    self.choose(&format!("#f-ev_kind_{index}"), "Sequence").await;
                    self.fill(&format!("#f-ev_seq_{index}"), &sequence.to_string()).await;
                }
                None => {
                    self.choose(&format!("#f-ev_kind_{index}"), "Independent").await;
                    self.fill(&format!("#f-ev_seq_{index}"), "").await;
                }
            }
            self.fill(&format!("#f-ev_pending_{index}"), "0").await;
            self.fill(&format!("#f-ev_revenue_{index}"), event.revenue).await;
            self.fill(&format!("#f-ev_reward_{index}"), event.reward).await;
        }
        self.shot("event-mapping").await;
        self.press("Save").await;
        self.shot("review").await;
        self.press("Create Offer").await;
        self.shot("offer-created").await;
        let notice = self.text("[role=status]").await;
        assert!(notice.contains("created"), "{notice}");
    }

    /// The row of the offer named `name` in Offer Management.
    async fn offer_row(&self, name: &str) -> fantoccini::elements::Element {
        let xpath = format!("//tr[.//a[@class='offer-name' and normalize-space(.)='{name}']]");
        self.client.find(Locator::XPath(&xpath)).await.unwrap()
    }
}

async fn the_offer(app: &TestApp, slug: &str, name: &str) -> gokart_domain::offer::Offer {
    let tenant = app.engine.tenant(slug).await.unwrap().unwrap();
    let offers = app
        .engine
        .list_offers(&tenant, &Default::default(), gokart_storage::PageRequest::ALL)
        .await
        .unwrap();
    offers.items.into_iter().find(|o| o.spec.name == name).expect("the offer exists")
}

/// Seed 000 (Adjust), Parts 2, 4 and 5: credentials behind the eye icon, the multi-event offer
/// through the wizard with the seed's event mapping, clone, customize, share; then the publisher
/// reads its tracking link and customizes it.
#[tokio::test]
async fn seed_adjust_create_clone_customize_and_share() {
    use_temp_data_dir();
    let app = TestApp::spawn().await;
    let tenant = app.tenant("brownboots").await;
    let Some(mut browser) = Browser::start(&app, "brownboots", "adjust", 1280, 1000).await else {
        return;
    };
    browser.log_in("ops@brownboots.test", "password-123").await;
    browser.shot("offers-empty").await;

    // Part 2: Profile → Postback → eye icon.
    browser.follow(".profile-link").await;
    browser.click("[data-reveal]").await;
    assert_eq!(browser.value("#domain").await, "brownboots");
    assert_eq!(browser.value("#security-segment").await, tenant.segment);
    assert_eq!(browser.value("#signature").await, tenant.signature);
    browser.shot("postback-credentials").await;

    // The back office the offer needs: the advertiser and the publisher.
    browser.add_back_office("advertisers", &[("name", "Brain Games")]).await;
    browser
        .add_back_office("partners", &[("name", "Reward App"), ("email", "ops@rewardapp.test")])
        .await;
    browser.shot("partner-invited").await;
    let portal_email = browser.value("#portal-email").await;
    let portal_password = browser.value("#portal-password").await;
    assert_eq!(portal_email, "ops@rewardapp.test");
    assert!(!portal_password.is_empty());

    // Part 4: Offer creation.
    let png = temp_file("app-store-screenshot.png", PNG);
    let events = [
        EventRow {
            id: "Install",
            name: "Install",
            sequence: Some(1),
            revenue: "0.50",
            reward: "50",
        },
        EventRow {
            id: "s2s_level 200",
            name: "Reach Level 200",
            sequence: Some(2),
            revenue: "1.50",
            reward: "300",
        },
        EventRow {
            id: "s2s_level 400",
            name: "Reach Level 400",
            sequence: Some(3),
            revenue: "3",
            reward: "600",
        },
    ];
    let seed = SeedOffer {
        system: "Adjust",
        advertiser: "Brain Games",
        campaign: "Game_iOS_GoKart",
        name: "Pet the Dogs iOS",
        link: "https://app.adjust.com/abc123?campaign=Game_iOS_GoKart",
        events: &events,
    };
    browser.create_offer(&seed, &png).await;
    let offer = the_offer(&app, "brownboots", "Pet the Dogs iOS").await;
    let spec = &offer.spec;
    assert_eq!(spec.offer_type, gokart_domain::offer::OfferType::MultiEvent);
    assert_eq!(spec.tracking_system.as_str(), "Adjust");
    assert_eq!(spec.advertiser_campaign_name.as_deref(), Some("Game_iOS_GoKart"));
    assert_eq!(spec.categories, ["Golf", "Sports"]);
    assert_eq!(spec.targeting.countries, ["US", "ZA", "AU"]);
    assert_eq!(spec.targeting.age_from, Some(18));
    assert_eq!(spec.budget.total.unwrap().to_string(), "5000");
    let ids: Vec<_> =
        spec.events.iter().map(|e| (e.event_id.as_str(), e.sequence_number)).collect();
    assert_eq!(ids, [("Install", Some(1)), ("s2s_level 200", Some(2)), ("s2s_level 400", Some(3))]);
    assert_eq!(spec.events[1].revenue.unwrap().to_string(), "1.5");
    // The creative is served back as the image it is.
    let creative = &spec.creatives[0].url;
    let response = app
        .client
        .get(creative.replace(
            &format!("app.brownboots.localhost:{}", app.addr.port()),
            &app.addr.to_string(),
        ))
        .header("Host", format!("app.brownboots.localhost:{}", app.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);

    // Part 5: clone, customize the clone for the publisher, share it.
    let row = browser.offer_row("Pet the Dogs iOS").await;
    browser.navigate_by(row.find(Locator::Css("button[aria-label^='Clone']")).await.unwrap()).await;
    browser.shot("clone-opened").await;
    assert!(browser.body().await.contains("Offer cloned"));
    browser.press("Proceed").await;
    browser.fill("#f-name", "Pet the Dogs iOS – Reward App").await;
    browser.press("Next").await;
    browser.press("Next").await;
    browser.press("Next").await;
    browser.fill("#f-ev_revenue_1", "2").await;
    browser.shot("clone-customized").await;
    browser.press("Save").await;
    browser.press("Save Changes").await;
    let clone = the_offer(&app, "brownboots", "Pet the Dogs iOS – Reward App").await;
    assert_eq!(clone.spec.events[1].revenue.unwrap().to_string(), "2");
    assert_eq!(clone.spec.events.len(), 3);
    assert!(clone.partner_id.is_none(), "a clone is not shared yet");

    let row = browser.offer_row("Pet the Dogs iOS – Reward App").await;
    browser.navigate_by(row.find(Locator::Css("a.share")).await.unwrap()).await;
    browser.choose("#f-partner_id", "Reward App").await;
    browser.shot("share-picker").await;
    browser.press("Share").await;
    browser.shot("shared").await;
    let notice = browser.text("[role=status]").await;
    let tracking_link = app.engine.urls.tracking_link("brownboots", clone.id);
    assert!(notice.contains(&tracking_link), "{notice}");
    let shared = the_offer(&app, "brownboots", "Pet the Dogs iOS – Reward App").await;
    assert!(shared.partner_id.is_some());
    // A shared offer has no share icon any more: it cannot be re-shared.
    let row = browser.offer_row("Pet the Dogs iOS – Reward App").await;
    assert!(row.find(Locator::Css("a.share")).await.is_err());
    browser.open(&format!("/offers/{}/history", shared.id)).await;
    browser.shot("history").await;
    assert!(browser.body().await.contains("sharedWith"));

    // The publisher's portal.
    browser.press("Sign out").await;
    browser.log_in(&portal_email, &portal_password).await;
    assert_eq!(browser.path().await, "/portal");
    browser.shot("portal-offers").await;
    let body = browser.body().await;
    assert!(body.contains("Pet the Dogs iOS – Reward App"), "{body}");
    let rows = browser.client.find_all(Locator::Css("tbody tr")).await.unwrap();
    assert_eq!(rows.len(), 1, "only the offer shared with this publisher");
    browser.press("Pet the Dogs iOS – Reward App").await;
    assert_eq!(browser.value("#tracking-link").await, tracking_link);
    browser.fill("#f-pub_click_id", "{click_id}").await;
    browser.fill("#f-pub_member_id", "member-42").await;
    browser.fill("#f-pub_sub_1", "wall a").await;
    browser.press("Build URL").await;
    browser.shot("portal-customized-url").await;
    assert_eq!(
        browser.value("#customized-link").await,
        format!(
            "{tracking_link}?pub_click_id={{click_id}}&pub_member_id=member-42&pub_sub_1=wall%20a"
        )
    );
    // Partners cannot reach the tenant's pages.
    browser.open("/offers").await;
    assert!(browser.body().await.contains("for the tenant's staff"));
    close(browser).await;
}

/// Seed 001 (AppsFlyer), Part 5: the multi-event offer with an Independent purchase event.
#[tokio::test]
async fn seed_appsflyer_multi_event_offer() {
    use_temp_data_dir();
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let Some(mut browser) = Browser::start(&app, "brownboots", "appsflyer", 1280, 1000).await
    else {
        return;
    };
    browser.log_in("ops@brownboots.test", "password-123").await;
    browser.add_back_office("advertisers", &[("name", "Golfin")]).await;
    let png = temp_file("screenshot.png", PNG);
    let events = [
        EventRow {
            id: "Install",
            name: "Install",
            sequence: Some(1),
            revenue: "0.40",
            reward: "40",
        },
        EventRow {
            id: "level_10",
            name: "Reach Level 10",
            sequence: Some(2),
            revenue: "1",
            reward: "100",
        },
        EventRow {
            id: "af_purchase",
            name: "Purchase",
            sequence: None,
            revenue: "2.5",
            reward: "250",
        },
    ];
    let seed = SeedOffer {
        system: "AppsFlyer",
        advertiser: "Golfin",
        campaign: "",
        name: "Golfin iOS",
        link: "https://app.appsflyer.com/id123456789?pid=gokart_int&c=golfin",
        events: &events,
    };
    browser.create_offer(&seed, &png).await;
    let offer = the_offer(&app, "brownboots", "Golfin iOS").await;
    assert_eq!(offer.spec.tracking_system.as_str(), "AppsFlyer");
    let ids: Vec<_> =
        offer.spec.events.iter().map(|e| (e.event_id.as_str(), e.sequence_number)).collect();
    assert_eq!(ids, [("Install", Some(1)), ("level_10", Some(2)), ("af_purchase", None)]);
    close(browser).await;
}

/// Wizard errors appear next to their field with the input kept; a renamed executable is
/// refused by its content; nothing is saved.
#[tokio::test]
async fn wizard_errors_and_renamed_executable() {
    let data_dir = use_temp_data_dir();
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let Some(mut browser) = Browser::start(&app, "brownboots", "errors", 1280, 900).await else {
        return;
    };
    browser.log_in("ops@brownboots.test", "password-123").await;
    browser.open("/offers/new").await;
    browser.choose("#f-tracking_system", "CustomTracking").await;
    browser.press("Proceed").await;
    browser.fill("#f-name", "Pet the Dogs iOS").await;
    browser.fill("#f-link", "https://tracker.example/click").await;
    browser.press("Next").await;
    browser.shot("link-needs-click-id").await;
    let error = browser.text("#link-error").await;
    assert!(error.contains("{gk_click_id}"), "{error}");
    assert_eq!(browser.value("#f-name").await, "Pet the Dogs iOS", "input kept");
    browser.fill("#f-link", "https://tracker.example/click?id={gk_click_id}").await;
    browser.press("Next").await;

    let tenant = app.engine.tenant("brownboots").await.unwrap().unwrap();
    let creatives = data_dir.join("creatives").join(tenant.id.to_string());
    let elf = [b"\x7fELF\x02\x01\x01\0".as_slice(), &[0u8; 256]].concat();
    let renamed = temp_file("screenshot.png", &elf);
    browser.fill("#f-headline", "Pet dogs").await;
    browser.upload("#f-creative", &renamed).await;
    browser.press("Next").await;
    browser.shot("renamed-executable").await;
    let error = browser.text("#creative-error").await;
    assert!(error.contains("not an image"), "{error}");
    assert_eq!(browser.value("#f-headline").await, "Pet dogs", "input kept");
    assert!(!creatives.exists() || std::fs::read_dir(&creatives).unwrap().next().is_none());

    // Back to the Event Mapping with a lower-case install event.
    browser.press("Next").await;
    browser.press("Next").await;
    browser.fill("#f-ev_id_0", "install").await;
    browser.press("Save").await;
    browser.shot("install-event-id").await;
    let error = browser.text("#ev_id_0-error").await;
    assert!(error.contains("Install"), "{error}");
    let offers = app
        .engine
        .list_offers(&tenant, &Default::default(), gokart_storage::PageRequest::ALL)
        .await
        .unwrap();
    assert_eq!(offers.total, 0, "nothing saved");
    close(browser).await;
}

/// The pages fit a 390 px phone: no sideways scrolling, navigation wraps.
#[tokio::test]
async fn pages_fit_a_phone() {
    let app = TestApp::spawn().await;
    app.tenant("brownboots").await;
    let Some(mut browser) = Browser::start(&app, "brownboots", "phone", 390, 844).await else {
        return;
    };
    browser.log_in("ops@brownboots.test", "password-123").await;
    for (path, name) in [
        ("/offers", "offers"),
        ("/offers/new", "create-offer"),
        ("/profile/postback", "postback"),
        ("/back-office/partners", "back-office"),
    ] {
        browser.open(path).await;
        browser.shot(name).await;
        let width = browser
            .client
            .execute("return document.documentElement.scrollWidth;", vec![])
            .await
            .unwrap();
        let viewport = browser.client.execute("return window.innerWidth;", vec![]).await.unwrap();
        assert!(
            width.as_u64().unwrap() <= viewport.as_u64().unwrap(),
            "{path}: {width} > {viewport}"
        );
    }
    close(browser).await;
}
