//! Options and headerless ("raw") data: the input is split (by
//! `arbitrary`) into option values and a data part. The option values go
//! through the library's own checks, as every front (CLI, Python) calls
//! them: `Dtype::from_name`, `SourceOptions::validate`, `check_threads`,
//! `FilterSpec::parse_band` / `validate`, the kernel's memory check
//! (`FilterSpec::num_taps`, `budget::check_kernel`) then `design`, `DetectorSpec::from_options`,
//! `StftConfig` / `WelchConfig::validate` and the spectral memory plan
//! (`budget::plan_blocks` with `spectral::state_bytes`). The data part is
//! written to a file (named with a raw-dtype extension, `.bin`, `.npy` or
//! `.wav`) and opened with the options through both readers; when it opens,
//! the whole job runs on it (`StreamProcessor::process_file` on the CPU, with
//! the filter and detector built above and the memory limit and chunk size
//! given), and the STFT and Welch estimators are fed every chunk.
//!
//! Sizes come in every magnitude (see `Num`): the library must refuse
//! absurd ones against its memory budget before allocating, so an
//! out-of-memory or a timeout here is a finding.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::coincidence::{Coincidence, DEFAULT_MAX_PENDING};
use sigstream::detect::dedup::DedupSpec;
use sigstream::detect::snippet::{SnippetChannels, SnippetSpec};
use sigstream::detect::{DetectorKind, DetectorOptions, DetectorSpec, Event, WindowLen};
use sigstream::filter::iir::Sos;
use sigstream::filter::iir::design::{Band, Family, iirfilter};
use sigstream::filter::mix::Mixer;
use sigstream::filter::reference::Reference;
use sigstream::filter::{ConvMode, FilterSpec, FirDesign, WindowKind};
use sigstream::pipeline::budget::{Limit, check_kernel, plan_blocks};
use sigstream::pipeline::{InputShape, Sinks, StreamConfig, StreamProcessor, check_threads};
use sigstream::pool::Block;
use sigstream::source::{self, ChunkSource, Dtype, Endian, SignalInfo, SourceOptions};
use sigstream::spectral::{
    Detrend, Scale, Scaling, Stft, StftConfig, Welch, WelchConfig, Window, state_bytes,
};
use sigstream_fuzz::{check_file_and_stream, print, scratch_path, write_scratch};

/// A size in every magnitude: small values (where the work happens), 16-,
/// 32- and 64-bit ones, and the edges (0, 1, powers of two and their
/// neighbours, `u64::MAX`).
#[derive(Debug, Clone, Copy)]
struct Num(u64);

impl<'a> Arbitrary<'a> for Num {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let tag = u8::arbitrary(u)?;
        Ok(Num(match tag % 8 {
            0..=2 => u64::from(u8::arbitrary(u)?),
            3 => u64::from(u16::arbitrary(u)?),
            4 => u64::from(u32::arbitrary(u)?),
            5 => u64::arbitrary(u)?,
            _ => {
                let shift = u32::from(u8::arbitrary(u)? % 64);
                let base = 1u64 << shift;
                match tag / 8 % 3 {
                    0 => base,
                    1 => base - 1,
                    _ => base.wrapping_add(1),
                }
            }
        }))
    }
}

impl Num {
    fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// A float in every form: small multiples of 1/4, any bit pattern (NaN,
/// infinities, subnormals), and the edges.
#[derive(Debug, Clone, Copy)]
struct Float(f64);

impl<'a> Arbitrary<'a> for Float {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        const EDGES: [f64; 10] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            1e-300,
        ];
        Ok(Float(match u8::arbitrary(u)? % 4 {
            0 | 1 => f64::from(i16::arbitrary(u)?) / 4.0,
            2 => f64::from_bits(u64::arbitrary(u)?),
            _ => EDGES[usize::from(u8::arbitrary(u)?) % EDGES.len()],
        }))
    }
}

/// A `--dtype` value: mostly a name the library knows (in any case), else
/// any string.
#[derive(Debug)]
struct Name(String);

impl<'a> Arbitrary<'a> for Name {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        const KNOWN: [&str; 18] = [
            "f32", "f64", "i8", "i16", "i32", "u8", "u16", "I16", "F64", "i24", "", "f16", "cf32",
            "ci16", "cu8", "CF64", "cfile", "cc8",
        ];
        let tag = u8::arbitrary(u)?;
        Ok(Name(if tag < 224 {
            KNOWN[usize::from(tag) % KNOWN.len()].to_string()
        } else {
            String::arbitrary(u)?
        }))
    }
}

