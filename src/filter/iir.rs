//! IIR filters as second-order sections (SOS): scipy's `sosfilt`, streamed.
//!
//! Why this module exists: seismologists and neuroscientists filter with
//! Butterworth (and Chebyshev, elliptic, Bessel) IIR filters, designed by
//! `scipy.signal.iirfilter(..., output='sos')` or ObsPy's
//! `Trace.filter('bandpass', corners=4)`, and their event times carry that
//! filter's phase. A FIR of the same band gives the same quakes at other
//! samples. So sigstream runs the same sections, the same way:
//!
//! - [`design`] designs them exactly as scipy does (coefficients equal to
//!   1e-10);
//! - [`Sos`] holds a cascade (designed, or read from an `(n, 6)` `.npy`,
//!   `--sos FILE`), checked as scipy's `_validate_sos` checks it;
//! - [`SosBank`] runs it over many channels as `scipy.signal.sosfilt` does:
//!   direct form II transposed, in `f64`, each section's two state values
//!   carried from one chunk to the next, so the output does not depend on
//!   the chunk size, bit for bit;
//! - [`Sos::zi`] and [`Sos::padlen`] are `sosfilt_zi` and `sosfiltfilt`'s
//!   default pad length, for the zero-phase passes
//!   ([`crate::pipeline::zerophase`]).
//!
//! **Restarts, for shards.** A shard of a file ([`crate::shard`]) cannot
//! know the state the filter had at its start, and a state started anywhere
//! else converges to it only up to rounding, which now and then flips the
//! last bit of an `f32` output. So the streaming filter forgets its past on
//! a fixed grid ([`Restarts`]): `warm` samples before each multiple of
//! `grid` (absolute stream positions), a second state starts from zero on
//! the same samples, and at the grid point it replaces the running one.
//! Every output from a grid point on is then a function of the `warm`
//! samples before that point and those after it, whoever computes it, so a
//! shard that starts reading `warm` samples before a grid point computes
//! the very same bits from there on. `warm` is the length after which the
//! cascade's impulse response stays below [`SETTLED`] of its peak
//! ([`Sos::settling`]), so the state that is dropped differs from the one
//! kept by far less than one `f64` rounding of the signal: the output is
//! `sosfilt`'s as before (the tests hold it to scipy's within 1e-5 of the
//! signal's scale, and it is much closer). The second state runs on
//! `warm / grid` of the samples (at most 1/8): that is the cost.
//!
//! An IIR is serial in time: sample `n` needs the state left by `n − 1`.
//! What can run side by side is channels: [`SosBank`] filters
//! [`LANES`] channels at once, the same arithmetic in each lane (so a
//! channel's result does not depend on its neighbours or on the thread
//! count), which the compiler turns into SIMD; the dependency chain of one
//! section (a multiply and two adds per sample) times the sections is what
//! bounds one channel.

pub mod design;

use std::path::Path;

use crate::error::{Error, Result};
use crate::pool::Block;

/// Most sections a cascade may have: an order-20 band-pass (the most
/// [`design`] makes) has 20; a user's file may have more, up to this.
pub const MAX_SECTIONS: usize = 256;

/// Largest `--sos` file read (far past [`MAX_SECTIONS`] rows of `f8`).
const MAX_SOS_FILE_BYTES: u64 = 1 << 20;

/// Channels filtered together, lane by lane (16 `f64` lanes: four AVX
/// registers). Each lane's recursion waits out a multiply and two adds per
/// sample and section; four registers of them keep the CPU's arithmetic
/// busy where two left it waiting (17 % faster on 64 channels, `cargo
/// bench --bench throughput -- iir`; AVX-512's two registers were no
/// faster on the Xeon it was measured on, so there is no AVX-512 variant).
pub const LANES: usize = 16;

/// A cascade of second-order sections, each `[b0, b1, b2, a0, a1, a2]`
/// with `a0 = 1`, as scipy's `sos` arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct Sos {
    sections: Vec<[f64; 6]>,
}

impl Sos {
    /// Checks and wraps `sections`, as `scipy.signal.sosfilt` does: at least
    /// one, at most [`MAX_SECTIONS`], every coefficient finite, and
    /// `a0 = 1` in each (scipy refuses other `a0`: divide the section by it).
    ///
    /// # Errors
    /// [`Error::Usage`] saying which section is wrong and why.
    pub fn new(sections: Vec<[f64; 6]>) -> Result<Sos> {
        if sections.is_empty() {
            return Err(Error::usage("an SOS filter needs at least one section"));
        }
        if sections.len() > MAX_SECTIONS {
            return Err(Error::usage(format!(
                "an SOS filter of {} sections: at most {MAX_SECTIONS}",
                sections.len()
            )));
        }
        for (i, s) in sections.iter().enumerate() {
            if let Some(j) = s.iter().position(|v| !v.is_finite()) {
                return Err(Error::usage(format!(
                    "SOS section {i}, coefficient {j} is {}: every coefficient must be finite",
                    s[j]
                )));
            }
            if s[3] != 1.0 {
                return Err(Error::usage(format!(
                    "SOS section {i} has a0 = {}: a0 must be 1 (as scipy.signal.sosfilt requires; divide the section by a0)",
                    s[3]
                )));
            }
        }
        Ok(Sos { sections })
    }

