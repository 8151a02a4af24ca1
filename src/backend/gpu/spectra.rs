//! Power spectra of real frames on the GPU, for the STFT and Welch
//! ([`crate::spectral`]): a batch of frames goes up as the run of signal
//! samples it was cut from, one fused real-input FFT ([`GpuRfft`]) windows
//! and transforms every frame in place, and `|X[k]|²` is formed on the host
//! from the bins read back.
//!
//! Why it looks like this:
//! - Frames overlap (Welch's default hop is n/2, spectrograms often n/4), so
//!   uploading the samples they come from, `(frames − 1) hop + n` per batch,
//!   moves up to n/hop times less than uploading each frame. The FFT reads
//!   frame `t` at `t hop` ([`GpuRfft::bind_windowed`] with
//!   `input_stride = hop`) and multiplies by the window as it loads, so the
//!   host does no per-frame work. With a hop above n the gaps are not sent:
//!   frames are gathered end to end (stride n), still one copy per sample.
//! - Detrending (`detrend='constant'`, Welch's default) cannot be a window
//!   multiply, so it is done in the spectrum: the transform is linear, so
//!   `DFT(w (x − m)) = DFT(w x) − m W` with `W` the window's own DFT,
//!   computed once per plan in f64. Frame means come from a running f64 sum
//!   over the uploaded run (O(run), not O(frames × n)). This keeps the one
//!   upload and the one dispatch; keeping the host path for detrended frames
//!   would upload every frame and window it on the host again.
//!   To keep the subtraction from cancelling large numbers (a signal with a
//!   big DC offset, the case detrending is for), the batch's mean frame mean
//!   `c` is removed from the samples while they are copied into the upload
//!   buffer, so only the small `m − c` of each frame is corrected in the
//!   spectrum: `(x − c) − (m − c) = x − m` exactly, in f64 on the host.
//! - `|X|²` stays on the host: the readback is needed anyway, and squaring
//!   the bins there costs less than a second dispatch.
//! - Buffers and bind groups are made once per plan ([`GpuPowerSpectra::new`]
//!   for a full batch; smaller power-of-two batches for a run's tail when
//!   first needed); the upload and readback buffers are mapped per batch, so
//!   nothing is allocated per chunk and no `queue.write_buffer` runs per
//!   batch.

use std::sync::Arc;

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

use super::context::GpuContext;
use super::rfft::{GpuRfft, RfftBinding};
use crate::error::{Error, Result};

/// Bytes per complex value (`vec2<f32>`).
const COMPLEX_BYTES: u64 = 8;

/// Bytes per sample (`f32`).
const SAMPLE_BYTES: u64 = 4;

/// Samples per batch the plan aims at (16 MiB of `f32` up, about as much
/// back).
const BATCH_SAMPLES: usize = 1 << 22;

/// Whether the GPU path takes frames of `n` samples: the real FFT needs a
/// power of two >= 4.
pub fn supports(n: usize) -> bool {
    n.is_power_of_two() && n >= 4
}

/// A planned batch of power spectra of real frames of length `n`, `hop`
/// samples apart, windowed and optionally detrended.
pub struct GpuPowerSpectra {
    ctx: Arc<GpuContext>,
    n: usize,
    hop: usize,
    /// Samples between uploaded frames: `min(hop, n)`.
    stride: usize,
    frames: usize,
    /// FFT plans and their bindings by batch (powers of two up to
    /// `frames`), made when first needed, so a short run does not pay for a
    /// full batch.
    plans: Vec<Option<(GpuRfft, RfftBinding)>>,
    window: wgpu::Buffer,
    /// The window's DFT, `n/2 + 1` bins in f64, when detrending.
    window_dft: Option<Vec<Complex<f64>>>,
    input: wgpu::Buffer,
    output: wgpu::Buffer,
    upload: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Host copy of a batch's samples (the mapped view is write-only).
    staged: Vec<f32>,
    /// Running sums of `staged` and the frames' means, when detrending.
    prefix: Vec<f64>,
    means: Vec<f64>,
}

