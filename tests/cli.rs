//! The binary as a user runs it: exit codes, the JSON contract, stderr without a terminal.

use std::process::{Command, Output};

fn sdload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdload"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn embedded_default_run_writes_a_complete_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = sdload(&[
        "run",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "-c",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("embedded mock ServiceDesk"), "{stderr}");
    assert!(
        stdout.contains("token_issued") && stdout.contains("403 rate"),
        "{stdout}"
    );

    // Stderr is not a terminal here: no escape codes, no carriage returns.
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "{stderr:?}"
    );
    assert!(
        !stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("strict JSON");
    for key in [
        "schema",
        "target",
        "started_at",
        "duration_s",
        "model",
        "concurrency",
        "rate",
        "counts",
        "interrupted",
        "status_codes",
        "rates",
        "latency_ms",
        "histograms",
        "timeline",
        "thresholds",
    ] {
        assert!(v.get(key).is_some(), "missing top-level key {key}");
    }
    assert_eq!(v["schema"], "sdload.report/v1");
    // What the run was, as settled: the default scenario with the flags over it.
    let settings = &v["settings"];
    assert_eq!(settings["bad_ratio"], 0.2);
    assert_eq!(settings["seed"], 1);
    assert_eq!(settings["duration_s"], 1.0);
    assert_eq!(settings["warmup_s"], 0.0);
    assert_eq!(settings["reject_status"], 403);
    assert_eq!(
        (
            settings["good_users"].as_u64(),
            settings["decoy_users"].as_u64()
        ),
        (Some(100), Some(20))
    );
    assert_eq!(v["concurrency"], 2);
    assert_eq!(v["embedded_target"], true);
    let addr = v["target_addrs"][0].as_str().unwrap();
    assert!(
        addr.starts_with("127.0.0.1:") && v["target"].as_str().unwrap().contains(addr),
        "{v}"
    );
    let started = v["started_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(started).is_ok(), "{started}");
    assert_eq!(v["model"], "closed");
    assert_eq!(v["interrupted"], false);
    for key in [
        "total",
        "good_credentials",
        "bad_credentials",
        "token_issued",
        "expected_403",
        "false_403",
        "bad_accepted",
        "invalid_token",
        "other_status",
        "timeout",
        "connect_error",
        "io_error",
        "unfinished",
        "nil_token",
        "not_sent",
    ] {
        assert!(v["counts"][key].is_u64(), "counts.{key}");
    }
    for key in [
        "throughput_rps",
        "forbidden",
        "forbidden_good",
        "forbidden_bad",
        "error",
    ] {
        assert!(v["rates"].get(key).is_some(), "rates.{key}");
    }
    for key in [
        "count", "min", "mean", "stdev", "p50", "p90", "p95", "p99", "p999", "max",
    ] {
        assert!(
            v["latency_ms"]["all"].get(key).is_some(),
            "latency_ms.all.{key}"
        );
    }
    // Empty outcomes have null percentiles, never 0 or NaN.
    assert!(v["latency_ms"]["timeout"]["p99"].is_null());
    let total = v["counts"]["total"].as_u64().unwrap();
    assert!(total > 0);
    assert_eq!(v["latency_ms"]["all"]["count"].as_u64(), Some(total));
    let timeline_total: u64 = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(timeline_total, total, "the timeline holds every request");
    for s in v["timeline"].as_array().unwrap() {
        for key in ["t_s", "requests", "errors", "forbidden", "p50_ms", "p99_ms"] {
            assert!(s.get(key).is_some(), "timeline.{key}");
        }
    }
    let hist = sdload::report::decode_histogram(v["histograms"]["all"].as_str().unwrap())
        .expect("V2 base64");
    assert_eq!(hist.len(), total);
}

#[test]
fn unreachable_target_exits_3_with_a_valid_report() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let users = dir.path().join("u.csv");
    std::fs::write(&users, "alice,secret-pass-1\n").unwrap();
    let target = format!("http://127.0.0.1:{port}/");
    let out = sdload(&[
        "run",
        "--target",
        &target,
        "--credentials",
        users.to_str().unwrap(),
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("127.0.0.1:{port}")),
        "names the address tried"
    );
    assert!(!text(&out.stderr).contains("panicked"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["counts"]["connect_error"], v["counts"]["total"]);
}

#[test]
fn bad_scenarios_and_files_exit_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let sc = dir.path().join("bad.toml");
    std::fs::write(&sc, "concurrency = 4\nbad_ratio = 2.5\n").unwrap();
    let out = sdload(&["run", sc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.toml:2: bad_ratio: 2.5 is outside 0..1"),
        "{err}"
    );

    std::fs::write(&sc, "concurrency = 4\nthreads = 2\n").unwrap();
    let out = sdload(&["run", sc.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.toml:2: unknown field `threads`"),
        "{}",
        text(&out.stderr)
    );

    let users = dir.path().join("users.csv");
    std::fs::write(&users, "username,password\nalice,pw1\nbob\n").unwrap();
    let out = sdload(&[
        "run",
        "--target",
        "http://127.0.0.1:1/",
        "--credentials",
        users.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("users.csv:3: password: missing"),
        "{}",
        text(&out.stderr)
    );

    let out = sdload(&["run", "--bad-ratio", "-1"]);
    assert_eq!(out.status.code(), Some(2));
    let out = sdload(&["run", "--duration", "10"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bare number is not a duration"
    );
    assert!(
        text(&out.stderr).contains("no unit"),
        "{}",
        text(&out.stderr)
    );
    let out = sdload(&["run", "missing-scenario.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing-scenario.toml"));
}

#[test]
fn help_shows_examples() {
    let out = sdload(&["run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(
        help.contains("Examples:") && help.contains("sdload run --target"),
        "{help}"
    );
}

#[test]
fn quiet_prints_nothing_on_success() {
    let out = sdload(&["run", "-n", "50", "--warmup", "0s", "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

/// Ctrl-C: the run stops, the report is still printed and written, marked interrupted, exit 130.
#[cfg(unix)]
#[test]
fn ctrl_c_keeps_the_report_and_exits_130() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sdload"))
        .args([
            "run",
            "-d",
            "30s",
            "--warmup",
            "0s",
            "-c",
            "2",
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first stderr line says the embedded server started: the run is under way.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("embedded mock ServiceDesk"), "{line}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(
        text(&out.stdout).contains("interrupted"),
        "{}",
        text(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["interrupted"], true);
    assert_eq!(v["counts"]["total"], v["latency_ms"]["all"]["count"]);
}

/// Every scenario shipped in `scenarios/` loads and plans (keeps the examples honest).
#[test]
fn every_shipped_scenario_plans() {
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let args = sdload::cli::RunArgs {
                scenario: Some(path.clone()),
                ..Default::default()
            };
            if let Err(e) = sdload::plan::Plan::build(&args) {
                panic!("{}: {e}", path.display());
            }
        }
    }
}

#[test]
fn unwritable_report_folder_and_ambiguous_margin_are_refused_before_anything_runs() {
    let started = std::time::Instant::now();
    let out = sdload(&[
        "run",
        "-d",
        "30s",
        "--json",
        "/nonexistent-sdload-dir/r.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("the folder /nonexistent-sdload-dir does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "refused before the run"
    );
    let out = sdload(&["compare", "a.json", "b.json", "--max-regression", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("write 5% for 5 percent"),
        "{}",
        text(&out.stderr)
    );
}