    /// Reads an `.npy` of shape `(n, 6)`, `f8` or `f4`, as scipy writes
    /// `np.save(path, sos)`.
    ///
    /// # Errors
    /// [`Error::Open`] when it cannot be read; [`Error::Format`] for any
    /// other shape or dtype, or coefficients [`Sos::new`] refuses.
    pub fn load(path: &Path) -> Result<Sos> {
        use std::io::Read;
        let file = std::fs::File::open(path).map_err(|e| Error::open(path, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_SOS_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::open(path, e))?;
        if bytes.len() as u64 > MAX_SOS_FILE_BYTES {
            return Err(Error::format(
                path,
                format!(
                    "an SOS file is at most {} KiB ({MAX_SOS_FILE_BYTES} bytes); this one is larger",
                    MAX_SOS_FILE_BYTES >> 10
                ),
            ));
        }
        let bad = |why: String| Error::format(path, format!("invalid SOS npy: {why}"));
        if !bytes.starts_with(b"\x93NUMPY") {
            return Err(Error::format(
                path,
                "not an .npy file: --sos takes an (n, 6) array saved by numpy.save",
            ));
        }
        match crate::source::npy_header_end(&bytes) {
            Ok(Some(end)) if end <= bytes.len() as u64 => {}
            Ok(_) => return Err(bad("the header is cut short".into())),
            Err(why) => return Err(bad(why.to_string())),
        }
        let header_end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len());
        crate::source::check_npy_header_nesting(&bytes[..header_end])
            .map_err(|why| bad(why.to_string()))?;
        let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(e.to_string()))?;
        let shape = npy.shape().to_vec();
        if shape.len() != 2 || shape[1] != 6 {
            return Err(Error::format(
                path,
                format!("an SOS array has shape (n, 6); this one has {shape:?}"),
            ));
        }
        if npy.order() == npyz::Order::Fortran {
            return Err(Error::format(
                path,
                "a Fortran-ordered array: save it with numpy.save(path, np.ascontiguousarray(sos))",
            ));
        }
        let values: Vec<f64> = match npy.dtype() {
            npyz::DType::Plain(ts) if ts.type_char() == npyz::TypeChar::Float => {
                match ts.size_field() {
                    8 => npy.into_vec::<f64>().map_err(|e| bad(e.to_string()))?,
                    4 => npy
                        .into_vec::<f32>()
                        .map_err(|e| bad(e.to_string()))?
                        .into_iter()
                        .map(f64::from)
                        .collect(),
                    n => return Err(bad(format!("float of {n} bytes (use f8 or f4)"))),
                }
            }
            other => {
                return Err(bad(format!(
                    "dtype {} (use float64 or float32)",
                    other.descr()
                )));
            }
        };
        let sections = values
            .chunks_exact(6)
            .map(|r| [r[0], r[1], r[2], r[3], r[4], r[5]])
            .collect();
        Sos::new(sections).map_err(|e| Error::format(path, e.to_string()))
    }

    /// The sections.
    pub fn sections(&self) -> &[[f64; 6]] {
        &self.sections
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    /// Never true: a cascade has at least one section.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }

    /// `scipy.signal.sosfiltfilt`'s default pad length: `3 · ntaps`, with
    /// `ntaps = 2·n + 1 − min(#(b2 = 0), #(a2 = 0))`.
    pub fn padlen(&self) -> usize {
        let zeros = |j: usize| self.sections.iter().filter(|s| s[j] == 0.0).count();
        let ntaps = 2 * self.sections.len() + 1 - zeros(2).min(zeros(5));
        3 * ntaps
    }

    /// `scipy.signal.sosfilt_zi`: each section's state for a unit step's
    /// steady state (scaled by the gain at 0 Hz of the sections before it).
    /// Each section's two values solve `lfilter_zi`'s 2×2 system
    /// `(I − Aᵀ) zi = b[1:] − a[1:]·b0` in closed form.
    pub fn zi(&self) -> Vec<[f64; 2]> {
        let mut scale = 1.0;
        self.sections
            .iter()
            .map(|&[b0, b1, b2, _, a1, a2]| {
                let (r0, r1) = (b1 - a1 * b0, b2 - a2 * b0);
                let z0 = (r0 + r1) / (1.0 + a1 + a2);
                let z1 = r1 - a2 * z0;
                let zi = [scale * z0, scale * z1];
                scale *= (b0 + b1 + b2) / (1.0 + a1 + a2);
                zi
            })
            .collect()
    }

    /// Samples after which the impulse response of the cascade stays below
    /// [`SETTLED`] of its peak: run in `f64` until every section's output
    /// and state have stayed below it for as long as the slowest pole takes
    /// to shrink by `e` (so that a zero crossing does not end it early).
    ///
    /// # Errors
    /// [`Error::Usage`] for a pole on or outside the unit circle (the state
    /// never decays), or a response that rings past [`MAX_SETTLING`].
    pub fn settling(&self) -> Result<u64> {
        let mut radius: f64 = 0.0;
        for s in &self.sections {
            let (a1, a2) = (s[4], s[5]);
            let disc = a1 * a1 - 4.0 * a2;
            let r = if disc < 0.0 {
                a2.abs().sqrt()
            } else {
                let d = disc.sqrt();
                ((-a1 + d) / 2.0).abs().max(((-a1 - d) / 2.0).abs())
            };
            radius = radius.max(r);
        }
        if radius >= 1.0 || radius.is_nan() {
            return Err(Error::usage(format!(
                "this IIR filter has a pole of radius {radius:.6}: its state never decays"
            )));
        }
        let patience = (-1.0 / radius.max(f64::MIN_POSITIVE).ln()).ceil().max(1.0) as u64;
        let mut state = vec![[0.0f64; 2]; self.sections.len()];
        let mut peak: f64 = 0.0;
        let mut quiet = 0u64;
        for n in 0..MAX_SETTLING {
            // Direct form II transposed, as sosfilt.
            let mut x = if n == 0 { 1.0 } else { 0.0 };
            let mut largest: f64 = 0.0;
            for (s, z) in self.sections.iter().zip(state.iter_mut()) {
                let y = s[0] * x + z[0];
                z[0] = s[1] * x - s[4] * y + z[1];
                z[1] = s[2] * x - s[5] * y;
                largest = largest.max(y.abs()).max(z[0].abs()).max(z[1].abs());
                x = y;
            }
            peak = peak.max(largest);
            if largest <= SETTLED * peak {
                quiet += 1;
                if quiet >= patience {
                    return Ok(n + 1);
                }
            } else {
                quiet = 0;
            }
        }
        Err(Error::usage(format!(
            "this IIR filter's impulse response rings for more than {MAX_SETTLING} samples"
        )))
    }

    /// The restart grid of the streaming filter ([`Restarts`]), or `None`
    /// for a cascade that does not settle ([`Sos::settling`]), which then
    /// runs without restarts (and cannot be cut into shards).
    pub fn restarts(&self) -> Option<Restarts> {
        let warm = self.settling().ok()?;
        let grid = (warm.saturating_mul(RESTART_RATIO))
            .max(MIN_RESTART_GRID)
            .checked_next_power_of_two()?;
        Some(Restarts { warm, grid })
    }

    /// Bytes of one channel group's state in a [`SosBank`].
    pub fn group_state_bytes(&self) -> u64 {
        (self.sections.len() * 2 * LANES * std::mem::size_of::<f64>()) as u64
    }
}

