//! Reusable sample buffers: [`Block`] and the [`MemoryPool`] that hands them out.
//!
//! Why: the streaming loop must not allocate per chunk (an allocation per
//! chunk costs time and, worse, lets the allocator's footprint drift). The
//! pipeline fills the pool once, before the first chunk, with exactly as many
//! blocks as can ever be in flight; afterwards every `get` is a pop from a
//! free list and every `put` a push, so the steady state allocates nothing
//! (checked by `tests/alloc.rs` with a counting allocator).

use std::sync::Mutex;

/// A chunk of samples for every channel, stored planar: channel `c` occupies
/// `data[c * stride .. c * stride + frames]`.
///
/// Planar storage lets each channel's filter and detector run over one
/// contiguous slice (what SIMD loops and FFTs want); the sinks interleave
/// again on the way out.
#[derive(Debug, Default)]
pub struct Block {
    data: Vec<f32>,
    stride: usize,
    channels: usize,
    frames: usize,
    /// Absolute index of the first frame of this block in its stream.
    pub start: u64,
}

impl Block {
    /// A block with room for `capacity` frames of `channels` channels.
    pub fn new(channels: usize, capacity: usize) -> Self {
        Block {
            data: vec![0.0; channels * capacity],
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
        &mut self.data[c * self.stride..(c + 1) * self.stride]
    }

    /// The held samples of channel `c`, mutable.
    pub fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        &mut self.data[c * self.stride..c * self.stride + self.frames]
    }

    /// The whole planar storage (`channels × capacity`), mutable: channel
    /// `c` is `[c * capacity .. (c + 1) * capacity]`. For splitting the
    /// channels across threads.
    pub fn planes_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Every channel's full capacity, mutable, one slice per channel (for
    /// filling all channels at once, e.g. when deinterleaving).
    pub fn channels_capacity_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        self.data.chunks_exact_mut(self.stride.max(1))
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
