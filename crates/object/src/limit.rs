//! The two limits every transfer goes through: part buffers (memory) and bandwidth.
//!
//! The bandwidth limiter is a few lines of our own (a clock-based pacer) rather than a rate
//! limiting crate: it only has to space out whole parts, which are megabytes each.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};

/// A fixed number of part buffers shared by every transfer of a repository: a buffer is taken
/// before a part is read and given back when its upload (or write) is done, so at most
/// `count × part_size` bytes are in flight whatever the number and size of files.
#[derive(Clone, Debug)]
pub struct Buffers(Arc<Semaphore>);

impl Buffers {
    /// `count` buffers (at least one).
    pub fn new(count: usize) -> Buffers {
        Buffers(Arc::new(Semaphore::new(count.max(1))))
    }

    /// Waits for a free buffer.
    pub async fn take(&self) -> OwnedSemaphorePermit {
        self.0.clone().acquire_owned().await.expect("the buffer semaphore is never closed")
    }
}

/// Paces transfers to a number of bytes per second, across every task that shares it.
#[derive(Debug)]
pub struct Bandwidth {
    bytes_per_second: u64,
    /// When the bytes granted so far will have been sent at the limit.
    next: Mutex<Instant>,
}

impl Bandwidth {
    /// A limit of `bytes_per_second` (at least 1).
    pub fn new(bytes_per_second: u64) -> Bandwidth {
        Bandwidth { bytes_per_second: bytes_per_second.max(1), next: Mutex::new(Instant::now()) }
    }

    /// Waits until `bytes` more may be sent.
    pub async fn take(&self, bytes: u64) {
        let wait_until = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let start = (*next).max(now);
            *next = start + Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
            start
        };
        tokio::time::sleep_until(wait_until).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bandwidth_spaces_parts_at_the_limit() {
        let b = Bandwidth::new(1000);
        let t0 = tokio::time::Instant::now();
        for _ in 0..4 {
            b.take(500).await;
        }
        // The 4th part starts after the first three (1500 bytes) have had their time.
        assert_eq!(t0.elapsed(), Duration::from_millis(1500));
    }
}
