//! In-memory helpers: whole arrays through the same chunk engine.
//!
//! Why: the seed's `ChunkedArrayProcessor.chunked_convolve(signal, kernel)`
//! lets a user filter an array they already hold with the streaming code
//! path (same results as on files, chunk size included), without writing it
//! to disk first.

use std::path::PathBuf;

use crate::backend::Job;
use crate::error::{Error, Result};
use crate::filter::ConvMode;
use crate::pool::Block;
use crate::sink::VecSink;
use crate::source::{ChunkSource, Dtype, Endian, Format, SignalInfo};

use super::{Sinks, StreamConfig, StreamProcessor};

/// A sample type an array in memory may hold: converted to `f32` as a
/// chunk is read, as the file readers convert theirs (integers keep their
/// values; `f64` is rounded once).
pub trait MemorySample: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// The sample type, for the source's description.
    const DTYPE: Dtype;
    /// The value as `f32`.
    fn to_f32(self) -> f32;
}

macro_rules! memory_sample {
    ($($t:ty => $d:ident),*) => {
        $(
            impl MemorySample for $t {
                const DTYPE: Dtype = Dtype::$d;
                #[inline]
                fn to_f32(self) -> f32 {
                    self as f32
                }
            }
        )*
    };
}

memory_sample!(f32 => F32, f64 => F64, i8 => I8, i16 => I16, i32 => I32, u8 => U8, u16 => U16);

/// A [`ChunkSource`] over interleaved samples in memory (`f32`, or any
/// [`MemorySample`], converted a chunk at a time).
#[derive(Debug)]
pub struct MemorySource<'a, T: MemorySample = f32> {
    data: &'a [T],
    pos: usize,
    info: SignalInfo,
}

impl<'a, T: MemorySample> MemorySource<'a, T> {
    /// A source over `data`, `channels` interleaved channels.
    ///
    /// # Errors
    /// [`Error::Usage`] when `channels` is 0 or does not divide
    /// `data.len()`, or `sample_rate` is not a positive finite number.
    pub fn new(data: &'a [T], channels: usize, sample_rate: Option<f64>) -> Result<Self> {
        if channels == 0 {
            return Err(Error::usage("channels must be at least 1"));
        }
        if !data.len().is_multiple_of(channels) {
            return Err(Error::usage(format!(
                "{} samples are not a whole number of {channels}-channel frames",
                data.len()
            )));
        }
        if let Some(r) = sample_rate
            && !(r.is_finite() && r > 0.0)
        {
            return Err(Error::usage(format!(
                "sample rate {r}: must be a positive number of Hz"
            )));
        }
        Ok(MemorySource {
            data,
            pos: 0,
            info: SignalInfo {
                path: PathBuf::from("<memory>"),
                format: Format::Raw,
                dtype: T::DTYPE,
                endian: Endian::Little,
                channels,
                complex: false,
                center_frequency: None,
                annotations: Vec::new(),
                frames: Some((data.len() / channels) as u64),
                sample_rate,
                data_offset: 0,
                start_time: None,
                channel_names: Vec::new(),
                segment: None,
            },
        })
    }
}

impl<T: MemorySample> ChunkSource for MemorySource<'_, T> {
    fn info(&self) -> &SignalInfo {
        &self.info
    }

    fn read_block(&mut self, block: &mut Block) -> Result<usize> {
        let c = self.info.channels;
        let frames = ((self.data.len() - self.pos) / c).min(block.capacity());
        let src = &self.data[self.pos..self.pos + frames * c];
        for (ch, dst) in block.channels_capacity_mut().enumerate() {
            for (d, s) in dst.iter_mut().zip(src.iter().skip(ch).step_by(c)) {
                *d = s.to_f32();
            }
        }
        block.set_frames(frames);
        self.pos += frames * c;
        Ok(frames)
    }
}

/// Convolves `signal` (one channel) with `kernel` like
/// `numpy.convolve(signal, kernel, mode)`, streaming it through the chunk
/// engine in chunks of `chunk_size` samples.
pub fn chunked_convolve<T: MemorySample>(
    signal: &[T],
    kernel: &[f32],
    mode: ConvMode,
    chunk_size: usize,
) -> Result<Vec<f32>> {
    convolve_array(signal, kernel, mode, Some(chunk_size))
}

/// [`chunked_convolve`] with the chunk size chosen as for a file (`None`:
/// the largest that fits the default memory budget, see
/// [`super::plan_chunk`]).
///
/// # Errors
/// An empty or non-finite kernel, a kernel longer than the signal, a chunk
/// size that does not fit the budget.
pub fn convolve_array<T: MemorySample>(
    signal: &[T],
    kernel: &[f32],
    mode: ConvMode,
    chunk_size: Option<usize>,
) -> Result<Vec<f32>> {
    let job = Job {
        kernel: Some(kernel.to_vec()),
        conv_mode: mode,
        ..Job::default()
    };
    let config = StreamConfig {
        chunk_size,
        ..StreamConfig::default()
    };
    let mut out = Vec::with_capacity(mode.output_len(signal.len() as u64, kernel.len()) as usize);
    huge_pages(&mut out);
    let mut source = MemorySource::new(signal, 1, None)?;
    StreamProcessor::new(config, job).process_source(
        &mut source,
        Sinks {
            signal: Some(Box::new(VecSink { out: &mut out })),
            ..Sinks::default()
        },
    )?;
    Ok(out)
}

/// Asks Linux to back a large output buffer with transparent huge pages
/// where the system leaves that to the program (`madvise` mode): the result
/// of an array of 10^8 samples is 400 MB, and faulting it in 4 KiB pages
/// took a third of `convolve`'s time. Elsewhere, or when refused, nothing
/// changes.
fn huge_pages(buffer: &mut Vec<f32>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let bytes = buffer.capacity() * std::mem::size_of::<f32>();
        if bytes < 4 * HUGE {
            return;
        }
        let start = buffer.as_mut_ptr() as usize;
        let first = start.next_multiple_of(HUGE);
        let len = (start + bytes - first) / HUGE * HUGE;
        // SAFETY: `[first, first + len)` lies inside the buffer's own
        // allocation (its capacity, not yet written), page-aligned;
        // MADV_HUGEPAGE only changes how the kernel backs those pages, not
        // their contents or the mapping's validity, and a failure is
        // harmless (the hint is ignored).
        unsafe {
            libc::madvise(first as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buffer;
}
