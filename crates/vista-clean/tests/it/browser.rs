//! The review page in a real headless browser (Debian's chromium and chromedriver,
//! driven over WebDriver): relabel one image, remove one with its keyboard shortcut,
//! reload, and check the page, the journal, and the files after applying and undoing.
//! Without chromedriver on the PATH the test says so and checks nothing else, unless
//! `VISTA_REQUIRE_BROWSER` is set (CI sets it), where that is a failure.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vista_clean::{Decision, Review, apply_journal, quarantine_dir, read_journal, undo_review};

use crate::server::start;
use crate::{dataset, manifest};

struct Driver {
    child: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self
            .agent
            .delete(&format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Option<Driver> {
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let base = format!("http://127.0.0.1:{port}");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut chrome = json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]});
        for bin in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
            if std::path::Path::new(bin).exists() {
                chrome["binary"] = json!(bin);
                break;
            }
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": chrome}}});
        let mut resp = agent
            .post(&format!("{base}/session"))
            .send_json(&caps)
            .expect("a WebDriver session");
        let v: Value = resp.body_mut().read_json().unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        Some(Driver {
            child,
            base,
            session,
            agent,
        })
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut resp = self.agent.post(&url).send_json(&body).unwrap();
        let v: Value = resp.body_mut().read_json().unwrap();
        assert!(v["value"].get("error").is_none(), "{path}: {v}");
        v["value"].clone()
    }

    fn script(&self, js: &str) -> Value {
        self.post("/execute/sync", json!({"script": js, "args": []}))
    }

    fn click(&self, css: &str) {
        let el = self.post("/element", json!({"using": "css selector", "value": css}));
        let id = el["element-6066-11e4-a52e-4f735466cecf"]
            .as_str()
            .unwrap()
            .to_string();
        self.post(&format!("/element/{id}/click"), json!({}));
    }

    /// Waits until `js` returns true.
    fn wait(&self, js: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.script(js) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {js}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn text(&self, css: &str) -> String {
        self.script(&format!(
            "return document.querySelector('{css}').textContent;"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    }
}

#[test]
fn relabel_and_remove_in_a_browser_survive_a_reload_and_apply_undoably() {
    if Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_err()
    {
        // CI installs the browser (.ci/run) and sets VISTA_REQUIRE_BROWSER, so there the
        // test cannot pass without running.
        assert!(
            std::env::var_os("VISTA_REQUIRE_BROWSER").is_none(),
            "VISTA_REQUIRE_BROWSER is set but chromedriver is not installed"
        );
        eprintln!("skipped: chromedriver is not installed (apt install chromium chromium-driver)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let journal = tmp.path().join("review.jsonl");
    let flags = manifest(&root, &["cat/0.png", "cat/1.png", "dog/0.png"]);
    let review = Review::new(flags.clone(), journal.clone()).unwrap();
    let addr = start(review);
    let driver = Driver::start().expect("chromedriver starts");
    driver.post("/url", json!({"url": format!("http://{addr}/")}));
    driver.wait("return document.body.dataset.ready === 'yes';");
    // The images load from the server.
    driver.wait("return [...document.images].every(i => i.complete && i.naturalWidth === 8);");

    // Relabel the first image to `owl` with the mouse.
    driver.script("document.querySelector('#item-0 .relabel-class').value = 'owl';");
    driver.click("#item-0 .relabel");
    driver.wait("return document.body.dataset.saved === '1';");
    // The page moved on to the second image; remove it with its shortcut.
    driver.script("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'x'}));");
    driver.wait("return document.body.dataset.saved === '2';");

    // A reload shows the saved decisions.
    driver.post("/refresh", json!({}));
    driver.wait("return document.body.dataset.ready === 'yes';");
    assert_eq!(driver.text("#item-0 .decision"), "relabel to owl");
    assert_eq!(driver.text("#item-1 .decision"), "remove");
    assert_eq!(driver.text("#item-2 .decision"), "undecided");

    let j = read_journal(&journal).unwrap();
    assert_eq!(
        j["cat/0.png"],
        Decision::Relabel {
            class: "owl".into()
        }
    );
    assert_eq!(j["cat/1.png"], Decision::Remove);

    // Applying moves the removed image to quarantine and relabels through the view.
    let applied = apply_journal(&root, &flags, &journal).unwrap();
    assert_eq!((applied.relabelled, applied.removed), (1, 1));
    let q = quarantine_dir(&root.canonicalize().unwrap());
    assert!(!root.join("cat/1.png").exists() && q.join("cat/1.png").is_file());
    let ds = vista_data::open(&root).unwrap();
    assert_eq!(ds.train.len(), 4);
    let relabelled = ds
        .train
        .iter()
        .find(|s| s.path.ends_with("cat/0.png"))
        .unwrap();
    assert_eq!(relabelled.label, 2);

    // Undo puts everything back.
    assert_eq!(undo_review(&root).unwrap().restored, 1);
    assert!(root.join("cat/1.png").is_file());
    let ds = vista_data::open(&root).unwrap();
    assert_eq!(ds.train.len(), 5);
    assert!(ds.view.is_none());
}
