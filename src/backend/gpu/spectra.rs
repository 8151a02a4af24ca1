//! Power spectra of real frames on the GPU, for the STFT and Welch
//! ([`crate::spectral`]): windowed frames go up two per complex signal,
//! one batched [`GpuFft`] transforms them, and `|X[k]|²` of both frames is
//! unpacked on the way back.
//!
//! Why two per complex FFT: the transform of `z = a + i b` holds both real
//! spectra, `A[k] = (Z[k] + conj Z[n−k]) / 2` and `B[k] = (Z[k] − conj
//! Z[n−k]) / 2i`, so half as many transforms (and half the upload) do the
//! same work. Windowing and detrending stay on the host (a multiply per
//! sample, negligible beside the transfer). The upload and readback buffers
//! are made once per plan and mapped per batch, so nothing is allocated per
//! chunk.

use std::sync::{Arc, Mutex};

use super::context::GpuContext;
use super::fft::{FftBinding, GpuFft};
use crate::error::{Error, Result};

/// Bytes per complex value (`vec2<f32>`).
const COMPLEX_BYTES: u64 = 8;

/// Complex values per batch the plan aims at (16 MiB of data).
const BATCH_VALUES: usize = 1 << 21;

/// A planned batch of real-frame power spectra of length `n`.
pub struct GpuPowerSpectra {
    ctx: Arc<GpuContext>,
    n: usize,
    pairs: usize,
    /// FFT plans by batch (powers of two up to `pairs`), made when first
    /// needed, so a short run does not pay for a full batch.
    plans: Vec<Option<(GpuFft, FftBinding)>>,
    data: wgpu::Buffer,
    upload: wgpu::Buffer,
    readback: wgpu::Buffer,
    /// Host copy of a batch's packed frames (the mapped view is write-only).
    packed: Vec<[f32; 2]>,
}

impl std::fmt::Debug for GpuPowerSpectra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuPowerSpectra")
            .field("n", &self.n)
            .field("pairs", &self.pairs)
            .finish_non_exhaustive()
    }
}

impl GpuPowerSpectra {
    /// Plans frames of `n` samples (a power of two >= 2).
    ///
    /// # Errors
    /// [`Error::Usage`] for another `n`; [`Error::Gpu`] when the FFT cannot
    /// be planned on this device.
    pub fn new(ctx: &Arc<GpuContext>, n: usize) -> Result<Self> {
        let pairs = (BATCH_VALUES / n).max(1).next_power_of_two();
        // Fail now, not mid-stream, if the device cannot hold a full batch.
        let full = GpuFft::new(ctx, n, pairs, false)?;
        let bytes = (n * pairs) as u64 * COMPLEX_BYTES;
        let data = ctx.storage("spectra data", bytes);
        let upload = ctx.buffer(
            "spectra upload",
            bytes,
            wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
        );
        let readback = ctx.buffer(
            "spectra readback",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );
        let mut plans: Vec<Option<(GpuFft, FftBinding)>> =
            (0..=pairs.ilog2()).map(|_| None).collect();
        let binding = full.bind(&data);
        plans[pairs.ilog2() as usize] = Some((full, binding));
        Ok(GpuPowerSpectra {
            ctx: ctx.clone(),
            n,
            pairs,
            plans,
            data,
            upload,
            readback,
            packed: Vec::new(),
        })
    }

    /// Most frames one [`GpuPowerSpectra::power`] call takes.
    pub fn frames_per_call(&self) -> usize {
        2 * self.pairs
    }

