//! Bad input: malformed scenario and credentials files exit 2 naming the file, the line and
//! the field; valid but unusual files (BOM, CRLF, quoted commas) are read right; and the
//! scenario loader and the credentials reader never panic, whatever the bytes (proptest).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use proptest::prelude::*;
use sdload::credentials::{parse_csv, write_csv, Credential};
use sdload::scenario::{self, Source};

fn sdload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdload"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs a scenario file with these contents; returns the exit code and stderr.
fn run_scenario(dir: &Path, name: &str, contents: &[u8], extra: &[&str]) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    let mut args = vec!["run", path.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let out = sdload(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn malformed_scenarios_exit_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str)] = &[
        // (contents, expected line prefix after the file name, the field named)
        ("concurrency = 4\nduration = \"10s\n", ":2:", ""),
        ("concurrency = 4\n\nconcurency = 5\n", ":3:", "concurency"),
        ("\n\nconcurrency = \"four\"\n", ":3:", "concurrency"),
        ("duration = \"5s\"\nconcurrency = 0\n", ":2:", "concurrency"),
        ("concurrency = -3\n", ":1:", "concurrency"),
        ("requests = 0\n", ":1:", "requests"),
        ("requests = -5\n", ":1:", "requests"),
        ("duration = \"0s\"\n", ":1:", "duration"),
        ("timeout = \"soon\"\n", ":1:", "timeout"),
        ("\nbad_ratio = 1.5\n", ":2:", "bad_ratio"),
        ("bad_ratio = -0.1\n", ":1:", "bad_ratio"),
        ("bad_ratio = nan\n", ":1:", "bad_ratio"),
        // The open model's rate is not on this branch: refused as an unknown key for now.
        ("rate = 0\n", ":1:", "rate"),
        ("[bad_kinds]\nempty = -1\n", ":2:", "bad_kinds.empty"),
        ("[[users]]\nusername = \"a\"\n", ":1:", "users"),
        (
            "[[users]]\nusername = \"a\"\npassword = 12345\n",
            ":3:",
            "password",
        ),
        ("[embedded]\nusers = -1\n", ":2:", "embedded.users"),
        ("target = \"ftp://example.com/\"\n", ":1:", "target"),
        (
            "insecure = true\nca_cert = \"ca.pem\"\n",
            ":2:",
            "ca_cert: excludes --insecure",
        ),
        (
            "\nclient_cert = \"c.pem\"\n",
            ":2:",
            "client_cert: needs a key",
        ),
    ];
    for (i, (contents, line, field)) in cases.iter().enumerate() {
        let name = format!("case{i}.toml");
        let (code, stderr) = run_scenario(dir.path(), &name, contents.as_bytes(), &[]);
        assert_eq!(code, Some(2), "{contents:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{name}{line}")),
            "{contents:?}: names the file and line: {stderr}"
        );
        assert!(
            stderr.contains(field),
            "{contents:?}: names {field}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // A BOM and CRLF line ends do not shift the line numbers.
    let (code, stderr) = run_scenario(
        dir.path(),
        "bom.toml",
        "\u{feff}concurrency = 2\r\n\r\nbad_ratio = 3\r\n".as_bytes(),
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("bom.toml:3: bad_ratio"), "{stderr}");
    // A missing file is named too.
    let out = sdload(&["run", "/nonexistent/s.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/s.toml"));
}