#[derive(Debug, Arbitrary)]
enum FilterArg {
    Kernel(Vec<Float>),
    MovingAverage(Num),
    Lowpass(Float, Num),
    Highpass(Float, Num),
    /// `--bandpass LO:HI`, as text.
    Bandpass(String, Num),
    /// A band from two numbers, formatted as a user would type them.
    BandpassNumbers(Float, Float, Num),
}

#[derive(Debug, Arbitrary)]
enum WindowArg {
    Samples(Num),
    Seconds(Float),
}

impl WindowArg {
    fn len(&self) -> WindowLen {
        match *self {
            WindowArg::Samples(n) => WindowLen::Samples(n.usize()),
            WindowArg::Seconds(s) => WindowLen::Seconds(s.0),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct DetectorArg {
    kind: u8,
    on: Option<Float>,
    off: Option<Float>,
    sta: Option<WindowArg>,
    lta: Option<WindowArg>,
    max_len: Option<Num>,
}

#[derive(Debug, Arbitrary)]
struct SpectralArg {
    nfft: Num,
    hop: Option<Num>,
    noverlap: Option<Num>,
    window: u8,
    detrend: bool,
    scale: u8,
    density: bool,
}

#[derive(Debug, Arbitrary)]
struct Input {
    dtype: Name,
    big_endian: bool,
    offset: Num,
    channels: Num,
    sample_rate: Option<Float>,
    normalize: bool,
    /// The data file's extension.
    ext: u8,
    filter: Option<FilterArg>,
    conv_mode: u8,
    detector: Option<DetectorArg>,
    /// `--memory-limit` in MiB (a hard limit); `None`: the default budget.
    memory_limit_mib: Option<Num>,
    chunk_size: Option<Num>,
    threads: Num,
    spectral: Option<SpectralArg>,
    // Added last, so that the older regression inputs still give their
    // options as before.
    /// `--shift HZ` (complex input).
    shift: Option<Float>,
    /// `--decimate N`.
    decimate: Option<Num>,
    // Issue 11's options, last again.
    /// `--iir FAMILY --order N --ripple --attenuation` and a band.
    iir: Option<IirArg>,
    /// `--reference median|mean`.
    reference: Option<bool>,
    /// `--coincidence-sum S --coincidence-window N` (samples) over the
    /// events.
    coincidence: Option<(Float, Num)>,
    /// A designed filter's length and window: `--taps` left out (the taps
    /// chosen from the transition band), `--window`, `--transition`,
    /// `--attenuation`. After the older fields, so that older inputs keep their `--taps N`.
    fir: Option<FirArg>,
    /// `--snippets --snippet-samples PRE:POST [--snippet-channels all]`.
    snippets: Option<(Num, Num, bool)>,
    /// `--dedup-samples N --dedup-radius R`.
    dedup: Option<(Num, u8)>,
    /// `--range`: the file cut in two shards at this point (modulo its
    /// length), whose events together must be the whole run's.
    split: Option<u32>,
    /// `--zero-phase` with the IIR above (`--pad odd` when true), streamed
    /// ([`zero_phase`]); then a seek to this frame (modulo the length).
    zero_phase: Option<(bool, u32)>,
}

/// The windowed-sinc options besides `--taps`.
#[derive(Debug, Arbitrary)]
struct FirArg {
    /// Drop the given taps: the length comes from the transition band.
    no_taps: bool,
    /// 0: no `--window`, 1: hamming, else kaiser.
    window: u8,
    transition: Option<Float>,
    attenuation: Option<Float>,
}

impl FirArg {
    /// The design with `taps` given, as the CLI builds it from the options.
    fn design(arg: Option<&FirArg>, taps: &Num) -> FirDesign {
        let Some(arg) = arg else {
            return FirDesign::taps(taps.usize());
        };
        FirDesign {
            taps: (!arg.no_taps).then(|| taps.usize()),
            window: match arg.window % 3 {
                0 => None,
                1 => Some(WindowKind::Hamming),
                _ => Some(WindowKind::Kaiser),
            },
            transition: arg.transition.as_ref().map(|t| t.0),
            attenuation: arg.attenuation.as_ref().map(|a| a.0),
        }
    }
}

/// An IIR design as the CLI asks for one.
#[derive(Debug, Arbitrary)]
struct IirArg {
    family: u8,
    order: Num,
    ripple: Float,
    attenuation: Float,
    band: u8,
    low: Float,
    high: Float,
}

impl IirArg {
    /// The design, or `None` where the library refuses the options (which
    /// it must do without panicking).
    fn design(&self, fs: f64) -> Option<Sos> {
        let family = match self.family % 5 {
            0 => Family::Butter,
            1 => Family::Cheby1 { rp: self.ripple.0 },
            2 => Family::Cheby2 {
                rs: self.attenuation.0,
            },
            3 => Family::Ellip {
                rp: self.ripple.0,
                rs: self.attenuation.0,
            },
            _ => Family::Bessel,
        };
        let band = match self.band % 4 {
            0 => Band::Lowpass(self.low.0),
            1 => Band::Highpass(self.low.0),
            2 => Band::Bandpass(self.low.0, self.high.0),
            _ => Band::Bandstop(self.low.0, self.high.0),
        };
        let sections = iirfilter(family, self.order.usize(), band, fs).ok()?;
        let sos = Sos::new(sections).expect("a design the library accepts is valid SOS");
        assert!(sos.sections().iter().flatten().all(|v| v.is_finite()));
        Some(sos)
    }
}

/// Largest `--memory-limit` the target gives, in MiB: half of libFuzzer's
/// `-rss_limit_mb=2048`, so that a run the planner accepts and that still
/// exhausts memory is a finding, not the user's wish.
const MAX_MEMORY_LIMIT_MIB: u64 = 1024;

/// Data file extensions: raw dtypes, none (needs `--dtype`), and the two
/// header formats (whose magic the data then needs).
const EXTS: [&str; 9] = ["bin", "f32", "i16", "u8", "", "npy", "wav", "cf32", "cu8"];

fuzz_target!(|bytes: &[u8]| {
    // The options first, then the data: every byte the options leave.
    let mut u = Unstructured::new(bytes);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let data = u.take_rest();
    if print() {
        eprintln!("{input:#?}\ndata: {} bytes", data.len());
    }
    run(&input, data);
});

fn run(input: &Input, data: &[u8]) {
    // --dtype: a known name must round-trip (complex ones as `c` + the
    // component's name).
    let real = Dtype::from_name(&input.dtype.0).map(|d| (d, false));
    let sample_type = real.or_else(|| Dtype::from_complex_name(&input.dtype.0).map(|d| (d, true)));
    if let Some((d, complex)) = sample_type {
        assert_eq!(Dtype::from_name(d.name()), Some(d), "dtype name round trip");
        if complex {
            assert_eq!(Dtype::from_complex_name(&d.sample_name(true)), Some(d));
        }
        assert!(d.size() >= 1);
    }
    let dtype = sample_type.map(|(d, _)| d);
    let _ = check_threads(input.threads.usize());
    let opts = SourceOptions {
        dtype,
        endian: if input.big_endian {
            Endian::Big
        } else {
            Endian::Little
        },
        offset: input.offset.0,
        channels: input.channels.usize(),
        sample_rate: input.sample_rate.map(|f| f.0),
        normalize: input.normalize,
        complex: sample_type.is_some_and(|(_, c)| c),
        ..SourceOptions::default()
    };
    let _ = opts.validate();
    let limit = match input.memory_limit_mib {
        None => Limit {
            bytes: sigstream::pipeline::DEFAULT_MEMORY_LIMIT,
            strict: false,
        },
        Some(n) => Limit::strict((n.0 % MAX_MEMORY_LIMIT_MIB).max(1) << 20),
    };
    let filter = input
        .filter
        .as_ref()
        .and_then(|f| filter_spec(f, input.fir.as_ref()));
    let config = input.spectral.as_ref().map(spectral_configs);
    // What a front can check before opening the input.
    if let Some((stft, welch)) = &config {
        let _ = stft.validate();
        let _ = welch.validate();
    }

    let ext = EXTS[usize::from(input.ext) % EXTS.len()];
    let path = scratch_path("raw_options", ext);
    write_scratch(&path, data);
    check_file_and_stream(&path, data, &opts, input.ext.into());

    let Ok(source) = source::open(&path, &opts) else {
        // No input: the filter's design and the detector still run with
        // the options' own rate and channels, as before a stream starts.
        design(filter.as_ref(), opts.channels, opts.sample_rate, limit);
        detector(input.detector.as_ref(), opts.sample_rate);
        return;
    };
    let info = source.info().clone();
    drop(source);
    let kernel = design(filter.as_ref(), info.channels, info.sample_rate, limit);
    let detector = detector(input.detector.as_ref(), info.sample_rate);
    let job = Job {
        kernel,
        conv_mode: match input.conv_mode % 3 {
            0 => ConvMode::Same,
            1 => ConvMode::Full,
            _ => ConvMode::Valid,
        },
        detector: detector.map(DetectorChoice::Builtin),
        // The library refuses what does not fit: a shift on a real signal,
        // a factor out of range, a decimation whose state exceeds the budget.
        shift: input
            .shift
            .and_then(|hz| Mixer::new(hz.0, info.sample_rate.unwrap_or(1.0)).ok()),
        decimate: input.decimate.map(Num::usize),
        iir: input
            .iir
            .as_ref()
            .and_then(|a| a.design(info.sample_rate.unwrap_or(1.0))),
        reference: input.reference.map(|median| {
            if median {
                Reference::Median
            } else {
                Reference::Mean
            }
        }),
        // The library refuses an empty window, and one whose ring does not
        // fit the budget.
        snippets: input.snippets.and_then(|(pre, post, all)| {
            let which = if all {
                SnippetChannels::All
            } else {
                SnippetChannels::Own
            };
            SnippetSpec::new(pre.usize(), post.usize(), which, std::env::temp_dir()).ok()
        }),
        dedup: input
            .dedup
            .and_then(|(w, r)| DedupSpec::new(w.0, usize::from(r)).ok()),
        ..Job::default()
    };
    let job_has_no_filter = job.kernel.is_none();
    let whole_job = job.clone();
    let snippet_row = job
        .snippets
        .as_ref()
        .map(|s| s.row_values(info.signal_channels(), info.complex));
    let run_config = StreamConfig {
        chunk_size: input.chunk_size.map(Num::usize),
        memory_limit: limit.bytes,
        strict_memory_limit: limit.strict,
        threads: 1 + input.threads.usize() % 2,
        ..StreamConfig::default()
    };
    let processor = StreamProcessor::new(run_config.clone(), job);
    let mut events: Vec<Event> = Vec::new();
    let mut snippets: Vec<f32> = Vec::new();
    let sinks = Sinks {
        events: Some(&mut events),
        snippets: Some(&mut snippets),
        ..Sinks::default()
    };
    let result = processor.process_file(&path, &opts, sinks);
    if print() {
        match &result {
            Ok(stats) => eprintln!(
                "process: {} samples, {} chunks of {}, {} events",
                stats.samples, stats.chunks, stats.chunk_size, stats.events
            ),
            Err(e) => eprintln!("process: error: {e}"),
        }
    }
    if let Ok(stats) = result {
        if let Some(n) = input.decimate.map(Num::usize).filter(|&n| n > 1) {
            // ceil(output of the filter / N); without a filter, of the input.
            if job_has_no_filter {
                assert_eq!(
                    stats.output_samples,
                    info.frames.unwrap_or(0).div_ceil(n as u64),
                    "decimated output length"
                );
            }
        }
        assert_eq!(
            stats.samples,
            info.frames.unwrap_or(0),
            "every frame processed"
        );
        assert!(
            events
                .windows(2)
                .all(|w| (w[0].start, w[0].channel) <= (w[1].start, w[1].channel)),
            "events in order of start then channel"
        );
        // One snippet per event, of the spec's size.
        match snippet_row {
            Some(row) => assert_eq!(snippets.len(), events.len() * row, "a snippet per event"),
            None => assert!(snippets.is_empty()),
        }
        // Coincidence takes the events as the pipeline gives them: in order,
        // so it may refuse only past its cap.
        if let Some((sum, ext)) = input.coincidence
            && let Ok(mut co) =
                Coincidence::uniform(info.signal_channels(), sum.0, ext.0, DEFAULT_MAX_PENDING)
        {
            let mut groups = Vec::new();
            for e in &events {
                if co.push(e, &mut groups).is_err() {
                    assert!(co.pending() >= DEFAULT_MAX_PENDING, "refused below the cap");
                    break;
                }
            }
            co.finish(&mut groups);
            assert!(groups.windows(2).all(|w| w[0].start <= w[1].start));
        }
        if let (Some(cut), Some(frames)) = (input.split, info.frames) {
            shards_equal_whole(
                &path,
                &opts,
                &info,
                &whole_job,
                &run_config,
                frames,
                cut,
                &events,
            );
        }
    }
    if let Some((stft, welch)) = config {
        spectra(&path, &opts, &info, input.chunk_size, limit, stft, welch);
    }
    if let (Some((odd, seek)), Some(sos)) = (input.zero_phase, whole_job.iir.as_ref()) {
        zero_phase(&path, &opts, sos, odd, seek, limit, run_config.threads);
    }
}

/// `--zero-phase` as a stream (`zerophase::Streaming`, planned within the
/// limit as the CLI plans it): it ends with every frame or a clear error,
/// never a panic, and a seek gives the stream's frames from there (within
/// 1e-5 of the largest, where every value is finite: the seek's forward
/// pass starts from rest a settling length before); an exact seek (a
/// shard's) gives them bit for bit.
fn zero_phase(
    path: &std::path::Path,
    opts: &SourceOptions,
    sos: &Sos,
    odd: bool,
    seek: u32,
    limit: Limit,
    threads: usize,
) {
    use sigstream::pipeline::budget::BASELINE_BYTES;
    use sigstream::pipeline::zerophase::{Pad, StreamPlan, Streaming};
    let pad = if odd { Pad::Odd } else { Pad::None };
    let read_all = |z: &mut Streaming<'_>, channels: usize, read: usize| {
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); channels];
        let mut block = Block::new(channels, read);
        loop {
            match z.read_block(&mut block) {
                Ok(0) => return Some(out),
                Ok(_) => {
                    for (c, o) in out.iter_mut().enumerate() {
                        o.extend_from_slice(block.channel(c));
                    }
                }
                Err(_) => return None,
            }
        }
    };
    let Ok(source) = source::open(path, opts) else {
        return;
    };
    let info = source.info().clone();
    let room = limit.bytes.saturating_sub(BASELINE_BYTES) / 2;
    let Some(plan) = StreamPlan::fit(sos, info.channels, room) else {
        return;
    };
    let Ok(mut z) = Streaming::new(source, sos, pad, plan, threads) else {
        return;
    };
    let Some(whole) = read_all(&mut z, info.channels, plan.read) else {
        return;
    };
    let frames = whole.first().map_or(0, Vec::len);
    if let Some(n) = info.frames {
        assert_eq!(frames as u64, n, "zero phase: every frame");
    }
    let Ok(source) = source::open(path, opts) else {
        return;
    };
    let Ok(mut z) = Streaming::new(source, sos, pad, plan, threads) else {
        return;
    };
    if !z.seekable() {
        return;
    }
    let from = seek as usize % (frames + 1);
    z.seek(from as u64).expect("a seekable stream seeks");
    let Some(tail) = read_all(&mut z, info.channels, plan.read) else {
        return;
    };
    let Ok(source) = source::open(path, opts) else {
        return;
    };
    let Ok(z) = Streaming::new(source, sos, pad, plan, threads) else {
        return;
    };
    let mut z = z.exact_seeks();
    z.seek(from as u64).expect("a seekable stream seeks");
    if let Some(exact) = read_all(&mut z, info.channels, plan.read) {
        for (c, (got, all)) in exact.iter().zip(&whole).enumerate() {
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(
                bits(got) == bits(&all[from..]),
                "zero phase: exact seek {from}, channel {c}: not the stream's bits"
            );
        }
    }
    for (c, (got, all)) in tail.iter().zip(&whole).enumerate() {
        assert_eq!(got.len(), frames - from, "zero phase: frames after a seek");
        let want = &all[from..];
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if !scale.is_finite() || got.iter().any(|v| !v.is_finite()) {
            continue;
        }
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let err = f64::from((g - w).abs());
            assert!(
                err <= 1e-5 * f64::from(scale) + f64::from(f32::MIN_POSITIVE),
                "zero phase: seek {from}, channel {c}, frame {i}: {g} against {w}"
            );
        }
    }
}

