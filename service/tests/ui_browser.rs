//! The UI in a real browser: headless Debian Chromium driven over WebDriver (chromedriver +
//! fantoccini), against the service on PostgreSQL and moto S3. A person registers, logs in, is
//! refused a file over the size limit before it is sent, uploads a CSV (the progress bar fills),
//! runs the profile (its progress is followed live) and reads the column table. Every page gets
//! a screenshot under `$CARGO_TARGET_DIR/ui-screenshots/` (or `target/ui-screenshots/`) and an
//! axe-core check: no `serious` or `critical` violation.
//!
//! Needs `chromium`, `chromium-driver` and `tests/browser/node_modules` (axe-core); scripts/test
//! installs them. Without them this test fails (it does not skip).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::config::{Credentials, Region};
use clap::Parser;
use data_processor::configuration::Cli;
use data_processor::startup::Application;
use data_processor::storage;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use testkit::moto::MotoServer;
use testkit::postgres::TestDatabase;
use testkit::process::ChildGuard;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Small, so that the over-the-limit case needs only a small file.
const UPLOAD_LIMIT: u64 = 256 * 1024;
/// The upload form shows an error.
const UPLOAD_ERROR_SHOWN: &str = "document.getElementById('upload-error').textContent !== ''";
const DEADLINE: Duration = Duration::from_secs(30);
const PASSWORD: &str = "correct horse battery staple";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the service crate is in the workspace")
        .to_path_buf()
}

fn axe_path() -> PathBuf {
    workspace_root().join("tests/browser/node_modules/axe-core/axe.min.js")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace_root().join(target)
    };
    target.join("ui-screenshots")
}

/// Fails with one line naming what is missing and how to get it.
fn require_tools() {
    let missing: Vec<String> = [CHROMIUM, CHROMEDRIVER]
        .iter()
        .map(PathBuf::from)
        .chain([axe_path()])
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "missing {}: run scripts/test (it installs chromium, chromium-driver and `npm ci --prefix tests/browser`)",
        missing.join(", ")
    );
}

struct Browser {
    client: Client,
    base: String,
    axe: String,
    shots: PathBuf,
    shot: u32,
    _driver: ChildGuard,
    _logs: tempfile::TempDir,
}

impl Browser {
    async fn start(base: String) -> Self {
        let logs = tempfile::tempdir().expect("temp dir");
        let port = testkit::free_port();
        let driver = ChildGuard::spawn(
            "chromedriver",
            Command::new(CHROMEDRIVER).arg(format!("--port={port}")),
            &logs.path().join("chromedriver.log"),
        );
        let driver_url = format!("http://127.0.0.1:{port}");
        testkit::wait_for_http(&format!("{driver_url}/status"), DEADLINE).await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1000", "--lang=en-US"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .expect("a WebDriver session with headless Chromium");
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(DEADLINE),
                Some(DEADLINE),
                Some(Duration::ZERO),
            ))
            .await
            .expect("set timeouts");
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).expect("create the screenshot directory");
        Self {
            client,
            base,
            axe: std::fs::read_to_string(axe_path()).expect("read axe-core"),
            shots,
            shot: 0,
            _driver: driver,
            _logs: logs,
        }
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn wait_for_path(&self, expected: &str) {
        testkit::wait_until(
            &format!("the browser to be at {expected}"),
            DEADLINE,
            || async { (self.path().await == expected).then_some(()) },
        )
        .await;
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no element {css} on {}: {e}", self.path().await),
        }
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("element text")
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.find(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn eval(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("run {script}: {e}"))
    }

    /// Waits until `script` (an expression) is true in the page.
    async fn wait_for(&self, what: &str, script: &str) {
        let expression = format!("return Boolean({script});");
        testkit::wait_until(what, DEADLINE, || async {
            (self.client.execute(&expression, vec![]).await.ok() == Some(Value::Bool(true)))
                .then_some(())
        })
        .await;
    }

    /// A screenshot of the viewport, then axe-core's check of the whole page.
    async fn check_page(&mut self, name: &str) {
        self.shot += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let file = self.shots.join(format!("{:02}-{name}.png", self.shot));
        std::fs::write(&file, png).expect("write the screenshot");
        println!("screenshot: {}", file.display());

        // Nothing inline for the policy to block (or for an injected name to hide in).
        let inline = self
            .eval(
                "return [...document.querySelectorAll('*')].filter(e =>
                   e.hasAttribute('style') || (e.tagName === 'SCRIPT' && !e.src) ||
                   [...e.attributes].some(a => a.name.startsWith('on'))).map(e => e.outerHTML);",
            )
            .await;
        assert_eq!(inline, json!([]), "inline script or style on {name}");

        // Injected through WebDriver, which the page's Content-Security-Policy does not govern.
        self.client
            .execute(&self.axe, vec![])
            .await
            .expect("inject axe-core");
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(r.violations.map(v => ({
                       id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.map(n => n.target.join(' ')) }))))
                   .catch(e => done({ error: String(e) }));",
                vec![],
            )
            .await
            .expect("run axe-core");
        let violations = result
            .as_array()
            .unwrap_or_else(|| panic!("axe-core failed on {name}: {result}"));
        for violation in violations {
            println!("axe on {name}: {violation}");
        }
        let serious: Vec<&Value> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            serious.is_empty(),
            "serious accessibility violations on {name}: {serious:#?}"
        );
    }
}

