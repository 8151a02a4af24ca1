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
    /// Whether it offers [`ChunkSource::seek`] ([`MemorySource::with_seek`]).
    seekable: bool,
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
            seekable: false,
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

    /// The same source, seekable: a shard of it ([`crate::shard`]) starts
    /// reading inside it. Off by default, so that a front's array is read
    /// as a stream is (its noise levels from its first chunks, as the
    /// README says of arrays), not reopened by name.
    #[must_use]
    pub fn with_seek(mut self, seekable: bool) -> Self {
        self.seekable = seekable;
        self
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

    fn seekable(&self) -> bool {
        self.seekable
    }

    fn seek(&mut self, frame: u64) -> Result<()> {
        if !self.seekable {
            return Err(Error::usage("this array is read in order only"));
        }
        let c = self.info.channels;
        self.pos = usize::try_from(frame)
            .ok()
            .and_then(|f| f.checked_mul(c))
            .filter(|&p| p <= self.data.len())
            .ok_or_else(|| Error::usage(format!("seek to frame {frame}: past the array's end")))?;
        Ok(())
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
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = signal.len() as u64;
    if mode == ConvMode::Same && threads > 1 && n >= PARALLEL_MIN_SAMPLES {
        return convolve_sharded(signal, &job, chunk_size, threads);
    }
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

/// Arrays from this many samples up are convolved (`same` mode) as shards
/// on every core: below it, starting the threads costs more than it saves.
const PARALLEL_MIN_SAMPLES: u64 = 1 << 20;

/// [`convolve_array`] in `same` mode as one shard per core
/// ([`crate::shard`]): each thread runs the chunk engine over its range of
/// the array, with the halo the filter needs and its FFT blocks where a
/// single run puts them, into its own slice of the result, so the result
/// is the single run's, bit for bit. Each shard's engine plans its chunk
/// within its share of the default memory budget.
fn convolve_sharded<T: MemorySample>(
    signal: &[T],
    job: &Job,
    chunk_size: Option<usize>,
    shards: usize,
) -> Result<Vec<f32>> {
    use crate::shard::{SampleRange, ShardPlan, plan};
    let n = signal.len() as u64;
    let plans: Vec<ShardPlan> = SampleRange::split(n, shards)
        .into_iter()
        .map(|r| plan(job, 1, n, r))
        .collect::<Result<_>>()?;
    let config = StreamConfig {
        chunk_size,
        threads: 1,
        memory_limit: super::DEFAULT_MEMORY_LIMIT / plans.len() as u64,
        ..StreamConfig::default()
    };
    // Zeroed by the allocator (fresh pages from the OS for a large array,
    // touched first by the shard that writes them).
    let mut out = vec![0.0f32; signal.len()];
    huge_pages(&mut out);
    let mut slices = Vec::with_capacity(plans.len());
    let mut rest = out.as_mut_slice();
    for p in &plans {
        let (mine, after) = rest.split_at_mut((p.range.end - p.range.start) as usize);
        slices.push(mine);
        rest = after;
    }
    std::thread::scope(|s| -> Result<()> {
        let runs: Vec<_> = plans
            .into_iter()
            .zip(slices)
            .map(|(plan, slice)| {
                let (job, config) = (job.clone(), config.clone());
                s.spawn(move || -> Result<()> {
                    let mut source = MemorySource::new(signal, 1, None)?.with_seek(true);
                    let sink = SliceSink {
                        out: slice,
                        range: plan.range,
                        next: plan.read_start,
                    };
                    StreamProcessor::new(config, job)
                        .with_shard(plan)
                        .process_source(
                            &mut source,
                            Sinks {
                                signal: Some(Box::new(sink)),
                                ..Sinks::default()
                            },
                        )
                        .map(|_| ())
                })
            })
            .collect();
        runs.into_iter().try_for_each(|r| {
            r.join().map_err(|_| Error::Runtime {
                msg: "a convolution thread panicked".into(),
            })?
        })
    })?;
    Ok(out)
}

/// One shard's slice of [`convolve_sharded`]'s result: keeps the frames of
/// its range, drops its halo and lookahead.
struct SliceSink<'a> {
    out: &'a mut [f32],
    range: crate::shard::SampleRange,
    /// Stream index of the next frame to arrive.
    next: u64,
}

impl crate::sink::SignalSink for SliceSink<'_> {
    fn write(&mut self, block: &Block) -> Result<()> {
        let first = self.next;
        self.next += block.frames() as u64;
        let (from, to) = (first.max(self.range.start), self.next.min(self.range.end));
        if from < to {
            let values = &block.channel(0)[(from - first) as usize..(to - first) as usize];
            let at = (from - self.range.start) as usize;
            self.out[at..at + values.len()].copy_from_slice(values);
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A long array (past [`PARALLEL_MIN_SAMPLES`]): `same` runs as shards
    /// on every core, `full` as one run; `same` is a slice of `full`,
    /// computed by the same blocks, so it must equal that slice bit for bit.
    #[test]
    fn sharded_same_equals_the_single_runs_full_slice() {
        let n = (PARALLEL_MIN_SAMPLES as usize) * 2 + 12_345;
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let x: Vec<f32> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        // Direct (31 taps) and overlap-save (1025 taps).
        for taps in [31usize, 1025] {
            let k: Vec<f32> = (0..taps)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 50.0)
                .collect();
            let full = convolve_array(&x, &k, ConvMode::Full, None).unwrap();
            let same = convolve_array(&x, &k, ConvMode::Same, None).unwrap();
            let skip = (taps - 1) / 2;
            assert_eq!(same.len(), n);
            if let Some(i) = (0..n).find(|&i| same[i].to_bits() != full[skip + i].to_bits()) {
                panic!(
                    "{taps} taps: sample {i} differs: {} against {}",
                    same[i],
                    full[skip + i]
                );
            }
            // And with a small chunk size.
            let small = convolve_array(&x, &k, ConvMode::Same, Some(10_000)).unwrap();
            assert!(small == same, "{taps} taps: chunk size 10,000");
        }
    }
}
