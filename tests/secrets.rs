//! No password anywhere: distinctive passwords (from the CSV and from the environment through
//! `password_env`), every output on (stdout, stderr, JSON), and a server that echoes each
//! login in every form a server might (raw, JSON-escaped, URL-encoded, HTML-escaped, base64 of
//! `user:password`, cut in the middle by a snippet's end). Every output is then searched for
//! every form of every password.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use common::{raw_server_with, Reply};
use sdload::credentials::{write_csv, Credential};

const ENV_VAR: &str = "SDLOAD_TEST_SECRET_PASSWORD";

fn passwords() -> Vec<Credential> {
    vec![
        Credential::new("EXAMPLE\\alice", "Zq7\"Pa\\ss wörd+1/2%3"),
        Credential::new("bob@example.com", "Kx9<tag>&'amp'=;:@"),
        Credential::new("carol", "Wv4\ttab  two  spaces\u{2028}end"),
        // Given through the environment (password_env), never written in a file.
        Credential::new("dave", "Ej5-from-the-environment-!#$"),
    ]
}

/// Every form of a password the outputs are searched for.
fn forms(c: &Credential) -> Vec<(&'static str, String)> {
    let p = &c.password;
    let json = serde_json::to_string(p).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{}:{p}", c.username));
    let html = p
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    let collapsed: String = p
        .split(|ch: char| ch.is_whitespace() || ch.is_control())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        ("raw", p.clone()),
        ("json", json[1..json.len() - 1].to_owned()),
        ("url", sdload::secrets::url_encode(p)),
        ("base64", b64),
        ("html", html),
        ("collapsed", collapsed),
        // The first characters alone (a snippet cut in the middle of the password).
        ("prefix", p.chars().take(6).collect()),
    ]
}

/// A server that answers each login with one of five pages echoing the password in one form
/// or another, so that every slot a report has for server text holds some form of it.
async fn echo_server(c: &Credential) -> common::RawServer {
    let all = forms(c);
    let get = |name: &str| all.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let (raw, json, url, b64, html) = (
        get("raw"),
        get("json"),
        get("url"),
        get("base64"),
        get("html"),
    );
    let n = Arc::new(AtomicU64::new(0));
    raw_server_with(move |req| {
        let echoed = String::from_utf8_lossy(&req.body).into_owned();
        let (status, extra, body) = match n.fetch_add(1, Ordering::SeqCst) % 5 {
            // other_status: the request body as sent, then the password as written.
            0 => (
                "500 Internal Server Error",
                String::new(),
                format!("Error processing {echoed} raw={raw}"),
            ),
            // invalid_token (html): an HTML page.
            1 => (
                "200 OK",
                String::new(),
                format!("<html><body>Welcome <b>{html}</b></body></html>"),
            ),
            // invalid_token (JSON object): JSON-escaped and base64.
            2 => (
                "200 OK",
                String::new(),
                format!("{{\"echo\":\"{json}\",\"basic\":\"{b64}\"}}"),
            ),
            // invalid_token (not a JSON string): the password cut by the snippet's end.
            3 => (
                "200 OK",
                String::new(),
                format!("{} {raw} and more", "x".repeat(193)),
            ),
            // A redirect whose Location carries the password URL-encoded.
            _ => (
                "302 Found",
                format!("Location: https://sso.example.invalid/login?p={url}&b={b64}\r\n"),
                String::new(),
            ),
        };
        Reply::Bytes(
            format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_form_of_any_password_reaches_any_output() {
    let all = passwords();
    let dir = tempfile::tempdir().unwrap();
    for (i, c) in all.iter().enumerate() {
        let server = echo_server(c).await;
        let json = dir.path().join(format!("report{i}.json"));
        let markdown = dir.path().join(format!("report{i}.md"));
        let junit = dir.path().join(format!("report{i}.xml"));
        let scenario = dir.path().join(format!("s{i}.toml"));
        let from_env = i == all.len() - 1;
        if from_env {
            std::fs::write(
                &scenario,
                format!(
                    "[[users]]\nusername = \"{}\"\npassword_env = \"{ENV_VAR}\"\n",
                    c.username
                ),
            )
            .unwrap();
        } else {
            std::fs::write(&scenario, "").unwrap();
            write_csv(
                &dir.path().join(format!("users{i}.csv")),
                std::slice::from_ref(c),
            )
            .unwrap();
        }
        let mut args: Vec<String> = vec![
            "run".into(),
            scenario.display().to_string(),
            "--target".into(),
            server.url(),
            "-n".into(),
            "20".into(),
            "-c".into(),
            "1".into(),
            "--bad-ratio".into(),
            "0".into(),
            "--warmup".into(),
            "0s".into(),
            "--json".into(),
            json.display().to_string(),
            "--markdown".into(),
            markdown.display().to_string(),
            "--junit".into(),
            junit.display().to_string(),
            // A failing threshold puts observed values in every output.
            "--threshold".into(),
            "invalid_token == 0".into(),
        ];
        if !from_env {
            args.push("--credentials".into());
            args.push(
                dir.path()
                    .join(format!("users{i}.csv"))
                    .display()
                    .to_string(),
            );
        }
        let password = c.password.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_sdload"))
                .args(&args)
                .env(ENV_VAR, password)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // The echoing server's pages are not tokens: the invalid_token threshold fails (exit 1).
        assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
        let report = std::fs::read_to_string(&json).unwrap();
        let markdown = std::fs::read_to_string(&markdown).unwrap();
        let junit = std::fs::read_to_string(&junit).unwrap();
        assert!(junit.contains("<failure"), "{junit}");
        // The server really echoed: every slot holds something (masked).
        let v: serde_json::Value = serde_json::from_str(&report).unwrap();
        assert_eq!(v["counts"]["total"], 20);
        assert_eq!(v["counts"]["other_status"], 8, "{report}");
        assert!(v["redirect_location"].as_str().unwrap().contains("***"));
        assert!(v["problems"]["other_status"]["example"]
            .as_str()
            .unwrap()
            .contains("***"));
        assert_eq!(server.posts(), 20);
        if std::env::var_os("SDLOAD_SHOW").is_some() {
            eprintln!("{}", serde_json::to_string_pretty(&v["problems"]).unwrap());
            eprintln!(
                "{}",
                serde_json::to_string_pretty(&v["invalid_tokens"]).unwrap()
            );
            eprintln!("{}", v["redirect_location"]);
        }

        for (output, text) in [
            ("stdout", &stdout),
            ("stderr", &stderr),
            ("json", &report),
            ("markdown", &markdown),
            ("junit", &junit),
        ] {
            for other in &all {
                for (form, value) in forms(other) {
                    assert!(
                        !text.contains(&value),
                        "{output} of run {i} holds the {form} form of {}'s password:\n{text}",
                        other.username
                    );
                }
            }
        }
    }
}

#[test]
fn passwords_never_show_in_debug_output() {
    let c = &passwords()[0];
    let plan_like = format!("{c:?} {:?}", vec![c.clone()]);
    for (form, value) in forms(c) {
        assert!(!plan_like.contains(&value), "{form}: {plan_like}");
    }
}
