//! The open model against the in-process mock server: rates on a timetable, latency from the
//! schedule (coordinated omission cannot hide a stall), the connection cap, ramps.

mod common;

use std::time::{Duration, Instant};

use common::{assert_counts_add_up, run, Fixture};
use sdload::cli::RunArgs;

fn open(fx: &Fixture, rate: f64, secs: f64) -> RunArgs {
    RunArgs {
        rate: Some(rate),
        duration: Some(Duration::from_secs_f64(secs)),
        concurrency: None,
        ..fx.args()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_open_model_latency_but_hides_in_the_closed_model() {
    let pause = |c: &mut sdload::mock_server::Config| {
        c.pause_every = Some(Duration::from_millis(2500));
        c.pause_for = Duration::from_secs(1);
    };
    let fx = Fixture::start(pause).await;
    let ran = run(&RunArgs {
        max_in_flight: Some(3),
        ..open(&fx, 100.0, 4.0)
    })
    .await;
    let r = &ran.report;
    assert_counts_add_up(r);
    assert_eq!(r.model, "open");
    assert!((396..=404).contains(&r.counts.total), "{}", r.counts.total);
    assert_eq!(
        fx.server.stats().token_posts,
        r.counts.total,
        "the server saw every request"
    );
    let latency_p99 = r.latency_ms["all"].p99.unwrap();
    let service_p99 = r.service_time_ms.as_ref().unwrap()["all"].p99.unwrap();
    assert!(latency_p99 >= 800.0, "latency p99 {latency_p99}");
    assert!(
        service_p99 < latency_p99,
        "service {service_p99} vs latency {latency_p99}"
    );
    assert!(r.schedule_lag_ms.as_ref().unwrap()["all"].max.unwrap() >= 800.0);

    // The same stall in the closed model: the workers stall with the server and stop sending,
    // so the stall hides itself in a handful of slow requests.
    let fx = Fixture::start(pause).await;
    let args = RunArgs {
        concurrency: Some(3),
        duration: Some(Duration::from_secs(4)),
        ..fx.args()
    };
    let closed = run(&args).await.report;
    assert_counts_add_up(&closed);
    let closed_p99 = closed.latency_ms["all"].p99.unwrap();
    assert!(
        latency_p99 > 10.0 * closed_p99,
        "open p99 {latency_p99} vs closed p99 {closed_p99}"
    );
    assert!(closed.service_time_ms.is_none() && closed.schedule_lag_ms.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_are_kept_exactly_high_low_and_fractional() {
    let fx = Fixture::start(|_| {}).await;
    let r = run(&open(&fx, 500.0, 2.0)).await.report;
    assert_counts_add_up(&r);
    assert!((990..=1010).contains(&r.counts.total), "{}", r.counts.total);
    for s in &r.timeline {
        assert!(
            (s.requests as f64 - 500.0).abs() <= 25.0,
            "second {}: {}",
            s.t_s,
            s.requests
        );
        assert_eq!(s.target_rate, Some(500.0));
    }
    assert_eq!(r.counts.not_sent, 0);

    // Fewer requests per second than connections: no burst of one per connection.
    let r = run(&RunArgs {
        max_in_flight: Some(8),
        ..open(&fx, 3.0, 3.0)
    })
    .await
    .report;
    assert!((8..=10).contains(&r.counts.total), "{}", r.counts.total);
    assert!(
        r.timeline.iter().all(|s| s.requests <= 4),
        "{:?}",
        r.timeline
    );

    let r = run(&open(&fx, 0.5, 4.0)).await.report;
    // The run lasts its duration even when the last request ended early: throughput is
    // requests over the duration, not over the time to the last answer.
    assert!(r.duration_s >= 3.9, "{}", r.duration_s);
    assert!(r.rates.throughput_rps <= 0.8, "{}", r.rates.throughput_rps);
    assert!((1..=3).contains(&r.counts.total), "{}", r.counts.total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_rises_second_by_second() {
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        ramp: Some("0:200/s:4s".into()),
        concurrency: None,
        ..fx.args()
    };
    let r = run(&args).await.report;
    assert_counts_add_up(&r);
    assert_eq!(r.stages.len(), 1);
    assert!(
        (395..=405).contains(&r.counts.total),
        "the area under the ramp: {}",
        r.counts.total
    );
    let seconds: Vec<u64> = r.timeline.iter().map(|s| s.requests).collect();
    assert_eq!(seconds.len(), 4, "{seconds:?}");
    for (s, want) in r.timeline.iter().zip([25.0, 75.0, 125.0, 175.0]) {
        assert_eq!(s.target_rate, Some(want));
        assert!(
            (s.requests as f64 - want).abs() <= want * 0.05 + 1.0,
            "second {}: {} vs {want}",
            s.t_s,
            s.requests
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_turns_a_slow_server_into_not_sent_requests() {
    let fx = Fixture::start(|c| {
        c.latency = Some((Duration::from_millis(300), Duration::from_millis(300)))
    })
    .await;
    let args = RunArgs {
        max_in_flight: Some(10),
        grace: Some(Duration::from_secs(1)),
        ..open(&fx, 50.0, 3.0)
    };
    let started = Instant::now();
    let r = run(&args).await.report;
    assert!(
        started.elapsed() < Duration::from_millis(3000 + 1000 + 500),
        "ends on time: {:?}",
        started.elapsed()
    );
    assert_counts_add_up(&r);
    let scheduled = r.schedule.as_ref().unwrap().scheduled;
    assert_eq!(scheduled, 150);
    assert_eq!(
        r.counts.total + r.counts.not_sent,
        scheduled,
        "nothing skipped silently"
    );
    // 10 connections at 300 ms serve about 33 per second: about 100 of 150 in 3 s.
    assert!((95..=115).contains(&r.counts.total), "{}", r.counts.total);
    assert!(
        (35..=55).contains(&r.counts.not_sent),
        "{}",
        r.counts.not_sent
    );
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("target rate not reached") && w.contains("of 150 scheduled")));
    // Latency from the schedule grows through the run while service time stays flat.
    let p50 = |i: usize| r.timeline[i].p50_ms.unwrap();
    assert!(
        p50(r.timeline.len() - 1) > p50(0) + 300.0,
        "{:?}",
        r.timeline
    );
    let service = &r.service_time_ms.as_ref().unwrap()["all"];
    assert!(service.p99.unwrap() < 400.0, "{service:?}");
    assert_eq!(fx.server.stats().token_posts, r.counts.total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_under_the_number_of_load_threads_still_holds() {
    // 20 ms per answer, 100 starts per second: one connection serves about half of them.
    let fx = Fixture::start(|c| {
        c.latency = Some((Duration::from_millis(20), Duration::from_millis(20)))
    })
    .await;
    let r = run(&RunArgs {
        max_in_flight: Some(1),
        ..open(&fx, 100.0, 1.0)
    })
    .await
    .report;
    assert_counts_add_up(&r);
    assert_eq!(r.connections_opened, 1);
    assert_eq!(fx.server.stats().connections_accepted, 1);
    assert_eq!(r.counts.total + r.counts.not_sent, 100);
    assert!((35..=55).contains(&r.counts.total), "{}", r.counts.total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_limit_and_poisson_arrivals() {
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        requests: Some(200),
        arrivals: Some(sdload::engine::timetable::Arrivals::Poisson),
        bad_ratio: Some(0.25),
        ..open(&fx, 400.0, 5.0)
    };
    let r = run(&args).await.report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.total, 200);
    assert_eq!(r.counts.bad_credentials, 50);
    assert!(
        r.duration_s < 1.5,
        "200 at 400/s take about half a second: {}",
        r.duration_s
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_stages_add_workers_over_time() {
    let fx = Fixture::start(|c| {
        c.latency = Some((Duration::from_millis(20), Duration::from_millis(20)))
    })
    .await;
    let args = RunArgs {
        ramp: Some("0:4:2s".into()),
        concurrency: None,
        ..fx.args()
    };
    let r = run(&args).await.report;
    assert_counts_add_up(&r);
    assert_eq!(r.model, "closed");
    assert_eq!(r.concurrency, Some(4));
    // Worker w works while the target (2 per second here) is above w: worker 0 from the start,
    // 1 from 0.5 s, 2 from 1 s, 3 from 1.5 s. That is 1.5 worker-seconds in the first second
    // and 3.5 in the second, so at 20 ms a request the second second makes about 2.3 times the
    // requests of the first; 1.5 leaves room for a loaded machine.
    let (first, second) = (r.timeline[0].requests, r.timeline[1].requests);
    assert!(second as f64 > first as f64 * 1.5, "{first} then {second}");
    assert_eq!(r.timeline[0].target_workers, Some(1.0));
    assert_eq!(r.timeline[1].target_workers, Some(3.0));
}
