//! Optional TLS (DESIGN.md §14): `fleet-edge serve --tls-cert FILE
//! --tls-key FILE` serves HTTPS with rustls, against the real binary: a
//! client that trusts the certificate is answered, plain HTTP to the same
//! port is not, and a key that does not match its certificate stops the
//! start with a message naming the problem.

#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{BIN, TOKEN};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &std::path::Path, cert: &std::path::Path, key: &std::path::Path) -> Command {
    let token = dir.join("token");
    std::fs::write(&token, TOKEN).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(dir.join("edge.db"))
        .arg("--token-file")
        .arg(&token)
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key);
    cmd
}

#[tokio::test]
async fn the_edge_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("edge.crt"), dir.path().join("edge.key"));
    std::fs::write(&cert, issued.cert.pem()).unwrap();
    std::fs::write(&key, issued.key_pair.serialize_pem()).unwrap();
    let mut child = Child(
        serve(dir.path(), &cert, &key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = testkit::listening_addr(&mut child.0, Duration::from_secs(60)).unwrap();
    let port = addr.rsplit(':').next().unwrap();

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(issued.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr.parse().unwrap())
        .build()
        .unwrap();
    let r = client
        .get(format!("https://localhost:{port}/state"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A client that does not trust the certificate is not answered.
    let untrusting = reqwest::Client::builder()
        .resolve("localhost", addr.parse().unwrap())
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
    // Nor is plain HTTP on the TLS port.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = plain.get(format!("http://{addr}/healthz")).send().await;
    assert!(r.is_err() || r.unwrap().status() != 200);
    // The server still serves after those failed handshakes.
    let r = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn a_key_that_does_not_match_its_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let a = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("edge.crt"), dir.path().join("edge.key"));
    std::fs::write(&cert, a.cert.pem()).unwrap();
    std::fs::write(&key, b.key_pair.serialize_pem()).unwrap();
    let out = serve(dir.path(), &cert, &key).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS"), "{err}");
    assert!(!dir.path().join("edge.db").exists(), "nothing was touched");
    // A missing key file names the file.
    let out = serve(dir.path(), &cert, &dir.path().join("missing.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.key"));
}