/// `--range`: two shards of the file, cut at `cut` (modulo its length),
/// report together exactly the whole run's events (sorted as it sorts
/// them). The recursive STA/LTA is left out: its halo makes its state
/// agree to far below rounding, not by construction.
#[expect(clippy::too_many_arguments, reason = "the run's parts")]
fn shards_equal_whole(
    path: &std::path::Path,
    opts: &SourceOptions,
    info: &SignalInfo,
    job: &Job,
    config: &StreamConfig,
    frames: u64,
    cut: u32,
    whole: &[Event],
) {
    use sigstream::shard::{SampleRange, plan};
    if frames < 2
        || job.detector.as_ref().is_some_and(|d| {
            d.specs()
                .iter()
                .any(|s| matches!(s, DetectorSpec::RecursiveStaLta { .. }))
        })
    {
        return;
    }
    let m = 1 + u64::from(cut) % (frames - 1);
    let mut union = Vec::new();
    for range in [
        SampleRange { start: 0, end: m },
        SampleRange {
            start: m,
            end: frames,
        },
    ] {
        // What a shard refuses (decimation, snippets, ...) is refused for
        // both; a budget the shard's plan does not fit fails the same way.
        let Ok(shard) = plan(job, info.channels, frames, range) else {
            return;
        };
        let mut events: Vec<Event> = Vec::new();
        let sinks = Sinks {
            events: Some(&mut events),
            ..Sinks::default()
        };
        if StreamProcessor::new(config.clone(), job.clone())
            .with_shard(shard)
            .process_file(path, opts, sinks)
            .is_err()
        {
            return;
        }
        union.extend(events);
    }
    union.sort_by_key(|e| (e.start, e.channel, e.end));
    assert_eq!(union.len(), whole.len(), "shards' event count");
    for (a, b) in union.iter().zip(whole) {
        assert_eq!(
            (
                a.channel,
                a.start,
                a.end,
                a.peak_index,
                a.peak_value.to_bits()
            ),
            (
                b.channel,
                b.start,
                b.end,
                b.peak_index,
                b.peak_value.to_bits()
            ),
            "a shard's event against the whole run's"
        );
    }
}