/// The impulse-response level, relative to its peak, below which a
/// cascade counts as settled ([`Sos::settling`]): 10^−20, four orders below
/// one `f64` rounding (2^−53 ≈ 1.1·10^−16).
pub const SETTLED: f64 = 1e-20;

/// The longest settling accepted, in samples.
pub const MAX_SETTLING: u64 = 1 << 24;

/// The restart grid is at least this many times the warm-up: the second
/// state runs on at most 1/8 of the samples.
const RESTART_RATIO: u64 = 8;

/// The shortest restart grid (samples).
const MIN_RESTART_GRID: u64 = 1 << 16;

/// Where the streaming filter forgets its past (see the module docs): a
/// fresh state starts `warm` samples before each multiple of `grid` and
/// takes over there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restarts {
    /// Samples the fresh state runs before it takes over.
    pub warm: u64,
    /// Stream positions of the take-overs: the multiples of this (a power
    /// of two, at least `8 · warm`).
    pub grid: u64,
}

/// The state of [`LANES`] channels: per section, the two delay values of
/// each lane.
type GroupState = Vec<[[f64; LANES]; 2]>;

/// One cascade over many channels, each with its own state carried from
/// call to call: `scipy.signal.sosfilt` with `zi` in and `zf` out.
#[derive(Debug, Clone)]
pub struct SosBank {
    sos: Sos,
    channels: usize,
    groups: Vec<GroupState>,
    /// With restarts: the grid, the fresh states, and the stream position
    /// of the next sample.
    restarts: Option<(Restarts, Vec<GroupState>, u64)>,
}

impl SosBank {
    /// A bank of `channels` channels, all at rest (zero state).
    pub fn new(sos: Sos, channels: usize) -> SosBank {
        let n = sos.len();
        let groups = (0..channels.div_ceil(LANES))
            .map(|_| vec![[[0.0; LANES]; 2]; n])
            .collect();
        SosBank {
            sos,
            channels,
            groups,
            restarts: None,
        }
    }

    /// The same bank, restarting on `restarts`' grid
    /// ([`SosBank::process_block`] only), its first sample at stream
    /// position `origin`.
    #[must_use]
    pub fn with_restarts(mut self, restarts: Restarts, origin: u64) -> Self {
        let fresh = self.groups.clone();
        self.restarts = Some((restarts, fresh, origin));
        self
    }

