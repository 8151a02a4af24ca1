//! Reusable sample buffers: [`Block`] and the [`MemoryPool`] that hands them out.
//!
//! Why: the streaming loop must not allocate per chunk (an allocation per
//! chunk costs time and, worse, lets the allocator's footprint drift). The
//! pipeline fills the pool once, before the first chunk, with exactly as many
//! blocks as can ever be in flight; afterwards every `get` is a pop from a
//! free list and every `put` a push, so the steady state allocates nothing
//! (checked by `tests/alloc.rs` with a counting allocator).
//!
//! A block's storage can be **shared** ([`Block::share`]): a front hands a
//! channel's samples to user code (Python's custom detector gets them as a
//! read-only numpy view) without copying them. The storage is
//! reference-counted and copied on write: while nobody else holds it, the
//! block writes in place as before; when the engine next writes to a block
//! whose samples someone kept, the block first takes a copy of its own and
//! the keeper's samples stay as they were. Nothing is ever written under a
//! reader, and the copy (outside the memory budget, like anything the user
//! keeps) is made only for samples kept past the call.

use std::sync::{Arc, Mutex};

/// A chunk of samples for every channel, stored planar: channel `c` occupies
/// `data[c * stride .. c * stride + frames]`.
///
/// Planar storage lets each channel's filter and detector run over one
/// contiguous slice (what SIMD loops and FFTs want); the sinks interleave
/// again on the way out.
#[derive(Debug)]
pub struct Block {
    /// Shared only through [`Block::share`]; every write goes through
    /// [`Block::storage_mut`] (copy on write).
    data: Arc<Vec<f32>>,
    stride: usize,
    channels: usize,
    frames: usize,
    /// Absolute index of the first frame of this block in its stream.
    pub start: u64,
}

/// The storage of every empty block ([`Block::default`]): taking a block
/// out of a struct (`std::mem::take`, as the backends do every chunk) must
/// not allocate.
static EMPTY: std::sync::LazyLock<Arc<Vec<f32>>> = std::sync::LazyLock::new(Arc::default);

impl Default for Block {
    /// A block with no room (no allocation).
    fn default() -> Self {
        Block {
            data: Arc::clone(&EMPTY),
            stride: 0,
            channels: 0,
            frames: 0,
            start: 0,
        }
    }
}

impl Block {
    /// A block with room for `capacity` frames of `channels` channels.
    pub fn new(channels: usize, capacity: usize) -> Self {
        Block {
            data: Arc::new(vec![0.0; channels * capacity]),
            stride: capacity,
            channels,
            frames: 0,
            start: 0,
        }
    }

    /// Frames (samples per channel) this block can hold.
    pub fn capacity(&self) -> usize {
        self.stride
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Frames currently held.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Sets the number of frames held.
    ///
    /// # Panics
    /// If `frames` exceeds the capacity: that is a bug in the caller.
    pub fn set_frames(&mut self, frames: usize) {
        assert!(
            frames <= self.stride,
            "block holds at most {} frames, asked for {frames}",
            self.stride
        );
        self.frames = frames;
    }

    /// The held samples of channel `c`.
    pub fn channel(&self, c: usize) -> &[f32] {
        &self.data[c * self.stride..c * self.stride + self.frames]
    }

    /// The whole capacity of channel `c`, for filling (then call
    /// [`Block::set_frames`]).
    pub fn channel_capacity_mut(&mut self, c: usize) -> &mut [f32] {
        let stride = self.stride;
        &mut self.storage_mut()[c * stride..(c + 1) * stride]
    }

    /// Frames `frames` of channel `c` (within the capacity, held or not).
    ///
    /// # Panics
    /// If `frames` runs past the capacity (a caller's bug).
    pub fn channel_span(&self, c: usize, frames: std::ops::Range<usize>) -> &[f32] {
        assert!(frames.end <= self.stride, "frames within the capacity");
        &self.data[c * self.stride..][frames]
    }

    /// Frames `frames` of channel `c`, shared instead of copied: they stay
    /// as they are for as long as the handle lives, whatever the block
    /// does next (it copies its storage before writing while a handle is
    /// out).
    ///
    /// # Panics
    /// If `frames` runs past the capacity (a caller's bug).
    pub fn share(&self, c: usize, frames: std::ops::Range<usize>) -> SharedSamples {
        assert!(frames.end <= self.stride, "frames within the capacity");
        let at = c * self.stride;
        SharedSamples {
            data: Arc::clone(&self.data),
            span: at + frames.start..at + frames.end,
        }
    }

    /// The storage, for writing: the block's own, copied first if a
    /// [`SharedSamples`] of it is still held.
    fn storage_mut(&mut self) -> &mut Vec<f32> {
        Arc::make_mut(&mut self.data)
    }

    /// The held samples of channel `c`, mutable.
    pub fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        let (stride, frames) = (self.stride, self.frames);
        &mut self.storage_mut()[c * stride..c * stride + frames]
    }

    /// The whole planar storage (`channels × capacity`), mutable: channel
    /// `c` is `[c * capacity .. (c + 1) * capacity]`. For splitting the
    /// channels across threads.
    pub fn planes_mut(&mut self) -> &mut [f32] {
        self.storage_mut()
    }

