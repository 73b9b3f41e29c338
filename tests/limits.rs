//! The open-file limit: raised at start where the system allows, explained before anything
//! is sent where it does not.
#![cfg(unix)]

use std::process::Command;

fn sdload_under(limit: &str, args: &str) -> (Option<i32>, String, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{limit} && exec \"{}\" {args}",
            env!("CARGO_BIN_EXE_sdload")
        ))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_hard_limit_too_low_is_explained_before_anything_is_sent() {
    // `ulimit -n` lowers both limits; only a privileged process could raise the hard one.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (code, stdout, stderr) = sdload_under(
        "ulimit -n 256",
        &format!(
            "run -c 1000 -d 1s --warmup 0s --no-progress --json {}",
            json.display()
        ),
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Too many open files"),
        "{stderr}"
    );
    match code {
        Some(2) => {
            assert!(stderr.contains("open files"), "{stderr}");
            assert!(stderr.contains("ulimit -n"), "{stderr}");
            assert!(stderr.contains("sdload serve"), "{stderr}");
            assert!(
                !stderr.contains("embedded mock"),
                "nothing started: {stderr}"
            );
            assert!(stdout.is_empty() && !json.exists(), "no report: {stdout}");
        }
        // A privileged user (CAP_SYS_RESOURCE) may raise the hard limit: then it runs.
        Some(0) => assert!(stderr.contains("raised the open-file limit"), "{stderr}"),
        other => panic!("exit {other:?}: {stderr}"),
    }
}

#[test]
fn a_low_soft_limit_is_raised_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (code, _, stderr) = sdload_under(
        "ulimit -Sn 256",
        &format!(
            "run -c 1000 -d 1s --warmup 0s --no-progress --json {}",
            json.display()
        ),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("raised the open-file limit from 256"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let c = &v["counts"];
    assert_eq!(c["connect_error"], 0, "{c}");
    assert!(v["connections_opened"].as_u64().unwrap() > 0);
    assert!(c["token_issued"].as_u64().unwrap() > 0);
}