    /// The cascade.
    pub fn sos(&self) -> &Sos {
        &self.sos
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Bytes of state for `channels` channels of `sos` (twice that with
    /// restarts: the fresh states).
    pub fn state_bytes(sos: &Sos, channels: usize) -> u64 {
        sos.group_state_bytes()
            .saturating_mul(channels.div_ceil(LANES) as u64)
            .saturating_mul(2)
    }

    /// Sets channel `c`'s state to `zi · x0` (as `sosfiltfilt` starts each
    /// pass); `zi` from [`Sos::zi`].
    pub fn set_state(&mut self, c: usize, zi: &[[f64; 2]], x0: f64) {
        let (g, l) = (c / LANES, c % LANES);
        for (state, z) in self.groups[g].iter_mut().zip(zi) {
            state[0][l] = z[0] * x0;
            state[1][l] = z[1] * x0;
        }
    }

    /// Filters `inputs[c]` into `outputs[c]` for every channel (as many of
    /// each as channels, all as long as the first input), carrying the
    /// state, and restarting on the bank's grid if it has one (as
    /// [`SosBank::process_block`]). With `pool`, groups of [`LANES`]
    /// channels run in parallel; the result is the same either way.
    ///
    /// # Panics
    /// If the counts or lengths disagree (a caller's bug).
    pub fn process(
        &mut self,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
        pool: Option<&rayon::ThreadPool>,
    ) {
        assert_eq!(inputs.len(), self.channels, "one input per channel");
        assert_eq!(outputs.len(), self.channels, "one output per channel");
        let n = inputs.first().map_or(0, |x| x.len());
        self.in_pieces(n, |bank, frames, fresh| {
            if fresh {
                bank.run_fresh(&|c| inputs[c], frames.clone(), pool);
            }
            bank.run_slices(inputs, outputs, frames, pool);
        });
    }

    /// Moves the restarts' stream position to `pos` (that of the next
    /// sample), for a stream that goes on from elsewhere (a seek), the
    /// fresh states at rest; nothing without restarts.
    pub fn set_position(&mut self, pos: u64) {
        if let Some((_, fresh, at)) = self.restarts.as_mut() {
            at_rest(fresh);
            *at = pos;
        }
    }

    /// Runs `run` over frames `0..n` of a call in the pieces the restarts
    /// cut them into, each with whether the fresh states run over it too,
    /// and makes the take-overs between the pieces; without restarts, one
    /// piece.
    fn in_pieces(
        &mut self,
        n: usize,
        mut run: impl FnMut(&mut Self, std::ops::Range<usize>, bool),
    ) {
        let Some((r, _, pos)) = &self.restarts else {
            run(self, 0..n, false);
            return;
        };
        let (r, pos) = (*r, *pos);
        let mut at = 0;
        while at < n {
            let abs = pos + at as u64;
            // The next take-over after `abs`, and where its fresh state
            // starts.
            let next = (abs / r.grid + 1) * r.grid;
            let fresh_from = next - r.warm;
            let active = abs >= fresh_from;
            let end = ((if active { next } else { fresh_from }) - pos).min(n as u64) as usize;
            if active && abs == fresh_from {
                at_rest(&mut self.restarts.as_mut().expect("restarts").1);
            }
            run(self, at..end, active);
            at = end;
            if pos + at as u64 == next {
                let fresh = &self.restarts.as_ref().expect("restarts").1;
                for (main, fresh) in self.groups.iter_mut().zip(fresh) {
                    main.copy_from_slice(fresh);
                }
            }
        }
        if let Some((_, _, pos)) = self.restarts.as_mut() {
            *pos += n as u64;
        }
    }

    /// Filters frames `frames` of `inputs` into the same frames of
    /// `outputs`, carrying the running state.
    fn run_slices(
        &mut self,
        inputs: &[&[f32]],
        outputs: &mut [&mut [f32]],
        frames: std::ops::Range<usize>,
        pool: Option<&rayon::ThreadPool>,
    ) {
        use rayon::prelude::*;
        let sections = self.sos.sections();
        #[expect(
            clippy::type_complexity,
            reason = "spelled out so that the closure is generic over the slices' lifetimes"
        )]
        let run = |(state, (x, y)): (&mut GroupState, (&[&[f32]], &mut [&mut [f32]]))| {
            let mut xs: [&[f32]; LANES] = [&[]; LANES];
            for (s, x) in xs.iter_mut().zip(x) {
                *s = &x[frames.clone()];
            }
            let mut ys: [&mut [f32]; LANES] = Default::default();
            for (s, y) in ys.iter_mut().zip(y.iter_mut()) {
                *s = &mut y[frames.clone()];
            }
            filter_group(sections, state, &xs[..x.len()], &mut ys[..x.len()]);
        };
        match pool {
            Some(pool) if self.groups.len() > 1 => pool.install(|| {
                self.groups
                    .par_iter_mut()
                    .zip(inputs.par_chunks(LANES).zip(outputs.par_chunks_mut(LANES)))
                    .for_each(run);
            }),
            _ => self
                .groups
                .iter_mut()
                .zip(inputs.chunks(LANES).zip(outputs.chunks_mut(LANES)))
                .for_each(run),
        }
    }
}

