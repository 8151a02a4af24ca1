//! A bounded blocking queue that never allocates after it is made.
//!
//! Why not `std::sync::mpsc::sync_channel`: the standard channel allocates
//! the first time a thread blocks on it (to register its waker), which can
//! happen at any chunk, depending on timing; the steady-state loop must not
//! allocate at all. This queue holds at most `capacity` items in a
//! `VecDeque` sized once, and blocks with a mutex and two condition
//! variables (futexes on Linux: no allocation).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A bounded multi-producer, multi-consumer queue with an explicit close.
pub struct Queue<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    not_full: Condvar,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> Queue<T> {
    /// A queue of at most `capacity` (≥ 1) items.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity),
                closed: false,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state stays consistent if a holder panicked (push/pop are
        // single operations), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `item`, waiting while the queue is full. Gives the item back if
    /// the queue is closed (the other side has stopped).
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut s = self.lock();
        while s.items.len() >= self.capacity && !s.closed {
            s = self.not_full.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if s.closed {
            return Err(item);
        }
        s.items.push_back(item);
        drop(s);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest item, waiting while the queue is empty; `None` once
    /// the queue is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                drop(s);
                self.not_full.notify_one();
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s = self.not_empty.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Closes the queue: pushes fail from now on, pops drain what is left
    /// and then return `None`. Wakes every waiting thread.
    pub fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

/// Closes a queue when dropped, so that a thread that stops for any reason
/// (an error, a panic) releases the threads waiting on it.
pub struct CloseOnDrop<'a, T>(pub &'a Queue<T>);

impl<T> Drop for CloseOnDrop<'_, T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_and_close_ends_the_stream() {
        let q = Queue::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _close = CloseOnDrop(&q);
                for i in 0..100 {
                    q.push(i).unwrap();
                }
            });
            let got: Vec<i32> = std::iter::from_fn(|| q.pop()).collect();
            assert_eq!(got, (0..100).collect::<Vec<_>>());
        });
    }

    #[test]
    fn push_fails_once_closed() {
        let q = Queue::new(1);
        q.push(1).unwrap();
        q.close();
        assert_eq!(q.push(2), Err(2));
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.pop(), None);
    }
}
