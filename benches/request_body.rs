//! Building the JSON login body: a credential that needs escaping (`\`, `"`, non-ASCII) against
//! a plain ASCII one, to see what escaping costs per request.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sdload::credentials::login_body;

fn request_body(c: &mut Criterion) {
    let escaped = ("EXAMPLE\\svc_load01", "pa\"ss\\wörd-é");
    let ascii = ("svc_load01", "Passw0rd-1234");
    // The escaped body must round-trip, or the bench measures a broken serializer.
    let v: serde_json::Value = serde_json::from_slice(&login_body(escaped.0, escaped.1)).unwrap();
    assert_eq!(
        (v["username"].as_str(), v["password"].as_str()),
        (Some(escaped.0), Some(escaped.1))
    );

    let mut group = c.benchmark_group("request_body");
    for (name, (user, password)) in [("escaped", escaped), ("ascii", ascii)] {
        group.bench_function(name, |b| {
            b.iter(|| login_body(black_box(user), black_box(password)))
        });
    }
    group.finish();
}

criterion_group!(benches, request_body);
criterion_main!(benches);
