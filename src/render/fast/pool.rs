//! Worker threads that live as long as the renderer. The mapper runs about forty parallel
//! loops per frame; starting and joining an OS thread for each costs tens of microseconds of
//! latency on the critical path, waking a parked worker much less.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// A job: called once per thread with the thread's index (0 = the caller).
type Job = dyn Fn(usize) + Sync;

#[derive(Default)]
struct State {
    /// The running job, its lifetime erased: [`Pool::run`] does not return (or unwind) before
    /// `pending` is back to zero, so no worker touches it after its borrow ends.
    job: Option<&'static Job>,
    /// Incremented per job, so a worker runs each job once.
    generation: u64,
    /// Workers that have not finished the current job.
    pending: usize,
    /// A worker's part of the current job panicked.
    panicked: bool,
    shutdown: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    start: Condvar,
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `threads - 1` parked workers plus the calling thread.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} threads)", self.threads())
    }
}

impl Pool {
    /// A pool running jobs on `threads` threads (at least one: the caller's). Workers that
    /// cannot be started are done without (the pool gets smaller, results stay the same).
    pub fn new(threads: usize) -> Self {
        let shared = Arc::new(Shared::default());
        let mut workers = Vec::new();
        for i in 1..threads.max(1) {
            let sh = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("gs_livo render {i}"))
                .spawn(move || work(&sh, i));
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => {
                    tracing::warn!("render worker thread: {e}; rendering on fewer threads");
                    break;
                }
            }
        }
        Self { shared, workers }
    }

    /// Number of threads a job runs on.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job(i)` for every thread index `i` in `0..threads()`, `0` on the calling thread,
    /// and returns once all have finished. A panic in any part is raised here.
    pub fn run<'a>(&self, job: &'a (dyn Fn(usize) + Sync + 'a)) {
        if self.workers.is_empty() {
            job(0);
            return;
        }
        // SAFETY: the erased reference is only read by workers while `pending > 0`; `Wait`
        // below blocks (on return and on unwind alike) until `pending` is zero again.
        let erased: &'static Job =
            unsafe { std::mem::transmute::<&'a (dyn Fn(usize) + Sync + 'a), &'static Job>(job) };
        {
            let mut st = self.shared.lock();
            if st.job.is_some() {
                // Called from inside a job (or from another thread meanwhile): the workers are
                // taken, so every part runs here, in order.
                drop(st);
                (0..self.threads()).for_each(job);
                return;
            }
            st.job = Some(erased);
            st.generation += 1;
            st.pending = self.workers.len();
            st.panicked = false;
        }
        self.shared.start.notify_all();
        struct Wait<'a>(&'a Shared);
        impl Drop for Wait<'_> {
            fn drop(&mut self) {
                let mut st = self.0.lock();
                while st.pending > 0 {
                    st = self.0.done.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                st.job = None;
            }
        }
        let wait = Wait(&self.shared);
        job(0);
        drop(wait);
        if self.shared.lock().panicked {
            panic!("a render worker thread panicked");
        }
    }
}

/// A worker's loop: wait for a new generation, run its part, report, until shut down.
fn work(sh: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let job = {
            let mut st = sh.lock();
            while !st.shutdown && st.generation == seen {
                st = sh.start.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if st.shutdown {
                return;
            }
            seen = st.generation;
            st.job
        };
        let ok = match job {
            Some(job) => catch_unwind(AssertUnwindSafe(|| job(index))).is_ok(),
            None => true,
        };
        let mut st = sh.lock();
        st.panicked |= !ok;
        st.pending -= 1;
        if st.pending == 0 {
            sh.done.notify_all();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.start.notify_all();
        for h in self.workers.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_index_runs_once_per_job() {
        let pool = Pool::new(3);
        assert_eq!(pool.threads(), 3);
        for _ in 0..200 {
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            pool.run(&|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn borrows_outlive_the_job_and_panics_surface() {
        let pool = Pool::new(2);
        let mut data = vec![0u64; 1000];
        {
            let cells: Vec<Mutex<&mut [u64]>> = data.chunks_mut(500).map(Mutex::new).collect();
            pool.run(&|i| {
                for v in cells[i].lock().unwrap().iter_mut() {
                    *v = i as u64 + 1;
                }
            });
        }
        assert_eq!(data.iter().sum::<u64>(), 500 + 1000);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.run(&|i| assert!(i == 0, "worker part fails"));
        }));
        assert!(caught.is_err());
        // Still usable after a panic.
        let n = AtomicUsize::new(0);
        pool.run(&|_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_nested_job_runs_inline() {
        let pool = Pool::new(2);
        let n = AtomicUsize::new(0);
        pool.run(&|_| {
            pool.run(&|i| {
                n.fetch_add(i + 1, Ordering::Relaxed);
            });
        });
        // Each outer part ran the inner job: at least one inline (1 + 2), the other inline too
        // or on the workers (1 + 2).
        assert_eq!(n.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn one_thread_runs_inline() {
        let pool = Pool::new(1);
        let n = AtomicUsize::new(0);
        pool.run(&|i| {
            n.fetch_add(i + 1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 1);
    }
}