/// The filter as the CLI builds it from its options.
fn filter_spec(arg: &FilterArg, fir: Option<&FirArg>) -> Option<FilterSpec> {
    let spec = match arg {
        FilterArg::Kernel(taps) => FilterSpec::Kernel(taps.iter().map(|t| t.0).collect()),
        FilterArg::MovingAverage(n) => FilterSpec::MovingAverage(n.usize()),
        FilterArg::Lowpass(cutoff, taps) => FilterSpec::Lowpass {
            cutoff: cutoff.0,
            fir: FirArg::design(fir, taps),
        },
        FilterArg::Highpass(cutoff, taps) => FilterSpec::Highpass {
            cutoff: cutoff.0,
            fir: FirArg::design(fir, taps),
        },
        FilterArg::Bandpass(band, taps) => {
            let (low, high) = FilterSpec::parse_band(band).ok()?;
            FilterSpec::Bandpass {
                low,
                high,
                fir: FirArg::design(fir, taps),
            }
        }
        FilterArg::BandpassNumbers(low, high, taps) => {
            let (low, high) = FilterSpec::parse_band(&format!("{}:{}", low.0, high.0)).ok()?;
            FilterSpec::Bandpass {
                low,
                high,
                fir: FirArg::design(fir, taps),
            }
        }
    };
    spec.validate().ok()?;
    Some(spec)
}

