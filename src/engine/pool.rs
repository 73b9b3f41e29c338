//! The threads that run the workers: one single-threaded tokio runtime per core, with each
//! worker (and the task driving its connection) kept on one of them. Compared with one
//! work-stealing runtime, a request never crosses threads between the worker and its
//! connection, which halves the wake-ups per request; this is how wrk and oha's fast path work.

use std::future::Future;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub struct Pool {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl Pool {
    /// `threads` runtimes (at least one).
    pub fn new(threads: usize) -> std::io::Result<Pool> {
        let mut pool = Pool {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
            next: 0,
        };
        for i in 0..threads.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            pool.handles.push(runtime.handle().clone());
            pool.stops.push(stop_tx);
            pool.threads.push(
                std::thread::Builder::new()
                    .name(format!("sdload-load-{i}"))
                    .spawn(move || {
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

    /// The number of threads for this machine: one per core.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }

    /// The runtime the next worker goes to (round robin).
    pub fn next_handle(&mut self) -> Handle {
        let h = self.handles[self.next % self.handles.len()].clone();
        self.next += 1;
        h
    }

    /// Spawns a worker on the next runtime.
    pub fn spawn<F>(&mut self, set: &mut tokio::task::JoinSet<F::Output>, future: F)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self.next_handle();
        set.spawn_on(future, &handle);
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
