//! The review server over real HTTP: the token, the origin and host checks, the
//! journal, and images only from inside the dataset.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use vista_clean::{Decision, Manifest, Review, read_journal};

use crate::{dataset, manifest};

/// Serves `review` on a loopback port from a background thread.
pub fn start(review: Review) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            review.serve(listener).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// One HTTP/1.0 request; returns the status and the body.
pub fn http(addr: SocketAddr, request: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&out[..head_end]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out[head_end + 4..].to_vec())
}

fn post(addr: SocketAddr, headers: &str, body: &str) -> u16 {
    http(
        addr,
        &format!(
            "POST /api/decide HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .0
}

fn session(root: &Path, images: &[&str], journal: &Path) -> (Review, Manifest) {
    let m = manifest(root, images);
    (Review::new(m.clone(), journal.to_path_buf()).unwrap(), m)
}

#[test]
fn decisions_need_the_token_the_origin_and_the_host() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let journal = tmp.path().join("journal.jsonl");
    let (review, _) = session(&root, &["cat/0.png", "dog/1.png"], &journal);
    let token = review.token().to_string();
    let addr = start(review);

    let (status, page) = http(addr, &format!("GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n"));
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&page).contains(&token),
        "the page carries the token"
    );
    // DNS rebinding: another host name pointing at us is refused.
    assert_eq!(
        http(addr, "GET / HTTP/1.0\r\nHost: evil.example:80\r\n\r\n").0,
        421
    );

    let body = r#"{"index": 0, "action": "remove"}"#;
    assert_eq!(post(addr, "", body), 403, "no token");
    assert_eq!(
        post(addr, "X-Vista-Token: wrong\r\n", body),
        403,
        "wrong token"
    );
    let with = format!("X-Vista-Token: {token}\r\n");
    assert_eq!(
        post(
            addr,
            &format!("{with}Origin: http://evil.example\r\n"),
            body
        ),
        403
    );
    assert_eq!(
        post(addr, &format!("{with}Sec-Fetch-Site: cross-site\r\n"), body),
        403
    );
    assert!(
        read_journal(&journal).unwrap().is_empty(),
        "nothing refused is recorded"
    );

    assert_eq!(
        post(addr, &format!("{with}Origin: http://{addr}\r\n"), body),
        204
    );
    let relabel = r#"{"index": 1, "action": "relabel", "class": "owl"}"#;
    assert_eq!(post(addr, &with, relabel), 204);
    assert_eq!(
        post(
            addr,
            &with,
            r#"{"index": 1, "action": "relabel", "class": "zebra"}"#
        ),
        400
    );
    assert_eq!(post(addr, &with, r#"{"index": 9, "action": "keep"}"#), 404);
    let j = read_journal(&journal).unwrap();
    assert_eq!(j["cat/0.png"], Decision::Remove);
    assert_eq!(
        j["dog/1.png"],
        Decision::Relabel {
            class: "owl".into()
        }
    );
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap().lines().count(),
        2
    );
}

#[test]
fn images_outside_the_dataset_are_not_served() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    std::fs::write(tmp.path().join("secret.png"), b"secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.path().join("secret.png"), root.join("cat/link.png")).unwrap();
    let (review, _) = session(
        &root,
        &["cat/0.png", "../secret.png", "cat/link.png", "/etc/passwd"],
        &tmp.path().join("j.jsonl"),
    );
    let token = review.token().to_string();
    let addr = start(review);
    let get = |i: usize| {
        http(
            addr,
            &format!("GET /image/{i}?t={token} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
        )
    };
    let (status, bytes) = get(0);
    assert_eq!(status, 200);
    assert_eq!(bytes, std::fs::read(root.join("cat/0.png")).unwrap());
    for i in 1..4 {
        let (status, bytes) = get(i);
        assert_eq!(status, 403, "item {i}");
        assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
    }
    assert_eq!(get(7).0, 404);
    let (status, _) = http(
        addr,
        &format!("GET /image/..%2F..%2Fsecret.png HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    );
    assert!(
        status == 400 || status == 404,
        "a path is not an index: {status}"
    );
}

#[test]
fn a_journal_survives_a_torn_last_line_and_replays_on_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("j.jsonl");
    std::fs::write(
        &journal,
        "{\"image\":\"a.png\",\"action\":\"keep\"}\n{\"image\":\"a.png\",\"action\":\"remove\"}\n{\"image\":\"b.p",
    )
    .unwrap();
    let j = read_journal(&journal).unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j["a.png"], Decision::Remove, "the later line wins");
}

/// One HTTP/1.0 request; returns the whole response head and the body.
fn http_head(addr: SocketAddr, request: &str) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&out[..head_end]).to_ascii_lowercase(),
        out[head_end + 4..].to_vec(),
    )
}

#[test]
fn reads_need_the_token_or_our_own_page_and_images_are_not_shared() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let (review, _) = session(&root, &["cat/0.png"], &tmp.path().join("j.jsonl"));
    let token = review.token().to_string();
    let addr = start(review);
    for path in ["/image/0", "/api/items", "/image/0?t=wrong"] {
        let (status, body) = http(
            addr,
            &format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
        );
        assert_eq!(status, 403, "{path}");
        assert!(
            !String::from_utf8_lossy(&body).contains("cat/0.png"),
            "{path}"
        );
    }
    let (status, _) = http(
        addr,
        &format!("GET /api/items HTTP/1.0\r\nHost: {addr}\r\nX-Vista-Token: {token}\r\n\r\n"),
    );
    assert_eq!(status, 200);
    let (status, _) = http(
        addr,
        &format!("GET /image/0 HTTP/1.0\r\nHost: {addr}\r\nSec-Fetch-Site: same-origin\r\n\r\n"),
    );
    assert_eq!(status, 200);
    let (head, _) = http_head(
        addr,
        &format!("GET /image/0?t={token} HTTP/1.0\r\nHost: {addr}\r\n\r\n"),
    );
    for h in [
        "cross-origin-resource-policy: same-origin",
        "x-content-type-options: nosniff",
        "cache-control: no-store",
    ] {
        assert!(head.contains(h), "{h} in {head}");
    }
}

#[test]
fn oversized_and_malformed_bodies_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let journal = tmp.path().join("j.jsonl");
    let (review, _) = session(&root, &["cat/0.png"], &journal);
    let with = format!("X-Vista-Token: {}\r\n", review.token());
    let addr = start(review);
    let big = format!(
        "{{\"index\":0,\"action\":\"keep\",\"pad\":\"{}\"}}",
        "x".repeat(100_000)
    );
    assert_eq!(post(addr, &with, &big), 413);
    for bad in [
        "",
        "{",
        "[]",
        "{\"index\":0}",
        "{\"index\":-1,\"action\":\"keep\"}",
        "{\"index\":0,\"action\":\"burn\"}",
    ] {
        assert_eq!(post(addr, &with, bad), 400, "{bad}");
    }
    assert!(read_journal(&journal).unwrap().is_empty());
}

#[test]
fn a_thousand_concurrent_decisions_are_a_thousand_journal_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("data");
    dataset(&root);
    let journal = tmp.path().join("j.jsonl");
    let (review, _) = session(&root, &["cat/0.png", "cat/1.png", "dog/0.png"], &journal);
    let with = format!("X-Vista-Token: {}\r\n", review.token());
    let addr = start(review);
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let with = with.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let body = format!("{{\"index\":{},\"action\":\"keep\"}}", (t + i) % 3);
                    assert_eq!(post(addr, &with, &body), 204);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(text.lines().count(), 1000);
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
}