#[test]
fn malformed_credentials_exit_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.toml"), "").unwrap();
    let scenario = dir.path().join("empty.toml");
    let cases: &[(&[u8], &str)] = &[
        (b"", "users.csv: no credentials"),
        (b"username,password\r\n", "users.csv: no credentials"),
        (b"alice,secret\nbob\n", "users.csv:2: password: missing"),
        (b"alice,pa,ss\n", "users.csv:1: record: 3 fields"),
        (b",secret\n", "users.csv:1: username: empty"),
        (b"alice,\xff\xfe\n", "users.csv:1:"),
        (
            b"alice,\"unterminated\nbob,pw\n",
            "users.csv:1: password: holds a line break",
        ),
    ];
    for (contents, expected) in cases {
        let path = dir.path().join("users.csv");
        std::fs::write(&path, contents).unwrap();
        let out = sdload(&[
            "run",
            scenario.to_str().unwrap(),
            "--target",
            "http://127.0.0.1:9/",
            "--credentials",
            path.to_str().unwrap(),
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{contents:?}: {stderr}");
        assert!(stderr.contains(expected), "{contents:?}: {stderr}");
        // The message never shows the file's content (it may hold passwords).
        assert!(
            !stderr.contains("secret") && !stderr.contains("unterminated"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credentials_file_with_bom_crlf_and_quoted_commas_is_read_right() {
    let users = vec![
        Credential::new("EXAMPLE\\svc", "with,comma"),
        Credential::new("quote", "say \"hi\", then go"),
        Credential::new("spaces", " padded "),
    ];
    let fx = common::Fixture::start({
        let users = users.clone();
        move |c| c.users = users
    })
    .await;
    let csv = "\u{feff}Username,Password\r\nEXAMPLE\\svc,\"with,comma\"\r\nquote,\"say \"\"hi\"\", then go\"\r\nspaces, padded \r\n\r\n";
    let path = fx.path("odd.csv");
    std::fs::write(&path, csv).unwrap();
    assert_eq!(sdload::credentials::read_csv(&path).unwrap(), users);
    let ran = common::run(&sdload::cli::RunArgs {
        credentials: Some(path),
        decoy_users: None,
        requests: Some(30),
        bad_ratio: Some(0.0),
        ..fx.args()
    })
    .await;
    assert_eq!(
        ran.report.counts.token_issued, 30,
        "{:?}",
        ran.report.counts
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any text: a scenario or an error naming the file and a line that exists.
    #[test]
    fn the_scenario_loader_never_panics(text in "(\\PC|\n|\r|\u{feff}){0,300}") {
        let src = Source { path: "p.toml".into(), text: text.clone() };
        if let Err(e) = scenario::parse(&src) {
            let message = e.to_string();
            prop_assert!(message.starts_with("p.toml:"), "{}", message);
            let line: usize = message["p.toml:".len()..]
                .split(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "{} for {:?}", message, text);
        }
    }

    /// Known keys with values of any type: the plan is built or refused, never a panic.
    #[test]
    fn plans_from_any_values_never_panic(
        entries in proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "concurrency", "duration", "requests", "warmup", "timeout", "grace",
                    "bad_ratio", "seed", "reject_status", "lockout_test", "token_path",
                    "target", "insecure", "follow_redirects",
                ]),
                prop_oneof![
                    any::<i64>().prop_map(|v| v.to_string()),
                    any::<f64>().prop_map(|v| if v.is_finite() { format!("{v:?}") } else { "nan".into() }),
                    "[a-z0-9 .:/]{0,12}".prop_map(|s| format!("{s:?}")),
                    any::<bool>().prop_map(|b| b.to_string()),
                ],
            ),
            0..6,
        )
    ) {
        let mut text = String::new();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in entries {
            if seen.insert(k) {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        let src = Source { path: "p.toml".into(), text };
        if let Ok(sc) = scenario::parse(&src) {
            let _ = sdload::plan::Plan::from_parts(&Default::default(), &sc, &src);
        }
    }

    /// Any bytes: credentials or an error naming the file.
    #[test]
    fn the_credentials_reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        match parse_csv(Path::new("u.csv"), &bytes) {
            Ok(creds) => prop_assert!(creds.iter().all(|c| !c.username.is_empty())),
            Err(e) => prop_assert!(e.to_string().starts_with("u.csv")),
        }
    }

    /// Whatever the user names and passwords, what is written is read back byte-exact.
    #[test]
    fn credentials_round_trip(
        users in proptest::collection::vec(("\\PC{1,20}", "(\\PC|,|\"| ){0,20}"), 1..8)
    ) {
        let creds: Vec<Credential> = users
            .into_iter()
            .map(|(u, p)| Credential::new(u, p))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u.csv");
        write_csv(&path, &creds).unwrap();
        prop_assert_eq!(sdload::credentials::read_csv(&path).unwrap(), creds);
    }
}
