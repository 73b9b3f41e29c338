//! The in-process hot paths of one request besides token parsing: choosing the credential,
//! framing the response, recording the outcome, and (once per run) merging every worker's
//! recorder.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sdload::credentials::{Credential, Mix};
use sdload::outcome::{classify, CredKind, Outcome};
use sdload::recorder::{Record, Recorder};

const TOKEN: &[u8] = b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"";

fn users(n: usize) -> Vec<Credential> {
    (0..n)
        .map(|i| Credential::new(format!("user{i:04}"), format!("pw-{i}")))
        .collect()
}

fn record_one(c: &mut Criterion) {
    let mut g = c.benchmark_group("record");
    let classified = classify(CredKind::Good, 200, TOKEN, 403);
    for (name, service) in [("closed", None), ("open", Some(900u64))] {
        let mut rec = Recorder::new();
        let mut latency = 1000u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                latency = latency % 50_000 + 7;
                rec.record(black_box(&Record {
                    kind: CredKind::Good,
                    classified,
                    status: Some(200),
                    latency_us: latency,
                    service_us: service.map(|s| s.min(latency)),
                    body: TOKEN,
                }));
            })
        });
    }
    g.finish();
}

fn merge_workers(c: &mut Criterion) {
    let mut g = c.benchmark_group("merge");
    for workers in [16usize, 64] {
        let recorders: Vec<Recorder> = (0..workers)
            .map(|w| {
                let mut r = Recorder::new();
                for i in 0..2_000u64 {
                    let (kind, status, outcome_body) = if i % 5 == 0 {
                        (CredKind::UnknownUser, 403, &b"<html>"[..])
                    } else {
                        (CredKind::Good, 200, TOKEN)
                    };
                    r.record(&Record {
                        kind,
                        classified: classify(kind, status, outcome_body, 403),
                        status: Some(status),
                        latency_us: 500 + (i * 37 + w as u64 * 11) % 20_000,
                        service_us: None,
                        body: outcome_body,
                    });
                }
                r
            })
            .collect();
        g.bench_with_input(
            BenchmarkId::from_parameter(workers),
            &recorders,
            |b, recorders| {
                b.iter(|| {
                    let mut all = Recorder::new();
                    for r in recorders {
                        all.merge(r);
                    }
                    black_box(all.count(Outcome::TokenIssued))
                })
            },
        );
    }
    g.finish();
}

fn pick_credential(c: &mut Criterion) {
    let all = [
        (CredKind::WrongPassword, 1),
        (CredKind::UnknownUser, 1),
        (CredKind::Empty, 1),
    ];
    let mix = Mix::new(&users(1000), &users(20), 0.2, &all, 7);
    let mut i = 0u64;
    c.bench_function("pick_credential", |b| {
        b.iter(|| {
            i += 1;
            black_box(mix.pick(black_box(i)).1.len())
        })
    });
}

/// The response heads the transport frames on every request: nginx's token answer (the
/// bench-peers target) and an IIS 403 page's head as ServiceDesk sends it.
fn frame_response(c: &mut Criterion) {
    let nginx = format!(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 19:30:00 GMT\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: 38\r\n\
         Connection: keep-alive\r\n\r\n{}",
        std::str::from_utf8(TOKEN).unwrap()
    );
    let iis = "HTTP/1.1 403 Forbidden\r\nCache-Control: private\r\nContent-Type: text/html\r\n\
               Server: Microsoft-IIS/10.0\r\nX-AspNet-Version: 4.0.30319\r\n\
               X-Powered-By: ASP.NET\r\nDate: Thu, 03 Dec 2026 19:30:00 GMT\r\n\
               Content-Length: 1233\r\n\r\n";
    let mut g = c.benchmark_group("frame_response");
    for (name, text) in [("nginx_token", nginx.as_str()), ("iis_403_head", iis)] {
        g.bench_function(name, |b| {
            b.iter(|| black_box(sdload::http1::parse_head(black_box(text.as_bytes()))))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    record_one,
    merge_workers,
    pick_credential,
    frame_response
);
criterion_main!(benches);