/// The kernel's memory check, then its design (as the CLI's `process`
/// does); the taps when both pass.
fn design(
    filter: Option<&FilterSpec>,
    channels: usize,
    sample_rate: Option<f64>,
    limit: Limit,
) -> Option<Vec<f32>> {
    let filter = filter?;
    let taps = filter.num_taps(sample_rate).ok()?;
    check_kernel(taps, channels, limit.bytes).ok()?;
    let designed = filter.design(sample_rate).ok()?;
    assert_eq!(designed.taps.len(), taps, "design gives num_taps() taps");
    assert_eq!(
        designed.fir.map(|p| p.taps),
        filter.fir_plan(sample_rate).ok()?.map(|p| p.taps)
    );
    for w in &designed.warnings {
        let _ = w.to_string();
    }
    Some(designed.taps)
}

/// The detector from its options, for an input at `sample_rate`.
fn detector(arg: Option<&DetectorArg>, sample_rate: Option<f64>) -> Option<DetectorSpec> {
    let arg = arg?;
    let kind = match arg.kind % 3 {
        0 => DetectorKind::Threshold,
        1 => DetectorKind::ClassicStaLta,
        _ => DetectorKind::RecursiveStaLta,
    };
    let options = DetectorOptions {
        on: arg.on.map(|f| f.0),
        off: arg.off.map(|f| f.0),
        sta: arg.sta.as_ref().map(WindowArg::len),
        lta: arg.lta.as_ref().map(WindowArg::len),
        max_len: arg.max_len.map(|n| n.0),
        polarity: None,
        dead: None,
    };
    let spec = DetectorSpec::from_options(kind, &options, sample_rate).ok()?;
    assert!(spec.validate().is_ok(), "from_options returns a valid spec");
    Some(spec)
}