    /// `|X[k]|²`, `k = 0 ..= n/2`, of each frame of `frames` (a whole number
    /// of frames, at most [`GpuPowerSpectra::frames_per_call`]) into `out`
    /// (`bins` values per frame).
    ///
    /// # Errors
    /// [`Error::Gpu`] when mapping or the device fails.
    ///
    /// # Panics
    /// If `frames` holds more than a call takes or `out` is too short.
    pub fn power(&mut self, frames: &[f32], out: &mut [f32]) -> Result<()> {
        let n = self.n;
        let bins = n / 2 + 1;
        let count = frames.len() / n;
        assert!(count <= self.frames_per_call() && out.len() >= count * bins);
        let pairs_used = count.div_ceil(2);
        let batch = pairs_used.next_power_of_two();
        let bytes = (pairs_used * n) as u64 * COMPLEX_BYTES;
        if bytes == 0 {
            return Ok(());
        }
        self.map(&self.upload, wgpu::MapMode::Write, bytes)?;
        let mut packed = std::mem::take(&mut self.packed);
        packed.clear();
        packed.resize(pairs_used * n, [0.0; 2]);
        for (p, pair) in packed.chunks_exact_mut(n).enumerate() {
            let a = &frames[2 * p * n..][..n];
            match frames.get((2 * p + 1) * n..(2 * p + 2) * n) {
                Some(b) => {
                    for ((v, &x), &y) in pair.iter_mut().zip(a).zip(b) {
                        *v = [x, y];
                    }
                }
                None => {
                    for (v, &x) in pair.iter_mut().zip(a) {
                        *v = [x, 0.0];
                    }
                }
            }
        }
        let written = self
            .upload
            .slice(..bytes)
            .get_mapped_range_mut()
            .map(|mut view| view.copy_from_slice(bytemuck::cast_slice(&packed)))
            .map_err(|e| self.err(e));
        self.packed = packed;
        written?;
        self.upload.unmap();
        let slot = batch.ilog2() as usize;
        if self.plans[slot].is_none() {
            let fft = GpuFft::new(&self.ctx, n, batch, false)?;
            let binding = fft.bind(&self.data);
            self.plans[slot] = Some((fft, binding));
        }
        let (fft, binding) = self.plans[slot]
            .as_ref()
            .ok_or_else(|| Error::gpu("FFT plan missing"))?;
        let mut encoder = self.ctx.encoder("spectra");
        encoder.copy_buffer_to_buffer(&self.upload, 0, &self.data, 0, bytes);
        // Signals past `pairs_used` hold stale data: independent
        // transforms whose results are never read.
        fft.encode(&mut encoder, binding);
        encoder.copy_buffer_to_buffer(&self.data, 0, &self.readback, 0, bytes);
        self.ctx.queue.submit(Some(encoder.finish()));
        self.map(&self.readback, wgpu::MapMode::Read, bytes)?;
        {
            let view = self
                .readback
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|e| self.err(e))?;
            let z: &[[f32; 2]] = bytemuck::cast_slice(&view[..]);
            for (p, pair) in z.chunks_exact(n).enumerate() {
                let second = 2 * p + 1 < count;
                for k in 0..bins {
                    let [zr, zi] = pair[k];
                    let [cr, ci] = pair[(n - k) % n];
                    // conj Z[n-k] = (cr, -ci).
                    let (ar, ai) = ((zr + cr) * 0.5, (zi - ci) * 0.5);
                    out[2 * p * bins + k] = ar * ar + ai * ai;
                    if second {
                        // (Z - conj Z[n-k]) / 2i = ((zi + ci) - i (zr - cr)) / 2.
                        let (br, bi) = ((zi + ci) * 0.5, (cr - zr) * 0.5);
                        out[(2 * p + 1) * bins + k] = br * br + bi * bi;
                    }
                }
            }
        }
        self.readback.unmap();
        Ok(())
    }

    /// Maps the first `bytes` of `buffer` and waits for it.
    fn map(&self, buffer: &wgpu::Buffer, mode: wgpu::MapMode, bytes: u64) -> Result<()> {
        let status: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>> =
            Arc::default();
        let s = status.clone();
        buffer.slice(..bytes).map_async(mode, move |r| {
            if let Ok(mut s) = s.lock() {
                *s = Some(r);
            }
        });
        self.ctx.wait()?;
        match status.lock().ok().and_then(|mut s| s.take()) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(self.err(e)),
            None => Err(Error::gpu(format!(
                "{}: buffer mapping never completed",
                self.ctx.info.name
            ))),
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::gpu(format!("{}: {e}", self.ctx.info.name))
    }
}