impl std::fmt::Debug for GpuPowerSpectra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPowerSpectra")
            .field("n", &self.n)
            .field("hop", &self.hop)
            .field("frames", &self.frames)
            .field("detrend", &self.window_dft.is_some())
            .finish_non_exhaustive()
    }
}

impl GpuPowerSpectra {
    /// Plans frames of `n` samples ([`supports`]) every `hop` samples,
    /// multiplied by `window` (n values), with each frame's mean removed
    /// first when `detrend` is set.
    ///
    /// # Errors
    /// [`Error::Usage`] for an `n` the GPU path does not take or a hop of
    /// 0; [`Error::Gpu`] when the FFT cannot be planned on this device.
    ///
    /// # Panics
    /// If `window` does not hold `n` values.
    pub fn new(
        ctx: &Arc<GpuContext>,
        n: usize,
        hop: usize,
        window: &[f32],
        detrend: bool,
    ) -> Result<Self> {
        assert_eq!(window.len(), n, "one window value per sample");
        if !supports(n) {
            return Err(Error::usage(format!(
                "the GPU frame length must be a power of two >= 4, not {n}"
            )));
        }
        if hop == 0 {
            return Err(Error::usage("the hop must be at least 1"));
        }
        let stride = hop.min(n);
        let frames = (BATCH_SAMPLES / n).max(1);
        // A power of two, rounded down: the input stays under the budget.
        let frames = 1usize << frames.ilog2();
        // Fail now, not mid-stream, if the device cannot hold a full batch.
        let full = GpuRfft::new(ctx, n, frames)?;
        let samples = (frames - 1) * stride + n;
        let in_bytes = samples as u64 * SAMPLE_BYTES;
        let out_bytes = (frames * full.bins()) as u64 * COMPLEX_BYTES;
        let input = ctx.storage("spectra input", in_bytes);
        let output = ctx.storage("spectra output", out_bytes);
        let upload = ctx.buffer(
            "spectra upload",
            in_bytes,
            wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
        );
        let readback = ctx.buffer(
            "spectra readback",
            out_bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let window_buffer = ctx.storage_init("spectra window", window)?;
        let window_dft = detrend.then(|| {
            let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
            let mut w: Vec<f64> = window.iter().map(|&v| f64::from(v)).collect();
            let mut out = fft.make_output_vec();
            // Lengths are the plan's own: process cannot fail.
            let _ = fft.process(&mut w, &mut out);
            out
        });
        let mut plans: Vec<Option<(GpuRfft, RfftBinding)>> =
            (0..=frames.ilog2()).map(|_| None).collect();
        let binding = full.bind_windowed(&input, 0, stride, Some(&window_buffer), &output);
        plans[frames.ilog2() as usize] = Some((full, binding));
        Ok(GpuPowerSpectra {
            ctx: ctx.clone(),
            n,
            hop,
            stride,
            frames,
            plans,
            window: window_buffer,
            window_dft,
            input,
            output,
            upload,
            readback,
            staged: Vec::new(),
            prefix: Vec::new(),
            means: Vec::new(),
        })
    }

    /// Most frames one [`GpuPowerSpectra::power`] call takes.
    pub fn frames_per_call(&self) -> usize {
        self.frames
    }

    /// `|X[k]|²`, `k = 0 ..= n/2`, of `count` frames of `data` (frame `j` at
    /// samples `offset + j hop ..`, at most
    /// [`GpuPowerSpectra::frames_per_call`] frames) into `out` (`n/2 + 1`
    /// values per frame).
    ///
    /// # Errors
    /// [`Error::Gpu`] when mapping or the device fails.
    ///
    /// # Panics
    /// If `count` exceeds a call, or `data` or `out` is too short.
    pub fn power(
        &mut self,
        data: &[f32],
        offset: usize,
        count: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let (n, hop, stride) = (self.n, self.hop, self.stride);
        let bins = n / 2 + 1;
        if count == 0 {
            return Ok(());
        }
        assert!(count <= self.frames && out.len() >= count * bins);
        assert!(offset + (count - 1) * hop + n <= data.len());
        let samples = (count - 1) * stride + n;
        let mut staged = std::mem::take(&mut self.staged);
        staged.clear();
        if hop <= n {
            staged.extend_from_slice(&data[offset..offset + samples]);
        } else {
            for j in 0..count {
                staged.extend_from_slice(&data[offset + j * hop..][..n]);
            }
        }
        if self.window_dft.is_some() {
            self.frame_means(&staged, count);
            let c = (self.means.iter().sum::<f64>() / count as f64) as f32;
            for v in &mut staged {
                *v -= c;
            }
            for m in &mut self.means {
                *m -= f64::from(c);
            }
        }
        let in_bytes = samples as u64 * SAMPLE_BYTES;
        let written = self
            .map(&self.upload, wgpu::MapMode::Write, in_bytes)
            .and_then(|()| {
                self.upload
                    .slice(..in_bytes)
                    .get_mapped_range_mut()
                    .map(|mut view| view.copy_from_slice(bytemuck::cast_slice(&staged)))
                    .map_err(|e| self.err(e))
            });
        self.staged = staged;
        written?;
        self.upload.unmap();

        let batch = count.next_power_of_two();
        let slot = batch.ilog2() as usize;
        if self.plans[slot].is_none() {
            let fft = GpuRfft::new(&self.ctx, n, batch)?;
            let binding =
                fft.bind_windowed(&self.input, 0, stride, Some(&self.window), &self.output);
            self.plans[slot] = Some((fft, binding));
        }
        let (fft, binding) = self.plans[slot]
            .as_ref()
            .ok_or_else(|| Error::gpu("real FFT plan missing"))?;
        let out_bytes = (count * bins) as u64 * COMPLEX_BYTES;
        let mut encoder = self.ctx.encoder("spectra");
        encoder.copy_buffer_to_buffer(&self.upload, 0, &self.input, 0, in_bytes);
        // Frames past `count` read stale samples: independent transforms
        // whose bins are never read back.
        fft.encode(&mut encoder, binding);
        encoder.copy_buffer_to_buffer(&self.output, 0, &self.readback, 0, out_bytes);
        self.ctx.queue.submit(Some(encoder.finish()));
        self.map(&self.readback, wgpu::MapMode::Read, out_bytes)?;
        {
            let view = self
                .readback
                .slice(..out_bytes)
                .get_mapped_range()
                .map_err(|e| self.err(e))?;
            let z: &[[f32; 2]] = bytemuck::cast_slice(&view[..]);
            let rows = z.chunks_exact(bins).zip(out.chunks_exact_mut(bins));
            match &self.window_dft {
                None => {
                    for (spectrum, row) in rows {
                        for (o, &[re, im]) in row.iter_mut().zip(spectrum) {
                            *o = re * re + im * im;
                        }
                    }
                }
                Some(w) => {
                    for ((spectrum, row), &m) in rows.zip(&self.means) {
                        for ((o, &[re, im]), wk) in row.iter_mut().zip(spectrum).zip(w) {
                            let re = f64::from(re) - m * wk.re;
                            let im = f64::from(im) - m * wk.im;
                            *o = (re * re + im * im) as f32;
                        }
                    }
                }
            }
        }
        self.readback.unmap();
        Ok(())
    }

    /// The means of the `count` frames of `staged` (frame `j` at `j
    /// stride`) into `self.means`, from running sums in f64.
    fn frame_means(&mut self, staged: &[f32], count: usize) {
        let (n, stride) = (self.n, self.stride);
        self.prefix.clear();
        self.prefix.reserve(staged.len() + 1);
        let mut sum = 0.0f64;
        self.prefix.push(0.0);
        for &v in staged {
            sum += f64::from(v);
            self.prefix.push(sum);
        }
        let prefix = &self.prefix;
        self.means.clear();
        self.means
            .extend((0..count).map(|j| (prefix[j * stride + n] - prefix[j * stride]) / n as f64));
    }

    /// Maps the first `bytes` of `buffer` and waits for it.
    fn map(&self, buffer: &wgpu::Buffer, mode: wgpu::MapMode, bytes: u64) -> Result<()> {
        self.ctx.map_blocking(buffer, bytes, mode)
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::gpu(format!("{}: {e}", self.ctx.info.name))
    }
}