struct App {
    address: String,
    server: tokio::task::JoinHandle<()>,
    _moto: MotoServer,
    _db: TestDatabase,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The service on a fresh database and an empty moto bucket.
async fn spawn_app() -> App {
    let db = TestDatabase::create().await;
    let moto = MotoServer::start().await;
    let bucket = moto.create_bucket().await;
    let storage_url = format!("s3://{bucket}");
    let limit = UPLOAD_LIMIT.to_string();
    let config = Cli::try_parse_from([
        "data-processor",
        "--listen-addr",
        "127.0.0.1:0",
        "--database-url",
        db.url.as_str(),
        "--storage-url",
        storage_url.as_str(),
        "--session-cookie-secure",
        "false",
        "--log-filter",
        "warn",
        "--upload-max-bytes",
        limit.as_str(),
    ])
    .expect("test configuration parses")
    .config;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto.endpoint())
        .region(Region::new(testkit::moto::REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let store = storage::connect_with_sdk_config(&config.storage_settings(), &sdk)
        .await
        .expect("connect to moto");
    let app = Application::build_with_store(config, store)
        .await
        .expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));
    App {
        address,
        server,
        _moto: moto,
        _db: db,
    }
}

/// A CSV of `rows` rows: an id, a name, a score with some blanks, a date.
fn csv(rows: usize) -> String {
    let mut text = String::from("id,name,score,joined\n");
    for i in 0..rows {
        let score = if i % 7 == 0 {
            String::new()
        } else {
            format!("{:.2}", (i % 100) as f64 * 1.5)
        };
        text.push_str(&format!(
            "{i},user{},{score},2024-{:02}-{:02}\n",
            i % 50,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_registers_uploads_a_csv_and_reads_its_profile() {
    require_tools();
    let app = spawn_app().await;
    let mut browser = Browser::start(app.address.clone()).await;
    let files = tempfile::tempdir().expect("temp dir");

    // Not logged in: / leads to the login page.
    browser.goto("/").await;
    browser.wait_for_path("/login").await;
    // The stylesheet loaded under the policy (the header is dark).
    let header = browser
        .eval("return getComputedStyle(document.querySelector('.site-header')).backgroundColor;")
        .await;
    assert_eq!(header, json!("rgb(15, 41, 66)"));
    browser.check_page("login").await;

    browser.click("a[href='/register']").await;
    browser.wait_for_path("/register").await;
    let username = format!("ui{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    browser.type_into("#username", &username).await;
    browser.type_into("#password", PASSWORD).await;
    browser.check_page("register").await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path("/login?registered=1").await;
    assert!(browser.text("p.notice").await.contains("log in"));

    browser.type_into("#username", &username).await;
    browser.type_into("#password", "not the password").await;
    browser.click("form button[type=submit]").await;
    assert!(
        browser
            .text("p.error")
            .await
            .contains("Wrong username or password")
    );
    browser.check_page("login-failed").await;
    browser
        .find("#password")
        .await
        .clear()
        .await
        .expect("clear");
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path("/files").await;
    assert!(browser.text(".who").await.contains(&username));
    browser.check_page("files-empty").await;

    // Over the limit: refused in the page, before anything is sent.
    let big = files.path().join("too-big.csv");
    std::fs::write(&big, csv(20_000)).expect("write the big CSV");
    assert!(std::fs::metadata(&big).unwrap().len() > UPLOAD_LIMIT);
    browser.type_into("#file", big.to_str().unwrap()).await;
    browser.click("#upload-form button[type=submit]").await;
    browser
        .wait_for("the size-limit message", UPLOAD_ERROR_SHOWN)
        .await;
    let refused = browser.text("#upload-error").await;
    assert!(
        refused.contains("more than the limit of 256.0 KiB"),
        "{refused}"
    );
    browser.check_page("upload-too-large").await;

    // The same file from a page that believes in a larger limit: the server refuses it (413,
    // or the connection closed early) and the page says why.
    browser
        .eval("document.getElementById('upload-form').dataset.maxBytes = String(64 << 20); document.getElementById('upload-error').textContent = ''; return true;")
        .await;
    browser.click("#upload-form button[type=submit]").await;
    browser
        .wait_for(
            "the upload to fail",
            "document.getElementById('upload-form').dataset.state === 'failed'",
        )
        .await;
    let refused = browser.text("#upload-error").await;
    assert!(refused.starts_with("The upload failed"), "{refused}");
    assert!(refused.contains("limit"), "{refused}");
    browser.check_page("upload-refused-by-the-server").await;
    browser
        .eval("document.getElementById('upload-form').dataset.maxBytes = String(262144); return true;")
        .await;

    // A CSV under the limit: the progress bar fills, and the page links to the file.
    let small = files.path().join("people.csv");
    std::fs::write(&small, csv(3_000)).expect("write the CSV");
    browser.type_into("#file", small.to_str().unwrap()).await;
    browser.click("#upload-form button[type=submit]").await;
    browser
        .wait_for(
            "the upload to finish",
            "document.getElementById('upload-form').dataset.state === 'done'",
        )
        .await;
    let progress = browser
        .eval("const p = document.getElementById('upload-progress'); return [p.value, p.max, p.hidden];")
        .await;
    assert_eq!(progress[0], progress[1], "the bar is full: {progress}");
    assert_eq!(progress[2], json!(false));
    assert!(
        browser
            .text("#upload-status")
            .await
            .contains("Uploaded “people.csv”")
    );
    // The list below is refreshed in place.
    browser
        .wait_for("the list to show the upload", "(document.getElementById('file-table') || {textContent: ''}).textContent.includes('people.csv')")
        .await;
    browser.check_page("uploaded").await;

    browser.click("#uploaded-link").await;
    browser.find("#run-profile").await;
    assert_eq!(browser.text("h1").await, "people.csv");
    browser.check_page("file").await;

    // The profile: queued through the API, followed live, then shown as a table.
    browser.click("#run-profile").await;
    browser.find("#profile-table").await;
    let summary = browser.text("#profile-summary").await;
    assert!(summary.starts_with("3000 rows, 4 columns"), "{summary}");
    let rows = browser
        .eval("return [...document.querySelectorAll('#profile-table tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent]);")
        .await;
    assert_eq!(
        rows,
        json!([
            ["id", "integer"],
            ["name", "text"],
            ["score", "float"],
            ["joined", "date/time"]
        ])
    );
    let plots = browser
        .eval("return document.querySelectorAll('#profile-table svg.box-plot').length;")
        .await;
    assert_eq!(plots, json!(2), "a box plot per numeric column");
    browser.check_page("profile").await;

    browser.goto("/files").await;
    assert!(browser.text("#file-table").await.contains("people.csv"));
    browser.check_page("files").await;

    // A malformed CSV: the job fails, and the page says where, without a reload.
    let ragged = files.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b,c\n1,2,3\n4,5\n6,7,8\n").expect("write the ragged CSV");
    browser.type_into("#file", ragged.to_str().unwrap()).await;
    browser.click("#upload-form button[type=submit]").await;
    browser.click("#uploaded-link").await;
    browser.click("#run-profile").await;
    browser
        .wait_for(
            "the failure",
            "document.getElementById('job-error').textContent !== ''",
        )
        .await;
    let failure = browser.text("#job-error").await;
    assert!(
        failure.starts_with("The profile failed") && failure.contains("line 3"),
        "{failure}"
    );
    browser.check_page("profile-failed").await;
    browser.goto("/files").await;

    // Delete asks first, then removes the row.
    browser.click("button.js-delete").await;
    let question = testkit::wait_until("the confirmation", DEADLINE, || async {
        browser.client.get_alert_text().await.ok()
    })
    .await;
    // Newest first: the ragged file is the first row.
    assert!(question.contains("ragged.csv"), "{question}");
    browser.client.accept_alert().await.expect("accept");
    browser
        .wait_for(
            "the row to go",
            "document.querySelectorAll('#file-table tbody tr').length === 1",
        )
        .await;
    assert!(
        browser
            .text("#list-status")
            .await
            .contains("Deleted “ragged.csv”")
    );

    browser.click("header form button[type=submit]").await;
    browser.wait_for_path("/login").await;
    browser.goto("/files").await;
    browser.wait_for_path("/login").await;

    // A session that ends while a page is open (logged out elsewhere): the page says so, with
    // the way back.
    browser.type_into("#username", &username).await;
    browser.type_into("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path("/files").await;
    let ended = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/api/v1/session', { method: 'DELETE' }).then(r => done(r.status));",
            vec![],
        )
        .await
        .expect("log out from the side");
    assert_eq!(ended, json!(204));
    browser.type_into("#file", small.to_str().unwrap()).await;
    browser.click("#upload-form button[type=submit]").await;
    browser
        .wait_for("the 401 message", UPLOAD_ERROR_SHOWN)
        .await;
    let message = browser.text("#upload-error").await;
    assert!(
        message.contains("401") && message.contains("log in again"),
        "{message}"
    );
    browser.check_page("session-ended").await;
    browser.click("#upload-error a[href='/login']").await;
    browser.wait_for_path("/login").await;

    browser.client.close().await.expect("close the browser");
}