impl SosBank {
    /// Filters every channel of `input` into the same channel of `output`
    /// (which takes `input.frames()` frames and its start), carrying the
    /// state; as [`SosBank::process`], without gathering slices (nothing
    /// allocated).
    ///
    /// # Panics
    /// If the blocks' channels are not the bank's, or `output` is smaller
    /// than `input` (a caller's bug).
    pub fn process_block(
        &mut self,
        input: &Block,
        output: &mut Block,
        pool: Option<&rayon::ThreadPool>,
    ) {
        let (n, channels) = (input.frames(), self.channels);
        assert_eq!(input.channels(), channels, "input channels");
        assert_eq!(output.channels(), channels, "output channels");
        assert!(output.capacity() >= n, "output holds the input");
        output.start = input.start;
        self.in_pieces(n, |bank, frames, fresh| {
            if fresh {
                bank.run_fresh(&|c| input.channel(c), frames.clone(), pool);
            }
            bank.run_main(input, output, frames, pool);
        });
        output.set_frames(n);
    }

    /// Sets every channel's state to rest (zero), as a fresh bank.
    pub fn reset(&mut self) {
        at_rest(&mut self.groups);
    }

    /// Filters frames `frames` of every channel back to front, in place:
    /// `planes` holds the channels one after another, `stride` frames
    /// apart; frame `i` is filtered after frame `i + 1`, carrying the
    /// state. The outputs of frames below `keep` replace their inputs; those
    /// of the frames from `keep` on (a warm-up) are dropped. A step at a
    /// time through buffers on the stack: nothing allocated. With `pool`,
    /// groups of [`LANES`] channels run in parallel; the result is the same
    /// either way.
    ///
    /// # Panics
    /// If `planes` does not hold the bank's channels at `stride`, or
    /// `frames` runs past `stride` (a caller's bug).
    pub fn process_reversed(
        &mut self,
        planes: &mut [f32],
        stride: usize,
        frames: std::ops::Range<usize>,
        keep: usize,
        pool: Option<&rayon::ThreadPool>,
    ) {
        assert!(
            planes.len() >= self.channels * stride,
            "one plane per channel"
        );
        assert!(frames.end <= stride, "frames within the planes");
        let channels = self.channels;
        let sections = self.sos.sections();
        let planes = &mut planes[..channels * stride];
        let run = |(g, (state, group)): (usize, (&mut GroupState, &mut [f32]))| {
            let lanes = (channels - g * LANES).min(LANES);
            let mut xs = [[0.0f32; STEP]; LANES];
            let mut ys = [[0.0f32; STEP]; LANES];
            let mut end = frames.end;
            while end > frames.start {
                let start = end.saturating_sub(STEP).max(frames.start);
                let len = end - start;
                for (l, x) in xs.iter_mut().enumerate().take(lanes) {
                    let plane = &group[l * stride + start..l * stride + end];
                    for (v, &p) in x[..len].iter_mut().zip(plane.iter().rev()) {
                        *v = p;
                    }
                }
                {
                    let ins: [&[f32]; LANES] = std::array::from_fn(|l| &xs[l][..len]);
                    let mut outs: [&mut [f32]; LANES] = Default::default();
                    for (o, y) in outs.iter_mut().zip(ys.iter_mut()) {
                        *o = &mut y[..len];
                    }
                    filter_group(sections, state, &ins[..lanes], &mut outs[..lanes]);
                }
                // Frames `start..end` came out as `ys[..len]`, last first.
                let upto = keep.clamp(start, end);
                for (l, y) in ys.iter().enumerate().take(lanes) {
                    let plane = &mut group[l * stride + start..l * stride + upto];
                    for (p, &v) in plane.iter_mut().zip(y[end - upto..len].iter().rev()) {
                        *p = v;
                    }
                }
                end = start;
            }
        };
        each_group(&mut self.groups, planes, stride, pool, run);
    }

    /// Filters frames `frames` of every channel of `input` into the same
    /// frames of `output`, carrying the running state.
    fn run_main(
        &mut self,
        input: &Block,
        output: &mut Block,
        frames: std::ops::Range<usize>,
        pool: Option<&rayon::ThreadPool>,
    ) {
        let channels = self.channels;
        let stride = output.capacity();
        let sections = self.sos.sections();
        let run = |(g, (state, out)): (usize, (&mut GroupState, &mut [f32]))| {
            let first = g * LANES;
            let lanes = (channels - first).min(LANES);
            let mut xs: [&[f32]; LANES] = [&[]; LANES];
            for (l, x) in xs.iter_mut().enumerate().take(lanes) {
                *x = &input.channel(first + l)[frames.clone()];
            }
            let mut ys: [&mut [f32]; LANES] = Default::default();
            for (y, plane) in ys.iter_mut().zip(out.chunks_mut(stride)) {
                *y = &mut plane[frames.clone()];
            }
            filter_group(sections, state, &xs[..lanes], &mut ys[..lanes]);
        };
        let planes = output.planes_mut();
        each_group(&mut self.groups, planes, stride, pool, run);
    }

