//! The two limits every transfer goes through: part buffers (memory) and bandwidth.
//!
//! The bandwidth limiter is a few lines of our own (a clock-based pacer) rather than a rate
//! limiting crate: it only has to space out whole parts, which are megabytes each.

use std::io::Read;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// A fixed number of part buffers shared by every transfer of a repository, reused from one
/// part to the next: a buffer is taken before a part is read; its place is given back once the
/// part is acknowledged, and its allocation returns to the pool when the last reference to its
/// bytes is dropped, so parts hold `count × part_size` bytes whatever the number and size of
/// files.
/// Reusing them matters as much as counting them: a fresh multi-MiB allocation per file is
/// freed into the allocator's per-thread arenas, which keep it, and the process grows far past
/// the bound (366 MiB for 10,000 small files before this pool).
#[derive(Clone, Debug)]
pub struct Buffers {
    permits: Arc<Semaphore>,
    free: Arc<StdMutex<Vec<Vec<u8>>>>,
    part_size: usize,
}

impl Buffers {
    /// `count` buffers (at least one) of `part_size` bytes each, allocated when first needed.
    pub fn new(count: usize, part_size: usize) -> Buffers {
        Buffers { permits: Arc::new(Semaphore::new(count.max(1))), free: Arc::default(), part_size }
    }

    /// The size of each buffer.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// Waits for a free buffer; it is empty, with room for at least a part.
    pub async fn take(&self) -> Buffer {
        let permit = self.permits.clone().acquire_owned().await.expect("the buffer semaphore is never closed");
        let data = self.free.lock().expect("buffer pool").pop();
        let data = data.unwrap_or_else(|| Vec::with_capacity(self.part_size));
        Buffer { data, permit: Some(permit), pool: self.free.clone(), part_size: self.part_size }
    }
}

/// One part buffer, holding its place in the pool until it is dropped.
#[derive(Debug)]
pub struct Buffer {
    data: Vec<u8>,
    /// The buffer's place among the `count`: given back when the buffer is dropped, or by
    /// whoever holds it after [`Buffer::into_bytes`].
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<StdMutex<Vec<Vec<u8>>>>,
    part_size: usize,
}

impl Buffer {
    /// Reads up to `len` bytes of `from` (fewer only at its end) into the buffer, replacing
    /// what it held.
    pub fn fill(&mut self, from: &mut impl Read, len: usize) -> std::io::Result<&[u8]> {
        self.data.clear();
        self.data.reserve_exact(len);
        from.take(len as u64).read_to_end(&mut self.data)?;
        Ok(&self.data)
    }

    /// Appends `bytes` (a download gathering a batch to write).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the buffer holds nothing.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Empties the buffer, keeping its allocation.
    pub fn clear(&mut self) {
        self.data.clear();
    }

    /// The buffer's bytes, for a store to send, and its place in the pool, to be dropped once
    /// the store has sent them. The allocation returns to the pool when the last clone of the
    /// bytes is dropped; the place is separate because a store may keep the bytes longer (the
    /// in-memory store keeps parts until the upload completes), and waiting for them would
    /// deadlock an upload of more parts than buffers.
    pub fn into_bytes(mut self) -> (Bytes, OwnedSemaphorePermit) {
        let permit = self.permit.take().expect("a buffer holds its permit until into_bytes");
        (Bytes::from_owner(self), permit)
    }
}

impl AsRef<[u8]> for Buffer {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let mut data = std::mem::take(&mut self.data);
        data.clear();
        // A larger part (a file beyond 10,000 parts) is not kept: the pool stays at its size.
        if data.capacity() >= self.part_size && data.capacity() <= self.part_size + self.part_size / 8 {
            self.pool.lock().expect("buffer pool").push(data);
        }
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

    #[tokio::test]
    async fn part_buffers_are_reused_and_bounded() {
        let pool = Buffers::new(2, 1 << 20);
        let mut a = pool.take().await;
        let data = vec![7u8; 3 << 20];
        assert_eq!(a.fill(&mut &data[..], 1 << 20).unwrap().len(), 1 << 20);
        let first = a.as_ref().as_ptr();
        let (bytes, permit) = a.into_bytes();
        let clone = bytes.clone();
        let _b = pool.take().await;
        // Both places are taken: a third buffer waits.
        assert!(tokio::time::timeout(Duration::from_millis(50), pool.take()).await.is_err());
        drop(permit);
        drop(bytes);
        drop(clone);
        // The place and, once the last clone went, the allocation are back.
        let mut c = pool.take().await;
        assert!(c.is_empty(), "a buffer from the pool starts empty");
        assert_eq!(c.fill(&mut &data[..10], 1 << 20).unwrap(), &[7u8; 10]);
        assert_eq!(c.as_ref().as_ptr(), first);
    }

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
