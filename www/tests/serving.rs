//! The binary and the static files: the one stdout line, refusing fault switches off
//! loopback, and serving the demo and its wasm.

mod common;

use common::server_with;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_outbox-server"))
}

#[test]
fn faults_are_refused_on_a_non_loopback_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["--faults", "--host", "0.0.0.0", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "never said it was listening");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn the_binary_prints_one_listening_line_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let mut child = bin()
        .args(["--port", "0", "--faults", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on http://127.0.0.1:")
        .map(|port| format!("http://127.0.0.1:{port}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = url.as_ref().map(|u| {
        rt.block_on(async {
            reqwest::get(format!("{u}/api/todos"))
                .await
                .map(|r| r.status().as_u16())
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(url.is_some(), "{line:?}");
    assert_eq!(status.unwrap().unwrap(), 200);
    assert!(data.join("outbox.sqlite3").exists());
}

#[tokio::test]
async fn static_files_and_wasm_are_served_and_missing_dirs_are_fine() {
    let s = server_with(false, |c| {
        std::fs::create_dir_all(&c.static_dir).unwrap();
        std::fs::create_dir_all(&c.pkg_dir).unwrap();
        std::fs::write(c.static_dir.join("index.html"), "<h1>todos</h1>").unwrap();
        std::fs::write(c.pkg_dir.join("outbox_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    })
    .await;
    let index = s.client.get(s.at("/")).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(index.text().await.unwrap(), "<h1>todos</h1>");
    let wasm = s
        .client
        .get(s.at("/pkg/outbox_bg.wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    assert_eq!(
        s.client
            .get(s.at("/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.server.shutdown().await;

    let bare = server_with(false, |c| {
        c.static_dir = c.data_dir.join("absent");
        c.pkg_dir = c.data_dir.join("absent-too");
    })
    .await;
    assert_eq!(
        bare.client.get(bare.at("/")).send().await.unwrap().status(),
        404
    );
    assert_eq!(bare.get_json("/api/todos").await.0, 200);
    bare.server.shutdown().await;
}