    /// Runs the fresh states of the restarts over frames `frames` of
    /// `input`'s channels, their outputs dropped (a step at a time through a buffer on
    /// the stack: nothing allocated).
    fn run_fresh<'i>(
        &mut self,
        input: &(dyn Fn(usize) -> &'i [f32] + Sync),
        frames: std::ops::Range<usize>,
        pool: Option<&rayon::ThreadPool>,
    ) {
        use rayon::prelude::*;
        let channels = self.channels;
        let sections = self.sos.sections();
        let Some((_, fresh, _)) = self.restarts.as_mut() else {
            return;
        };
        let run = |(g, state): (usize, &mut GroupState)| {
            let first = g * LANES;
            let lanes = (channels - first).min(LANES);
            let mut scratch = [[0.0f32; STEP]; LANES];
            let mut at = frames.start;
            while at < frames.end {
                let end = (at + STEP).min(frames.end);
                let mut xs: [&[f32]; LANES] = [&[]; LANES];
                for (l, x) in xs.iter_mut().enumerate().take(lanes) {
                    *x = &input(first + l)[at..end];
                }
                let mut ys: [&mut [f32]; LANES] = Default::default();
                for (y, buf) in ys.iter_mut().zip(scratch.iter_mut()) {
                    *y = &mut buf[..end - at];
                }
                filter_group(sections, state, &xs[..lanes], &mut ys[..lanes]);
                at = end;
            }
        };
        match pool {
            Some(pool) if fresh.len() > 1 => {
                pool.install(|| fresh.par_iter_mut().enumerate().for_each(run))
            }
            _ => fresh.iter_mut().enumerate().for_each(run),
        }
    }
}

/// Sets every state of `groups` to rest (zero).
fn at_rest(groups: &mut [GroupState]) {
    for g in groups {
        g.iter_mut().for_each(|z| *z = [[0.0; LANES]; 2]);
    }
}

/// Runs `run` on each group of [`LANES`] channels with its state and its
/// planes (`stride` frames each) of `planes`, in parallel on `pool`'s
/// threads when given.
fn each_group(
    groups: &mut [GroupState],
    planes: &mut [f32],
    stride: usize,
    pool: Option<&rayon::ThreadPool>,
    run: impl Fn((usize, (&mut GroupState, &mut [f32]))) + Send + Sync,
) {
    use rayon::prelude::*;
    match pool {
        Some(pool) if groups.len() > 1 => pool.install(|| {
            groups
                .par_iter_mut()
                .zip(planes.par_chunks_mut(LANES * stride))
                .enumerate()
                .for_each(run)
        }),
        _ => groups
            .iter_mut()
            .zip(planes.chunks_mut(LANES * stride))
            .enumerate()
            .for_each(run),
    }
}

/// Samples of the lanes gathered per step of [`filter_group`] (32 KiB of
/// `f64` at 16 lanes: it stays in a 48 KiB L1 data cache while every
/// section runs over it).
const STEP: usize = 256;

/// `sosfilt`'s arithmetic for up to [`LANES`] channels at once, the lane
/// count rounded up to 1, 2, 4 or 8 so that a lone channel does not pay
/// for eight.
fn filter_group(sections: &[[f64; 6]], state: &mut GroupState, x: &[&[f32]], y: &mut [&mut [f32]]) {
    #[cfg(target_arch = "x86_64")]
    if x.len() > 2 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above), which is all
        // `filter_avx2` requires of it.
        unsafe { filter_avx2(sections, state, x, y) };
        return;
    }
    match x.len() {
        0 => {}
        1 => filter_lanes::<1>(sections, state, x, y),
        2 => filter_lanes::<2>(sections, state, x, y),
        3 | 4 => filter_lanes::<4>(sections, state, x, y),
        5..=8 => filter_lanes::<8>(sections, state, x, y),
        _ => filter_lanes::<16>(sections, state, x, y),
    }
}

/// [`filter_lanes`] compiled for AVX2: four `f64` lanes per instruction
/// instead of SSE2's two. The same operations in the same order (no fused
/// multiply-add: AVX2 alone does not enable FMA), so the same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn filter_avx2(sections: &[[f64; 6]], state: &mut GroupState, x: &[&[f32]], y: &mut [&mut [f32]]) {
    match x.len() {
        0..=4 => filter_lanes::<4>(sections, state, x, y),
        5..=8 => filter_lanes::<8>(sections, state, x, y),
        _ => filter_lanes::<16>(sections, state, x, y),
    }
}

