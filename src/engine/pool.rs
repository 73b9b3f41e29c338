//! The threads that run the load: one single-threaded tokio runtime per core, each worker (and
//! the connection it drives) kept on one of them, and one `Recorder` per thread.
//!
//! Compared with one work-stealing runtime, a request never crosses threads, which halves the
//! wake-ups per request (how wrk and oha's fast path work). Recording per thread rather than
//! per worker keeps memory flat in the number of connections: 10,000 workers share a handful
//! of histograms instead of holding 60,000, still without a lock or a shared cache line.

use std::cell::RefCell;
use std::future::Future;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::recorder::{Interval, Recorder};

/// What one load thread records.
struct Local {
    recorder: Recorder,
    interval: Option<Interval>,
    intervals: mpsc::UnboundedSender<Interval>,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Records into this thread's recorder and timeline second. Only called from pool threads,
/// in synchronous code (no await while the recorder is borrowed).
pub fn with_recorder(second: u32, f: impl FnOnce(&mut Recorder, &mut Interval)) {
    LOCAL.with(|cell| {
        let mut cell = cell.borrow_mut();
        let local = cell.as_mut().expect("workers run on pool threads");
        if local.interval.as_ref().is_some_and(|i| i.second != second) {
            let _ = local
                .intervals
                .send(local.interval.take().expect("checked"));
        }
        let interval = local.interval.get_or_insert_with(|| Interval::new(second));
        f(&mut local.recorder, interval);
    })
}

pub struct Pool {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl Pool {
    /// One thread per core, each with an empty recorder whose seconds go to `intervals`.
    pub fn new(intervals: &mpsc::UnboundedSender<Interval>) -> std::io::Result<Pool> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mut pool = Pool {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
            next: 0,
        };
        for i in 0..threads {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let intervals = intervals.clone();
            pool.handles.push(runtime.handle().clone());
            pool.stops.push(stop_tx);
            pool.threads.push(
                std::thread::Builder::new()
                    .name(format!("sdload-load-{i}"))
                    .spawn(move || {
                        LOCAL.with(|cell| {
                            *cell.borrow_mut() = Some(Local {
                                recorder: Recorder::new(),
                                interval: None,
                                intervals,
                            })
                        });
                        runtime.block_on(async {
                            let _ = stop_rx.await;
                        });
                        // Connection tasks of cut requests may still be parked: do not wait for them.
                        runtime.shutdown_background();
                    })?,
            );
        }
        Ok(pool)
    }

    pub fn threads(&self) -> usize {
        self.handles.len()
    }

    /// Spawns a task on thread `index` (modulo the number of threads).
    pub fn spawn_on<F>(
        &mut self,
        index: usize,
        set: &mut tokio::task::JoinSet<F::Output>,
        future: F,
    ) where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        set.spawn_on(future, &self.handles[index % self.handles.len()]);
    }

    /// Spawns a worker on the next thread (round robin).
    pub fn spawn<F>(&mut self, set: &mut tokio::task::JoinSet<F::Output>, future: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = &self.handles[self.next % self.handles.len()];
        self.next += 1;
        set.spawn_on(future, handle);
    }

    /// Takes every thread's recorder (flushing its last timeline second), merged; call it
    /// after every worker ended. The threads drop their interval senders, so the collector
    /// sees its channel close.
    pub async fn collect(&self) -> Recorder {
        let mut merged = Recorder::new();
        for handle in &self.handles {
            let taken = handle.spawn(async {
                LOCAL.with(|cell| {
                    cell.borrow_mut().take().map(|local| {
                        if let Some(i) = local.interval {
                            let _ = local.intervals.send(i);
                        }
                        local.recorder
                    })
                })
            });
            if let Ok(Some(recorder)) = taken.await {
                merged.merge(&recorder);
            }
        }
        merged
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