/// The STFT and Welch configurations the spectral options describe.
fn spectral_configs(arg: &SpectralArg) -> (StftConfig, WelchConfig) {
    let window = match arg.window % 4 {
        0 => Window::Hann,
        1 => Window::Hamming,
        2 => Window::Blackman,
        _ => Window::Rect,
    };
    let detrend = if arg.detrend {
        Detrend::Constant
    } else {
        Detrend::None
    };
    let nfft = arg.nfft.usize();
    let stft = StftConfig {
        nfft,
        hop: arg
            .hop
            .map_or_else(|| StftConfig::default_hop(nfft), Num::usize),
        window,
        detrend,
        scale: match arg.scale % 3 {
            0 => Scale::Db,
            1 => Scale::Power,
            _ => Scale::Magnitude,
        },
    };
    let mut welch = WelchConfig::new(nfft);
    welch.window = window;
    welch.detrend = detrend;
    welch.scaling = if arg.density {
        Scaling::Density
    } else {
        Scaling::Spectrum
    };
    if let Some(n) = arg.noverlap {
        welch.noverlap = n.usize();
    }
    (stft, welch)
}

/// The spectrogram and PSD of the input, planned and run as the CLI's
/// spectral commands do: refused when shorter than a frame, chunk planned
/// under the memory limit with the estimator's state, then every chunk
/// pushed through both estimators.
fn spectra(
    path: &std::path::Path,
    opts: &SourceOptions,
    info: &SignalInfo,
    chunk_size: Option<Num>,
    limit: Limit,
    stft: StftConfig,
    welch: WelchConfig,
) {
    let plan = |frame_len: usize| {
        if info.frames.is_some_and(|f| f < frame_len as u64) {
            return None;
        }
        plan_blocks(
            chunk_size.map(Num::usize),
            limit,
            &InputShape {
                channels: info.channels,
                sample_bytes: info.dtype.size(),
                frames: info.frames,
            },
            3,
            state_bytes(info.channels, frame_len),
        )
        .ok()
    };
    let rate = info.sample_rate;
    if let Some(chunk) = plan(stft.nfft)
        && let Ok(mut est) = Stft::new(stft, info.channels, rate, None)
        && let Ok(mut src) = source::open(path, opts)
    {
        let mut block = Block::new(info.channels, chunk);
        let mut frames = 0u64;
        while let Ok(n) = src.read_block(&mut block)
            && n > 0
        {
            let _ = est.push(&block, |rows| {
                frames += rows.count as u64;
                Ok(())
            });
        }
        assert_eq!(frames, est.frames(), "STFT rows handed on == frames");
        if print() {
            eprintln!("stft: {frames} frames of {} bins", est.bins());
        }
    }
    if let Some(chunk) = plan(welch.nperseg)
        && let Ok(mut est) = Welch::new(welch, info.channels, rate, None)
        && let Ok(mut src) = source::open(path, opts)
    {
        let mut block = Block::new(info.channels, chunk);
        while let Ok(n) = src.read_block(&mut block)
            && n > 0
        {
            let _ = est.push(&block);
        }
        let psd = est.finish();
        if print() {
            eprintln!("welch: {:?}", psd.map(|p| p.frequencies.len()));
        }
    }
}
