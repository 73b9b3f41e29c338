//! The hot path allocates nothing once warm: sending a login on an open connection, reading
//! the answer, classifying it and recording it. Counted by a global allocator, per thread, so
//! the test server (on its own thread) does not count.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use sdload::credentials::login_body;
use sdload::outcome::{classify, CredKind, Outcome};
use sdload::recorder::{Interval, Record, Recorder};
use sdload::target::{Target, DEFAULT_TOKEN_PATH};
use sdload::transport::Transport;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

#[test]
fn a_warm_login_allocates_nothing() {
    // The server: its own thread and runtime.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let answer = common::token_answer();
            let server =
                common::raw_server_with(move |_| common::Reply::Bytes(answer.clone())).await;
            tx.send(server.url()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let url = rx.recv().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let target = Target::parse(&url, DEFAULT_TOKEN_PATH).unwrap();
        let addrs = target.resolve().await.unwrap();
        let transport = Transport::new(target, addrs, Duration::from_secs(2)).unwrap();
        let mut conn = transport.connection();
        let body = login_body("alice", "secret");
        let mut recorder = Recorder::new();
        let mut interval = Interval::new(0);
        let mut login = async |recorder: &mut Recorder, interval: &mut Interval| {
            let r = conn.send(&body).await.unwrap();
            let classified = classify(CredKind::Good, r.status, r.body, 403);
            assert_eq!(classified.outcome, Outcome::TokenIssued);
            recorder.record(&Record {
                kind: CredKind::Good,
                classified,
                status: Some(r.status),
                latency_us: 1234,
                service_us: None,
                body: r.body,
            });
            interval.record(classified.outcome, Some(r.status), 1234);
        };
        // Warm: the connection, its buffers and the histograms exist.
        for _ in 0..10 {
            login(&mut recorder, &mut interval).await;
        }
        let before = allocations();
        for _ in 0..1000 {
            login(&mut recorder, &mut interval).await;
        }
        let per_login = (allocations() - before) as f64 / 1000.0;
        assert_eq!(per_login, 0.0, "allocations per warm login");
        assert_eq!(recorder.total(), 1010);
    });
}
