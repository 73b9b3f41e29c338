//! The open-file limit: every worker holds a socket (and the embedded mock server one more per
//! worker), so a high concurrency needs more descriptors than many systems allow by default.
//! At start the soft limit is raised to what the run needs where the system allows; where it
//! cannot be, the run stops before sending anything and says which limit blocks and how to
//! raise it.

/// Descriptors beside the sockets: standard streams, the runtime's epoll and wakers, the
/// listener, report files, resolver.
const BASE: u64 = 64;

/// How many descriptors a run needs: a socket per worker, one more per worker for the
/// embedded server's side, and one more for a redirect target's connection.
pub fn needed(concurrency: u64, embedded: bool, follow_redirects: bool) -> u64 {
    let per_worker = 1 + u64::from(embedded) + u64::from(follow_redirects);
    concurrency.saturating_mul(per_worker).saturating_add(BASE)
}

/// What to do with the limits as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The soft limit is already enough.
    Enough,
    /// Raise the soft limit to this (the hard limit allows it).
    RaiseSoft(u64),
    /// The hard limit is too low: raising it needs privileges (try, then explain).
    RaiseHard(u64),
}

pub fn decide(needed: u64, soft: u64, hard: u64) -> Decision {
    if soft >= needed {
        Decision::Enough
    } else if hard >= needed {
        Decision::RaiseSoft(needed)
    } else {
        Decision::RaiseHard(needed)
    }
}

/// Makes sure `needed` descriptors can be opened. `Ok(Some(note))` when a limit was raised,
/// `Err(message)` naming the limit and how to raise it when it cannot be.
#[cfg(unix)]
pub fn ensure_open_files(
    needed: u64,
    what: &str,
    embedded: bool,
) -> Result<Option<String>, String> {
    use rlimit::Resource;
    let blocked = |needed, soft, hard, what: &str| blocked_with(needed, soft, hard, what, embedded);
    let (soft, hard) = Resource::NOFILE
        .get()
        .map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    match decide(needed, soft, hard) {
        Decision::Enough => Ok(None),
        Decision::RaiseSoft(n) => {
            // On macOS the kernel caps the soft limit below the hard one (kern.maxfilesperproc):
            // `increase_nofile_limit` knows that cap.
            let got = rlimit::increase_nofile_limit(n).unwrap_or(soft);
            if got >= n {
                Ok(Some(format!(
                    "raised the open-file limit from {soft} to {got} ({what} need about {needed})"
                )))
            } else {
                Err(blocked(needed, got, hard, what))
            }
        }
        Decision::RaiseHard(n) => match Resource::NOFILE.set(n, n) {
            // Allowed for a privileged user (CAP_SYS_RESOURCE).
            Ok(()) => Ok(Some(format!(
                "raised the open-file limit (soft {soft}, hard {hard}) to {n} ({what} need about {needed})"
            ))),
            Err(_) => Err(blocked(needed, soft, hard, what)),
        },
    }
}

#[cfg(not(unix))]
pub fn ensure_open_files(
    _needed: u64,
    _what: &str,
    _embedded: bool,
) -> Result<Option<String>, String> {
    Ok(None)
}

/// With the embedded server, the hint also says how to halve the need.
pub fn blocked_with(needed: u64, soft: u64, hard: u64, what: &str, embedded: bool) -> String {
    let which = if hard < needed {
        format!("the hard open-file limit ({hard}) is below that and this user cannot raise it")
    } else {
        format!("the open-file limit ({soft}) could not be raised")
    };
    format!(
        "{what} need about {needed} open files, but {which}: raise it before the run \
         (`ulimit -n {needed}` in the shell, LimitNOFILE={needed} for a systemd service, or \
         `nofile` in /etc/security/limits.conf), or lower --concurrency{}",
        if embedded {
            "; or start the mock server apart (`sdload serve`) and give --target, so that \
             this process holds one socket per worker instead of two"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_socket_per_worker_and_one_more_for_the_embedded_server() {
        assert_eq!(needed(1000, false, false), 1064);
        assert_eq!(needed(1000, true, false), 2064);
        assert_eq!(needed(1000, true, true), 3064);
        assert_eq!(needed(u64::MAX, true, true), u64::MAX);
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(100, 256, 256), Decision::Enough);
        assert_eq!(decide(1064, 256, 4096), Decision::RaiseSoft(1064));
        assert_eq!(decide(1064, 256, 256), Decision::RaiseHard(1064));
    }

    #[test]
    fn blocked_message_names_the_limit_and_the_fix() {
        let m = blocked_with(1064, 256, 256, "1000 workers", false);
        assert!(m.contains("hard open-file limit (256)"), "{m}");
        assert!(m.contains("ulimit -n 1064"), "{m}");
        assert!(m.contains("--concurrency"), "{m}");
        assert!(!m.contains("sdload serve"), "{m}");
        let m = blocked_with(2064, 1024, 1500, "1000 workers", true);
        assert!(m.contains("sdload serve"), "{m}");
    }
}
