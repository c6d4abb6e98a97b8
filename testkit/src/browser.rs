//! A headless Chromium for browser tests, driven by the real ChromeDriver
//! over the W3C WebDriver protocol (JSON over HTTP on loopback).
//!
//! The client is the dozen requests the tests need, over a blocking
//! `std::net::TcpStream`: a WebDriver crate (fantoccini) would add its own
//! HTTP stack and the `webdriver` crate's dependencies for nothing the
//! tests use (docs/decisions/0025-status-dashboard-pages.md).
//!
//! Chromium and ChromeDriver come from Debian (`chromium`,
//! `chromium-driver`; `.ci/run` installs them). `FLEET_TEST_CHROMIUM` and
//! `FLEET_TEST_CHROMEDRIVER` name other binaries. A missing binary is a
//! test failure, never a skip.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One ChromeDriver process and one browser session; both end on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile_dir::Dir,
}

/// An element of the current page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(String);

fn binary(env: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.is_file(),
        "{} is missing: browser tests need Chromium and ChromeDriver \
         (Debian: apt-get install chromium chromium-driver; or set {env})",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; answers status and JSON body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    // ChromeDriver keeps the connection open whatever we ask: read the
    // headers, then exactly the body they announce.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let split = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other(
                "connection closed before the headers ended",
            ));
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let length: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    let mut content = raw[split + 4..].to_vec();
    loop {
        let done = match length {
            Some(n) => content.len() >= n,
            None if chunked => content.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        content.extend_from_slice(&buf[..n]);
    }
    if chunked {
        content = dechunk(&content);
    }
    let value = serde_json::from_slice(&content).unwrap_or(Value::Null);
    Ok((status, value))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 || data.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[(eol + 4 + size).min(data.len())..];
    }
    out
}

/// A temporary directory without the tempfile crate (testkit has no
/// dependencies beyond JSON and base64).
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new(prefix: &str) -> Dir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let path =
                std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&path).expect("a temporary directory");
            Dir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Browser {
    /// Start ChromeDriver on a free loopback port and a headless Chromium
    /// session with a `width`×`height` window. Panics (fails the test) when
    /// either binary is missing or does not start within 30 s.
    pub fn start(width: u32, height: u32) -> Browser {
        let chromium = binary("FLEET_TEST_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = binary("FLEET_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", chromedriver.display()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, v)) = http(port, "GET", "/status", None)
                && v["value"]["ready"] == true
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver did not answer on 127.0.0.1:{port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile_dir::Dir::new("fleet-chromium");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-dev-shm-usage",
                    "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let answer = http(port, "POST", "/session", Some(&caps));
        let session = match &answer {
            Ok((200, v)) => v["value"]["sessionId"].as_str().map(str::to_owned),
            _ => None,
        };
        let Some(session) = session else {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("chromedriver did not start a Chromium session: {answer:?}");
        };
        let browser = Browser {
            driver,
            port,
            session,
            _profile: profile,
        };
        browser.set_window(width, height);
        browser
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let body = body.or_else(|| (method == "POST").then(|| json!({})));
        match http(self.port, method, &path, body.as_ref()) {
            Ok((200, v)) => v["value"].clone(),
            other => panic!("WebDriver {method} {path}: {other:?}"),
        }
    }

    /// Resize the window (the viewport follows, less the browser chrome,
    /// which headless Chromium has none of).
    pub fn set_window(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url})));
    }

    pub fn url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn title(&self) -> String {
        self.call("GET", "/title", None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The page's HTML as the browser holds it now.
    pub fn source(&self) -> String {
        self.call("GET", "/source", None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Elements matching a CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_owned())))
        .collect()
    }

    /// The first element matching a CSS selector; panics when none does.
    pub fn find(&self, css: &str) -> Element {
        self.find_all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css:?} on {}", self.url()))
    }

    /// The rendered text of an element (what a person reads).
    pub fn text(&self, e: &Element) -> String {
        self.call("GET", &format!("/element/{}/text", e.0), None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn attr(&self, e: &Element, name: &str) -> Option<String> {
        self.call("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .as_str()
            .map(str::to_owned)
    }

    /// A computed CSS property of an element (`background-color`…).
    pub fn css(&self, e: &Element, property: &str) -> String {
        self.call("GET", &format!("/element/{}/css/{property}", e.0), None)
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.call(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({"text": text})),
        );
    }

    pub fn click(&self, e: &Element) {
        self.call("POST", &format!("/element/{}/click", e.0), None);
    }

    /// Run `script` (a function body; `arguments` are `args`) in the page.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Save a PNG of what the window shows to `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.call("GET", "/screenshot", None);
        write_png(path, &v);
    }

    /// Save a PNG of the whole page, beyond the window (through
    /// Chromium's DevTools command), to `path`.
    pub fn screenshot_full_page(&self, path: &Path) {
        let v = self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Page.captureScreenshot",
                         "params": {"format": "png", "captureBeyondViewport": true}})),
        );
        write_png(path, &v["data"]);
    }

    /// Poll `cond` on this browser until it holds, at most `timeout`.
    pub fn wait_until(&self, what: &str, timeout: Duration, cond: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on {}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn write_png(path: &Path, data: &Value) {
    let data = data
        .as_str()
        .unwrap_or_else(|| panic!("no screenshot data: {data}"));
    let png = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("screenshot base64");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("screenshot directory");
    }
    std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Where screenshots go: `target/screenshots/` of the workspace (or of
/// `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace().join("target"))
        .join("screenshots")
}
