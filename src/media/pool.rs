//! The media worker pool: every subscription's decoders run on one
//! process-wide set of threads, as many as the machine has cores, instead of a
//! thread per track. A room with nine remote streams on a 2-core laptop has two
//! decode threads, not eighteen.
//!
//! Work arrives through [`SerialQueue`]s: a bounded queue per track whose items
//! are handled **one at a time, in order** (a decoder has state) by whichever
//! worker is free. A queue is scheduled on the pool when its first item arrives
//! and runs up to [`BATCH`] items before yielding the worker to other queues,
//! so one busy track cannot starve the rest. Handlers must not block (decoders
//! hand results over through latest-frame slots and drop-oldest queues).
//!
//! Audio queues are [`SerialQueue::urgent`]: workers take them before any
//! video work, so a 0.1 ms audio frame never waits behind a queue of
//! multi-millisecond video frames.
//!
//! A full queue refuses the item ([`SerialQueue::try_push`] returns it): the
//! caller decides what a drop means (video: ask for a keyframe).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_channel::Sender;

/// Items one queue handles before giving its worker back to the pool.
pub const BATCH: usize = 2;

trait Job: Send + Sync {
    fn run(self: Arc<Self>);
}

/// The process-wide pool (started on first use).
struct Pool {
    tx: Sender<Arc<dyn Job>>,
    /// Audio: workers take these first. A 20 ms audio frame costs ~0.1 ms to
    /// code, a video frame milliseconds; audio must not queue behind video.
    urgent: Sender<Arc<dyn Job>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = crossbeam_channel::unbounded::<Arc<dyn Job>>();
        let (urgent, urgent_rx) = crossbeam_channel::unbounded::<Arc<dyn Job>>();
        for i in 0..worker_count() {
            let (rx, urgent_rx) = (rx.clone(), urgent_rx.clone());
            let next = move || -> Option<Arc<dyn Job>> {
                if let Ok(job) = urgent_rx.try_recv() {
                    return Some(job);
                }
                crossbeam_channel::select! {
                    recv(urgent_rx) -> job => job.ok(),
                    recv(rx) -> job => job.ok(),
                }
            };
            let spawned = std::thread::Builder::new()
                .name(format!("huddle-media-{i}"))
                .spawn(move || {
                    while let Some(job) = next() {
                        // A panicking handler loses its own queue (its mutex is
                        // poisoned), not the worker.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()))
                            .is_err()
                        {
                            tracing::error!("a media job panicked");
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start media worker {i}: {e}");
            }
        }
        Pool { tx, urgent }
    })
}

/// Workers in the pool: the machine's parallelism (at least 2, so one long
/// decode never holds up every other stream on a single-core machine).
pub fn worker_count() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(2)
        .max(2)
}

type Handler<T> = Box<dyn FnMut(T) + Send>;

struct Serial<T> {
    queue: Mutex<VecDeque<T>>,
    capacity: usize,
    urgent: bool,
    scheduled: AtomicBool,
    handler: Mutex<Handler<T>>,
}

impl<T: Send + 'static> Serial<T> {
    fn schedule(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::SeqCst) {
            // Fails only if every worker failed to start; then nothing runs anyway.
            let pool = pool();
            let lane = if self.urgent { &pool.urgent } else { &pool.tx };
            lane.send(Arc::clone(self) as Arc<dyn Job>).ok();
        }
    }

    fn pop(&self) -> Option<T> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }
}

impl<T: Send + 'static> Job for Serial<T> {
    fn run(self: Arc<Self>) {
        {
            let Ok(mut handler) = self.handler.lock() else {
                return; // an earlier item panicked: this queue is dead
            };
            for _ in 0..BATCH {
                match self.pop() {
                    Some(item) => handler(item),
                    None => break,
                }
            }
        }
        // Unschedule, then look again: an item pushed after our last pop saw
        // `scheduled` still set and did not schedule us.
        self.scheduled.store(false, Ordering::SeqCst);
        let pending = !self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty();
        if pending {
            self.schedule();
        }
    }
}

/// A bounded queue handled in order, one item at a time, on the media pool.
/// Dropping it drops the handler once queued items are done.
pub struct SerialQueue<T: Send + 'static> {
    inner: Arc<Serial<T>>,
}

impl<T: Send + 'static> SerialQueue<T> {
    /// A queue of at most `capacity` waiting items, each passed to `handler`.
    pub fn new(capacity: usize, handler: impl FnMut(T) + Send + 'static) -> Self {
        Self::with_lane(capacity, false, handler)
    }

    /// Like [`SerialQueue::new`], served before every non-urgent queue (audio).
    pub fn urgent(capacity: usize, handler: impl FnMut(T) + Send + 'static) -> Self {
        Self::with_lane(capacity, true, handler)
    }

    fn with_lane(capacity: usize, urgent: bool, handler: impl FnMut(T) + Send + 'static) -> Self {
        Self {
            inner: Arc::new(Serial {
                queue: Mutex::new(VecDeque::with_capacity(capacity)),
                capacity: capacity.max(1),
                urgent,
                scheduled: AtomicBool::new(false),
                handler: Mutex::new(Box::new(handler)),
            }),
        }
    }

    /// Queues `item`; gives it back when `capacity` items are already waiting.
    ///
    /// # Errors
    /// The item, when the queue is full (the handler is behind).
    pub fn try_push(&self, item: T) -> Result<(), T> {
        {
            let mut queue = self
                .inner
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if queue.len() >= self.inner.capacity {
                return Err(item);
            }
            queue.push_back(item);
        }
        self.inner.schedule();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_until(mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn items_are_handled_in_order_one_at_a_time() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let busy = Arc::new(AtomicBool::new(false));
        let (s, b) = (Arc::clone(&seen), Arc::clone(&busy));
        let queue = SerialQueue::new(1000, move |i: u32| {
            assert!(!b.swap(true, Ordering::SeqCst), "two items at once");
            s.lock().unwrap().push(i);
            b.store(false, Ordering::SeqCst);
        });
        for i in 0..500 {
            queue.try_push(i).unwrap();
        }
        wait_until(|| seen.lock().unwrap().len() == 500);
        assert_eq!(*seen.lock().unwrap(), (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn a_full_queue_gives_the_item_back() {
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        let queue = SerialQueue::new(2, move |_: u32| {
            gate.recv().ok(); // hold the worker until released
        });
        queue.try_push(0).unwrap(); // taken by a worker, which then waits
        wait_until(|| queue.inner.queue.lock().unwrap().is_empty());
        queue.try_push(1).unwrap();
        queue.try_push(2).unwrap();
        assert_eq!(queue.try_push(3), Err(3));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
    }

    #[test]
    fn urgent_queues_run_in_order_too() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let queue = SerialQueue::urgent(100, move |i: u32| s.lock().unwrap().push(i));
        for i in 0..100 {
            queue.try_push(i).unwrap();
        }
        wait_until(|| seen.lock().unwrap().len() == 100);
        assert_eq!(*seen.lock().unwrap(), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn many_queues_share_the_workers_and_all_finish() {
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let queues: Vec<_> = (0..20)
            .map(|_| {
                let d = Arc::clone(&done);
                SerialQueue::new(100, move |_: u32| {
                    d.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for i in 0..50 {
            for q in &queues {
                q.try_push(i).unwrap();
            }
        }
        wait_until(|| done.load(Ordering::SeqCst) == 20 * 50);
    }
}