/// `scipy/signal/_sosfilt.pyx`'s loop, lane by lane in `N` lanes: each
/// output `x_new = b0·x + z0`, then `z0 = b1·x − a1·x_new + z1` and
/// `z1 = b2·x − a2·x_new`, in that order. Section `s` at sample `i` needs
/// only section `s − 1` at `i` and its own state, so the loops may run in
/// another order with every value the same: with four lanes or more,
/// section by section over a step of [`STEP`] samples (the state stays in
/// registers); with one or two, as a wavefront across the sections (their
/// recursions overlap instead of waiting on each other).
#[inline(always)]
fn filter_lanes<const N: usize>(
    sections: &[[f64; 6]],
    state: &mut GroupState,
    x: &[&[f32]],
    y: &mut [&mut [f32]],
) {
    let lanes = x.len();
    debug_assert!(lanes <= N && N <= LANES);
    let n = x.first().map_or(0, |c| c.len());
    assert!(x.iter().all(|c| c.len() == n), "inputs of one length");
    assert!(y.iter().all(|c| c.len() >= n), "outputs hold the inputs");
    let mut buf = [[0.0f64; N]; STEP];
    let mut start = 0;
    while start < n {
        let len = STEP.min(n - start);
        // Gather the lanes sample-major; unused lanes stay 0 (and so does
        // their state: 0 in, 0 out).
        for (l, xl) in x.iter().enumerate() {
            for (b, &v) in buf[..len].iter_mut().zip(&xl[start..start + len]) {
                b[l] = f64::from(v);
            }
        }
        if N >= 4 {
            // Four lanes or more: one section at a time over the step, its
            // state in registers (the lanes already fill the CPU).
            for (s, z) in sections.iter().zip(state.iter_mut()) {
                let (b0, b1, b2, a1, a2) = (s[0], s[1], s[2], s[4], s[5]);
                let mut z0 = [0.0f64; N];
                let mut z1 = [0.0f64; N];
                z0.copy_from_slice(&z[0][..N]);
                z1.copy_from_slice(&z[1][..N]);
                for cur in buf[..len].iter_mut() {
                    for l in 0..N {
                        let xn = cur[l];
                        let out = b0 * xn + z0[l];
                        z0[l] = b1 * xn - a1 * out + z1[l];
                        z1[l] = b2 * xn - a2 * out;
                        cur[l] = out;
                    }
                }
                z[0][..N].copy_from_slice(&z0);
                z[1][..N].copy_from_slice(&z1);
            }
        } else {
            // A wavefront across the sections: at step `i`, section `s` takes
            // sample `i − s`, whose input section `s − 1` produced at step
            // `i − 1`. The sections' recursions are then independent within a
            // step, so they overlap in the CPU instead of each waiting out its
            // own latency in turn; each sample still meets each section once,
            // in order, with the same operations.
            let ns = sections.len();
            for i in 0..len + ns - 1 {
                // Sections with a sample at this step: `0 <= i − s < len`.
                for s in (i + 1).saturating_sub(len)..ns.min(i + 1) {
                    let c = &sections[s];
                    let (b0, b1, b2, a1, a2) = (c[0], c[1], c[2], c[4], c[5]);
                    let z = &mut state[s];
                    let cur = &mut buf[i - s];
                    for l in 0..N {
                        let xn = cur[l];
                        let out = b0 * xn + z[0][l];
                        z[0][l] = b1 * xn - a1 * out + z[1][l];
                        z[1][l] = b2 * xn - a2 * out;
                        cur[l] = out;
                    }
                }
            }
        }
        for (l, yl) in y.iter_mut().enumerate().take(lanes) {
            for (o, b) in yl[start..start + len].iter_mut().zip(&buf[..len]) {
                *o = b[l] as f32;
            }
        }
        start += len;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `sosfilt` written out plainly, one channel, for comparison.
    fn sosfilt_ref(sections: &[[f64; 6]], x: &[f32]) -> Vec<f32> {
        let mut z = vec![[0.0f64; 2]; sections.len()];
        x.iter()
            .map(|&v| {
                let mut cur = f64::from(v);
                for (s, z) in sections.iter().zip(z.iter_mut()) {
                    let out = s[0] * cur + z[0];
                    z[0] = s[1] * cur - s[4] * out + z[1];
                    z[1] = s[2] * cur - s[5] * out;
                    cur = out;
                }
                cur as f32
            })
            .collect()
    }

    /// `scipy.signal.butter(2, [0.1, 0.3], 'bandpass', output='sos')`.
    pub(crate) fn butter2() -> Sos {
        // scipy.signal.butter(2, [0.1, 0.3], 'bandpass', output='sos')
        Sos::new(vec![
            [
                0.06745527388907191,
                0.13491054777814382,
                0.06745527388907191,
                1.0,
                -1.0246612719312358,
                0.5441183540527813,
            ],
            [1.0, -2.0, 1.0, 1.0, -1.6489176331890314, 0.7586614107417984],
        ])
        .unwrap()
    }

    #[test]
    fn bank_equals_plain_sosfilt_for_any_split_and_lane() {
        let sos = butter2();
        let channels = LANES + 3; // two groups, the second partly empty
        let n = 300;
        let x: Vec<Vec<f32>> = (0..channels)
            .map(|c| {
                (0..n)
                    .map(|i| ((i * (c + 3)) as f32 * 0.37).sin() + (c as f32))
                    .collect()
            })
            .collect();
        let want: Vec<Vec<f32>> = x.iter().map(|c| sosfilt_ref(sos.sections(), c)).collect();
        for split in [1, 7, 64, 65, 299] {
            let mut bank = SosBank::new(sos.clone(), channels);
            let mut got = vec![vec![0.0f32; n]; channels];
            let mut start = 0;
            while start < n {
                let end = (start + split).min(n);
                let ins: Vec<&[f32]> = x.iter().map(|c| &c[start..end]).collect();
                let mut outs: Vec<&mut [f32]> =
                    got.iter_mut().map(|c| &mut c[start..end]).collect();
                bank.process(&ins, &mut outs, None);
                start = end;
            }
            assert_eq!(got, want, "split {split}");
        }
    }

    #[test]
    fn zi_is_the_step_steady_state() {
        // Started at zi, a unit step stays at the filter's DC gain.
        let sos = Sos::new(vec![
            [0.2, 0.3, 0.1, 1.0, -0.5, 0.2],
            [1.0, 0.5, 0.0, 1.0, 0.3, 0.0],
        ])
        .unwrap();
        let zi = sos.zi();
        let mut bank = SosBank::new(sos.clone(), 1);
        bank.set_state(0, &zi, 1.0);
        let x = vec![1.0f32; 50];
        let mut y = vec![0.0f32; 50];
        bank.process(&[&x], &mut [&mut y], None);
        let dc: f64 = sos
            .sections()
            .iter()
            .map(|s| (s[0] + s[1] + s[2]) / (1.0 + s[4] + s[5]))
            .product();
        // f32 output of an f64 recursion at rest: within f32 rounding.
        const F32_ROUNDING: f64 = 1e-6;
        for v in y {
            assert!(
                (f64::from(v) - dc).abs() < F32_ROUNDING * dc.abs(),
                "{v} vs {dc}"
            );
        }
    }

    #[test]
    fn padlen_is_scipys() {
        // Two full sections: ntaps 5, padlen 15; a first-order section
        // (b2 = a2 = 0) drops one tap: 3 · 4 = 12.
        assert_eq!(butter2().padlen(), 15);
        let odd = Sos::new(vec![
            [0.5, 0.5, 0.0, 1.0, -0.2, 0.0],
            [1.0, 0.1, 0.2, 1.0, 0.1, 0.3],
        ])
        .unwrap();
        assert_eq!(odd.padlen(), 12);
    }

    #[test]
    fn bad_sections_are_refused() {
        assert!(Sos::new(vec![]).is_err());
        assert!(Sos::new(vec![[1.0, 0.0, 0.0, 2.0, 0.0, 0.0]]).is_err());
        assert!(Sos::new(vec![[f64::NAN, 0.0, 0.0, 1.0, 0.0, 0.0]]).is_err());
        assert!(Sos::new(vec![[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]; MAX_SECTIONS + 1]).is_err());
    }

    /// Runs `bank` over `x` (one channel) in pieces of `piece` frames.
    fn run_blocks(bank: &mut SosBank, x: &[f32], piece: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(x.len());
        for part in x.chunks(piece) {
            let mut input = Block::new(1, piece);
            input.channel_capacity_mut(0)[..part.len()].copy_from_slice(part);
            input.set_frames(part.len());
            let mut output = Block::new(1, piece);
            bank.process_block(&input, &mut output, None);
            out.extend_from_slice(output.channel(0));
        }
        out
    }

    #[test]
    fn restarts_keep_sosfilt_and_make_every_start_agree() {
        let sos = butter2();
        let warm = sos.settling().unwrap();
        assert!(warm > 50 && warm < 2000, "settling {warm}");
        // A short grid, so that the test sees many take-overs.
        let r = Restarts { warm, grid: 1024 };
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let x: Vec<f32> = (0..20_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                (rng >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        let plain = sosfilt_ref(sos.sections(), &x);
        let whole = run_blocks(
            &mut SosBank::new(sos.clone(), 1).with_restarts(r, 0),
            &x,
            777,
        );
        // sosfilt's output to far below f32 rounding: the dropped state has
        // decayed to SETTLED (10^-20) of the response; allow one f32 ulp at
        // the signal's scale, where a 10^-20 change may still round across.
        let ulp = f32::EPSILON;
        for (i, (a, b)) in whole.iter().zip(&plain).enumerate() {
            assert!(
                (a - b).abs() <= ulp,
                "sample {i}: {a} against sosfilt's {b}"
            );
        }
        // Any chunking gives the same bits.
        for piece in [1, 100, 4096] {
            let again = run_blocks(
                &mut SosBank::new(sos.clone(), 1).with_restarts(r, 0),
                &x,
                piece,
            );
            assert_eq!(again, whole, "pieces of {piece}");
        }
        // A bank that starts a take-over's warm-up before, anywhere in the
        // stream, computes the very same bits from the take-over on.
        for take_over in [1024usize, 5120, 17408] {
            let from = take_over - warm as usize;
            let mut late = SosBank::new(sos.clone(), 1).with_restarts(r, from as u64);
            let got = run_blocks(&mut late, &x[from..], 333);
            assert_eq!(
                &got[take_over - from..],
                &whole[take_over..],
                "started at {from}"
            );
        }
    }

    #[test]
    fn an_unstable_cascade_does_not_settle() {
        let sos = Sos::new(vec![[1.0, 0.0, 0.0, 1.0, -2.0, 1.0]]).unwrap();
        assert!(sos.settling().is_err());
        assert!(sos.restarts().is_none());
    }
}