    /// Every channel's full capacity, mutable, one slice per channel (for
    /// filling all channels at once, e.g. when deinterleaving).
    pub fn channels_capacity_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        let stride = self.stride.max(1);
        self.storage_mut().chunks_exact_mut(stride)
    }
}

/// Samples of one channel of a [`Block`], shared with it
/// ([`Block::share`]): read-only, and unchanged for as long as this lives.
#[derive(Debug, Clone)]
pub struct SharedSamples {
    data: Arc<Vec<f32>>,
    span: std::ops::Range<usize>,
}

impl std::ops::Deref for SharedSamples {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.data[self.span.clone()]
    }
}

/// A free list of [`Block`]s of one shape (channels × capacity).
///
/// Like the seed's `MemoryPool(max_size)`: `get` returns a pooled block or
/// allocates one when the pool is empty, `put` returns a block for reuse and
/// drops it when the pool already holds `max_size`. The pool is `Sync`, so
/// the reader thread, the compute thread and the writer thread share one.
#[derive(Debug)]
pub struct MemoryPool {
    free: Mutex<Vec<Block>>,
    channels: usize,
    capacity: usize,
    max_size: usize,
}

impl MemoryPool {
    /// A pool of blocks of `channels` × `capacity` frames that keeps at most
    /// `max_size` free blocks.
    pub fn new(channels: usize, capacity: usize, max_size: usize) -> Self {
        MemoryPool {
            free: Mutex::new(Vec::with_capacity(max_size)),
            channels,
            capacity,
            max_size,
        }
    }

    /// Allocates `n` blocks up front (at most `max_size`), so that a pipeline
    /// with at most `n` blocks in flight never allocates afterwards.
    pub fn prefill(&self, n: usize) {
        let mut free = self.lock();
        while free.len() < n.min(self.max_size) {
            free.push(Block::new(self.channels, self.capacity));
        }
    }

    /// A block from the pool, or a new one if the pool is empty. Its frame
    /// count is 0; its contents are whatever the last user left.
    pub fn get(&self) -> Block {
        let block = self.lock().pop();
        let mut block = block.unwrap_or_else(|| Block::new(self.channels, self.capacity));
        block.frames = 0;
        block.start = 0;
        block
    }

    /// Returns a block to the pool (dropped if the pool is full or the block
    /// has another shape).
    pub fn put(&self, block: Block) {
        if block.channels != self.channels || block.stride != self.capacity {
            return;
        }
        let mut free = self.lock();
        if free.len() < self.max_size {
            free.push(block);
        }
    }

    /// Blocks currently free in the pool.
    pub fn available(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Block>> {
        // A panic while holding this lock cannot leave the Vec inconsistent
        // (push/pop are atomic with respect to unwinding), so a poisoned lock
        // is still usable.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_put_reuses_the_same_buffer() {
        let pool = MemoryPool::new(2, 16, 4);
        let mut b = pool.get();
        b.channel_capacity_mut(1)[3] = 7.0;
        let ptr = b.channel(0).as_ptr();
        pool.put(b);
        assert_eq!(pool.available(), 1);
        let b = pool.get();
        assert_eq!(b.channel(0).as_ptr(), ptr, "the pooled block comes back");
        assert_eq!(b.frames(), 0);
    }

    #[test]
    fn pool_keeps_at_most_max_size() {
        let pool = MemoryPool::new(1, 8, 2);
        pool.prefill(5);
        assert_eq!(pool.available(), 2);
        let blocks: Vec<_> = (0..4).map(|_| pool.get()).collect();
        for b in blocks {
            pool.put(b);
        }
        assert_eq!(pool.available(), 2);
    }

    #[test]
    fn shared_samples_stay_as_they_were_while_the_block_goes_on() {
        let pool = MemoryPool::new(2, 8, 1);
        let mut b = pool.get();
        b.channel_capacity_mut(1)
            .copy_from_slice(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let ptr = b.channel(0).as_ptr();
        let kept = b.share(1, 2..5);
        assert_eq!(&*kept, &[3.0, 4.0, 5.0]);
        assert_eq!(
            kept.as_ptr(),
            b.channel_span(1, 2..5).as_ptr(),
            "not a copy"
        );
        // Reused while the samples are held: the block writes to a copy.
        pool.put(b);
        let mut b = pool.get();
        b.channel_capacity_mut(1).fill(-1.0);
        assert_eq!(&*kept, &[3.0, 4.0, 5.0], "the kept samples did not change");
        assert_ne!(
            b.channel(0).as_ptr(),
            ptr,
            "the block took storage of its own"
        );
        assert_eq!(b.channel_span(1, 0..8), &[-1.0; 8]);
        // Shared and let go: the block writes in place again.
        let ptr = b.channel(0).as_ptr();
        drop(b.share(0, 0..8));
        b.planes_mut()[0] = 9.0;
        assert_eq!(
            b.channel(0).as_ptr(),
            ptr,
            "no copy once the handle is gone"
        );
    }

    #[test]
    fn planar_layout() {
        let mut b = Block::new(3, 4);
        for (c, ch) in b.channels_capacity_mut().enumerate() {
            ch.fill(c as f32);
        }
        b.set_frames(2);
        assert_eq!(b.channel(2), &[2.0, 2.0]);
        assert_eq!(b.channel(0).len(), 2);
    }
}
