//! `sigstream process`: filter inputs and detect events, one report for all.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use super::{
    InputArgs, RunArgs, about_input, group, memory_limit, progress_bar, report_failure, threads,
    write_report,
};
use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::{DetectorKind, DetectorOptions, DetectorSpec, WindowLen};
use sigstream::error::{Error, Result};
use sigstream::filter::mix::Mixer;
use sigstream::filter::{ConvMode, FilterSpec, load_kernel_spec};
use sigstream::pipeline::{Progress, Sinks, Stats, StreamConfig, StreamProcessor};
use sigstream::report::{Report, describe_input, outputs};
use sigstream::sink::{
    CsvEvents, EventClock, EventSink, SignalSink, Transaction, is_stdout, open_signal_sink,
};
use sigstream::source::mseed::Recording;
use sigstream::source::{self, ChunkSource, Input, SignalInfo, SourceOptions};

/// `sigstream process`.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Input files, directories (their files) or `-` for standard input.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// How to read raw input.
    #[command(flatten)]
    pub input: InputArgs,

    /// FIR kernel file: .npy or text (numbers separated by spaces/commas);
    /// a complex64/complex128 .npy is a complex kernel (complex input only).
    #[arg(long, value_name = "FILE", group = "filter", help_heading = "Filter")]
    pub kernel: Option<PathBuf>,
    /// Moving average over N samples.
    #[arg(long, value_name = "N", group = "filter", help_heading = "Filter")]
    pub moving_average: Option<usize>,
    /// Windowed-sinc low-pass (Hamming, like scipy.signal.firwin), cutoff in Hz.
    #[arg(long, value_name = "HZ", group = "filter", help_heading = "Filter")]
    pub lowpass: Option<f64>,
    /// Windowed-sinc high-pass, cutoff in Hz (odd --taps).
    #[arg(long, value_name = "HZ", group = "filter", help_heading = "Filter")]
    pub highpass: Option<f64>,
    /// Windowed-sinc band-pass between LO and HI Hz.
    #[arg(long, value_name = "LO:HI", group = "filter", help_heading = "Filter")]
    pub bandpass: Option<String>,
    /// Taps of a designed filter.
    #[arg(long, value_name = "N", default_value_t = 101, help_heading = "Filter")]
    pub taps: usize,
    /// Which outputs of the convolution to keep, as numpy.convolve.
    #[arg(long, value_enum, default_value_t = ConvModeArg::Same, help_heading = "Filter")]
    pub conv_mode: ConvModeArg,
    /// Complex (I/Q) input: mix by e^(−2πi·HZ·n/fs) before the filter,
    /// moving HZ to 0 Hz (negative HZ moves up).
    #[arg(
        long,
        value_name = "HZ",
        allow_negative_numbers = true,
        help_heading = "Filter"
    )]
    pub shift: Option<f64>,
    /// Decimate by N after the filter, anti-aliased as
    /// scipy.signal.resample_poly(y, 1, N); the output, events and times
    /// are at fs/N.
    #[arg(long, value_name = "N", help_heading = "Filter")]
    pub decimate: Option<usize>,

    /// Detector to run on the filtered signal (the raw one without a filter).
    #[arg(long, value_enum, help_heading = "Detection")]
    pub detect: Option<DetectArg>,
    /// Trigger-on level of the characteristic function.
    #[arg(long, value_name = "X", help_heading = "Detection")]
    pub on: Option<f64>,
    /// Trigger-off level (default: the --on level).
    #[arg(long, value_name = "Y", help_heading = "Detection")]
    pub off: Option<f64>,
    /// STA window in samples.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "sta_seconds",
        help_heading = "Detection"
    )]
    pub sta: Option<usize>,
    /// LTA window in samples.
    #[arg(
        long,
        value_name = "N",
        conflicts_with = "lta_seconds",
        help_heading = "Detection"
    )]
    pub lta: Option<usize>,
    /// STA window in seconds (needs a sample rate).
    #[arg(long, value_name = "S", help_heading = "Detection")]
    pub sta_seconds: Option<f64>,
    /// LTA window in seconds (needs a sample rate).
    #[arg(long, value_name = "S", help_heading = "Detection")]
    pub lta_seconds: Option<f64>,
    /// Longest event in samples; a longer one is cut and a new one starts
    /// when the function rises above --on again (ObsPy's max_len).
    #[arg(long, value_name = "N", help_heading = "Detection")]
    pub max_len: Option<u64>,

    /// Filtered signal: .npy (float32), .wav (float) or anything else (raw
    /// f32 LE); `-` writes raw f32 LE to standard output.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        help_heading = "Outputs"
    )]
    pub output: Option<PathBuf>,
    /// Events as CSV: channel,start,end,peak_index,peak_value (`-`: standard output).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub events: Option<PathBuf>,
    /// Run report as JSON (`-`: standard output).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub report: Option<PathBuf>,
    /// Directory for per-input outputs: DIR/<input stem>.<name given to -o/--events>.
    /// Required with several inputs.
    #[arg(long, value_name = "DIR", help_heading = "Outputs")]
    pub output_dir: Option<PathBuf>,

    /// Chunking, memory, threads, backend.
    #[command(flatten)]
    pub run: RunArgs,
}

/// numpy.convolve modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConvModeArg {
    /// All n+m-1 outputs.
    Full,
    /// n outputs, output i lined up with input i.
    Same,
    /// The n-m+1 outputs that see no padding.
    Valid,
}

/// Detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetectArg {
    /// |y| against --on/--off.
    Threshold,
    /// ObsPy's classic_sta_lta.
    StaLta,
    /// ObsPy's recursive_sta_lta.
    RecursiveStaLta,
}

impl ProcessArgs {
    /// The run configuration.
    fn stream_config(&self) -> Result<StreamConfig> {
        Ok(StreamConfig {
            chunk_size: self.run.chunk_size,
            memory_limit: memory_limit(self.run.memory_limit)?.bytes,
            strict_memory_limit: self.run.memory_limit.is_some(),
            threads: threads(self.run.threads)?,
            ..StreamConfig::default()
        })
    }

    /// The filter as described, without taps yet (designed filters need the
    /// input's sample rate). Reads a kernel file once.
    fn filter_spec(&self) -> Result<Option<FilterSpec>> {
        let taps = self.taps;
        let spec = if let Some(path) = &self.kernel {
            Some(load_kernel_spec(path)?)
        } else if let Some(n) = self.moving_average {
            Some(FilterSpec::MovingAverage(n))
        } else if let Some(cutoff) = self.lowpass {
            Some(FilterSpec::Lowpass { cutoff, taps })
        } else if let Some(cutoff) = self.highpass {
            Some(FilterSpec::Highpass { cutoff, taps })
        } else if let Some(band) = &self.bandpass {
            let (low, high) = FilterSpec::parse_band(band)?;
            Some(FilterSpec::Bandpass { low, high, taps })
        } else {
            None
        };
        spec.as_ref().map(FilterSpec::validate).transpose()?;
        Ok(spec)
    }

    /// The detector options as given.
    fn detector_options(&self) -> DetectorOptions {
        let window = |n: Option<usize>, s: Option<f64>| {
            n.map(WindowLen::Samples)
                .or_else(|| s.map(WindowLen::Seconds))
        };
        DetectorOptions {
            on: self.on,
            off: self.off,
            sta: window(self.sta, self.sta_seconds),
            lta: window(self.lta, self.lta_seconds),
            max_len: self.max_len,
            polarity: None,
            dead: None,
        }
    }

    /// The detector for an input of `sample_rate`, checked by the library.
    fn detector(&self, sample_rate: Option<f64>) -> Result<Option<DetectorSpec>> {
        let Some(kind) = self.detect else {
            for (set, name) in [
                (self.on.is_some(), "--on"),
                (self.off.is_some(), "--off"),
                (self.sta.is_some() || self.sta_seconds.is_some(), "--sta"),
                (self.lta.is_some() || self.lta_seconds.is_some(), "--lta"),
                (self.max_len.is_some(), "--max-len"),
            ] {
                if set {
                    return Err(Error::usage(format!("{name} needs --detect")));
                }
            }
            return Ok(None);
        };
        let kind = match kind {
            DetectArg::Threshold => DetectorKind::Threshold,
            DetectArg::StaLta => DetectorKind::ClassicStaLta,
            DetectArg::RecursiveStaLta => DetectorKind::RecursiveStaLta,
        };
        DetectorSpec::from_options(kind, &self.detector_options(), sample_rate).map(Some)
    }

    /// The job for one input (designed filters and windows in seconds need
    /// its sample rate).
    fn job(&self, filter: Option<&FilterSpec>, info: &SignalInfo) -> Result<Job> {
        if let Some(f) = filter {
            let limit = memory_limit(self.run.memory_limit)?;
            sigstream::pipeline::budget::check_kernel(f.len(), info.channels, limit.bytes)?;
        }
        let designed = filter.map(|f| f.design(info.sample_rate)).transpose()?;
        if !self.run.quiet {
            for warning in designed.iter().flat_map(|d| &d.warnings) {
                eprintln!("sigstream: warning: {}: {warning}", info.path.display());
            }
        }
        let (kernel, kernel_imag) = match designed {
            Some(d) => (Some(d.taps), d.taps_imag),
            None => (None, None),
        };
        // Windows in seconds count samples at the rate the detector sees.
        let detector = self
            .detector(output_rate(info.sample_rate, self.decimate))?
            .map(DetectorChoice::Builtin);
        let shift = self
            .shift
            .map(|hz| {
                let fs = info.sample_rate.ok_or_else(|| {
                    Error::usage(
                        "--shift needs a sample rate: the input has none, give --sample-rate HZ",
                    )
                })?;
                Mixer::new(hz, fs)
            })
            .transpose()?;
        let job = Job {
            kernel,
            kernel_imag,
            shift,
            decimate: self.decimate,
            complex: info.complex,
            conv_mode: match self.conv_mode {
                ConvModeArg::Full => ConvMode::Full,
                ConvModeArg::Same => ConvMode::Same,
                ConvModeArg::Valid => ConvMode::Valid,
            },
            detector,
            ..Job::default()
        };
        // Checked here, where the input is known, so the message names it.
        job.validate()?;
        Ok(job)
    }

    /// Where an output named `given` goes for `input`: as given for a single
    /// input without --output-dir, else `DIR/<stem>.<file name of given>`.
    fn output_path(&self, given: &Path, input: &Path) -> PathBuf {
        match &self.output_dir {
            None => given.to_path_buf(),
            Some(dir) => {
                let stem = input_stem(input);
                let name = given.file_name().map_or_else(
                    || given.to_string_lossy().into_owned(),
                    |n| n.to_string_lossy().into_owned(),
                );
                dir.join(format!("{stem}.{name}"))
            }
        }
    }

    /// Checks the outputs of a run over `inputs` before anything is read.
    fn check_outputs(&self, inputs: &[PathBuf]) -> Result<()> {
        let several = inputs.len() > 1;
        for (name, given) in [("-o", &self.output), ("--events", &self.events)] {
            if let Some(p) = given
                && is_stdout(p)
                && (several || self.output_dir.is_some())
            {
                return Err(Error::usage(format!(
                    "{name} - (standard output) takes a single input and no --output-dir"
                )));
            }
        }
        if several && self.output_dir.is_none() && (self.output.is_some() || self.events.is_some())
        {
            return Err(Error::usage(
                "with several inputs, -o/--events need --output-dir DIR (outputs go to DIR/<input stem>.<name>)",
            ));
        }
        if self.output_dir.is_some() {
            let mut stems: Vec<String> = inputs.iter().map(|p| input_stem(p)).collect();
            stems.sort();
            if let Some(w) = stems.windows(2).find(|w| w[0] == w[1]) {
                return Err(Error::usage(format!(
                    "two inputs share the stem '{}': their outputs in --output-dir would collide",
                    w[0]
                )));
            }
        }
        let mut all: Vec<(String, PathBuf)> = Vec::new();
        for input in inputs {
            for (name, given) in [("-o", &self.output), ("--events", &self.events)] {
                if let Some(p) = given {
                    all.push((name.to_owned(), self.output_path(p, input)));
                }
            }
        }
        if let Some(p) = &self.report {
            all.push(("--report".to_owned(), p.clone()));
        }
        let refs: Vec<(&str, &Path)> = all.iter().map(|(n, p)| (n.as_str(), p.as_path())).collect();
        let inputs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
        sigstream::sink::check_outputs(&inputs, &refs)
    }
}

/// The sample rate after `--decimate` (fs/N).
fn output_rate(rate: Option<f64>, decimate: Option<usize>) -> Option<f64> {
    rate.map(|fs| fs / decimate.unwrap_or(1).max(1) as f64)
}

/// The clock of the output's events: the input's, at the rate after
/// `--decimate` (built from the input's without copying the rest of it).
fn output_clock(info: &SignalInfo, decimate: Option<usize>) -> EventClock {
    EventClock {
        sample_rate: output_rate(info.sample_rate, decimate),
        ..EventClock::of(info)
    }
}

/// An input's stem for output names (`stdin` for `-`).
fn input_stem(input: &Path) -> String {
    if input == Path::new("-") {
        return "stdin".into();
    }
    input
        .file_stem()
        .map_or_else(|| "input".into(), |s| s.to_string_lossy().into_owned())
}

/// Expands directories into their files (sorted, not recursive, hidden
/// files skipped); other inputs pass as they are.
fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let entries = std::fs::read_dir(input).map_err(|e| Error::open(input, e))?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            if files.is_empty() {
                return Err(Error::format(input, "directory holds no input files"));
            }
            files.sort();
            all.extend(files);
        } else {
            all.push(input.clone());
        }
    }
    Ok(all)
}

/// `sigstream process`: returns the exit code.
pub fn run(args: &ProcessArgs) -> Result<i32> {
    args.run.validate()?;
    let opts = args.input.source_options()?;
    let config = args.stream_config()?;
    let filter = args.filter_spec()?;
    // Validate what does not depend on the input before touching any file.
    args.detector(args.input.sample_rate.or(Some(1.0)))?;
    if let Some(n) = args.decimate {
        sigstream::filter::resample::check_factor(n)?;
    }
    if let Some(hz) = args.shift
        && !hz.is_finite()
    {
        return Err(Error::usage(format!(
            "--shift {hz}: must be a number of Hz"
        )));
    }
    let inputs = expand_inputs(&args.inputs)?;
    // The output directory first, so that the outputs in it can be checked.
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::open(dir, e))?;
    }
    args.check_outputs(&inputs)?;
    let backend = args.run.backend.open()?;
    let mut report = Report::new("process");
    report.set_backend(backend.name(), &backend.device());
    let mut code = 0;
    for input in &inputs {
        let processor =
            |job: Job| StreamProcessor::new(config.clone(), job).with_backend(backend.clone());
        match process_one(args, filter.as_ref(), input, &opts, processor) {
            Ok((entry, stats)) => {
                if !args.run.quiet && args.report.is_none() {
                    eprintln!(
                        "{}: {} samples × {} ch, {} events, {:.2} s, {:.0} MB/s, peak {:.1} MiB",
                        input.display(),
                        group(stats.samples),
                        stats.channels,
                        group(stats.events),
                        stats.seconds,
                        stats.throughput_mb_s,
                        stats.peak_rss_mb
                    );
                }
                report.push(entry);
            }
            Err(e) => {
                report_failure(&e, &mut code);
                report.push_error(input, &e);
            }
        }
    }
    if let Some(path) = &args.report {
        write_report(path, &report.finish())?;
    }
    Ok(code)
}

/// The contiguous spans of one input: the input itself, or a miniSEED
/// file's segments (`--gaps split`), each run with fresh state.
enum Spans {
    One(Option<Box<dyn ChunkSource>>),
    Segmented(Box<Recording>),
}

impl Spans {
    fn count(&self) -> usize {
        match self {
            Spans::One(_) => 1,
            Spans::Segmented(rec) => rec.spans(),
        }
    }

    fn info(&self, i: usize) -> SignalInfo {
        match self {
            Spans::One(s) => s.as_ref().expect("not taken yet").info().clone(),
            Spans::Segmented(rec) => rec.span_info(i),
        }
    }

    fn source(&mut self, i: usize) -> Box<dyn ChunkSource> {
        match self {
            Spans::One(s) => s.take().expect("one span, taken once"),
            Spans::Segmented(rec) => Box::new(rec.span_source(i)),
        }
    }
}

/// A signal sink shared by the spans of one input: each span appends, and
/// the output is completed once, after the last.
struct Appending<'a>(&'a mut Box<dyn SignalSink>);

impl SignalSink for Appending<'_> {
    fn write(&mut self, block: &sigstream::pool::Block) -> Result<()> {
        self.0.write(block)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Processes one input with all its outputs; returns its report entry.
fn process_one(
    args: &ProcessArgs,
    filter: Option<&FilterSpec>,
    input: &Path,
    opts: &SourceOptions,
    processor: impl Fn(Job) -> StreamProcessor,
) -> Result<(Map<String, Value>, Stats)> {
    // This input's outputs are renamed into place together, at the end.
    let written = Transaction::begin();
    let mut spans = match source::open_input(input, opts)? {
        Input::Stream(s) => Spans::One(Some(s)),
        Input::Segmented(rec) => Spans::Segmented(rec),
    };
    let info = spans.info(0);
    if let Spans::Segmented(rec) = &spans
        && !args.run.quiet
    {
        for (id, n) in rec.dropped() {
            eprintln!(
                "sigstream: warning: {}: {n} samples of {id} are not processed: they repeat overlapping records, or (--gaps split, several channels) fall where not every selected channel has data",
                input.display()
            );
        }
    }
    // Option errors that depend on this input (no sample rate, ...) name it.
    let job = args.job(filter, &info).map_err(about_input(input))?;
    let processor = processor(job);
    let signal_path = args.output.as_ref().map(|o| args.output_path(o, input));
    let events_path = args.events.as_ref().map(|o| args.output_path(o, input));
    let out_rate = output_rate(info.sample_rate, args.decimate);
    let mut signal = signal_path
        .as_ref()
        .map(|p| open_signal_sink(p, info.channels, info.complex, out_rate))
        .transpose()?;
    let mut csv = events_path
        .as_ref()
        .map(|p| CsvEvents::create(p, output_clock(&info, args.decimate)))
        .transpose()?;
    let total_frames = match &spans {
        Spans::One(_) => info.frames,
        Spans::Segmented(rec) => Some(rec.span_summaries().iter().map(|s| s.samples).sum()),
    };
    let bar = progress_bar(args.run.quiet, &input.display().to_string(), total_frames);
    let started = std::time::Instant::now();
    let mut stats = Stats::default();
    let mut done = 0u64;
    let mut skipped = 0usize;
    let taps = processor.job().taps() as u64;
    for i in 0..spans.count() {
        let span_info = spans.info(i);
        if spans.count() > 1 && span_info.frames.is_some_and(|n| n < taps) {
            // A segment shorter than the kernel cannot be filtered alone.
            skipped += 1;
            continue;
        }
        let mut source = spans.source(i);
        if let Some(csv) = csv.as_mut() {
            csv.set_clock(output_clock(&span_info, args.decimate));
        }
        let mut on_progress = |p: &Progress| bar.set_position(done + p.frames);
        let part = processor.process_source(
            source.as_mut(),
            Sinks {
                signal: signal
                    .as_mut()
                    .map(|s| Box::new(Appending(s)) as Box<dyn SignalSink>),
                events: csv.as_mut().map(|c| c as &mut dyn EventSink),
                progress: Some(&mut on_progress),
            },
        )?;
        done += part.samples;
        stats.add(&part);
    }
    bar.finish_and_clear();
    if stats.chunks == 0 {
        return Err(Error::format(
            input,
            format!(
                "all {} segments are shorter than the kernel's {taps} taps: nothing to filter",
                spans.count()
            ),
        ));
    }
    if skipped > 0 && !args.run.quiet {
        eprintln!(
            "sigstream: warning: {}: {skipped} of {} segments are shorter than the kernel's {taps} taps and were skipped",
            input.display(),
            spans.count()
        );
    }
    stats.seconds = started.elapsed().as_secs_f64();
    stats.throughput_mb_s = stats.bytes as f64 / stats.seconds.max(1e-9) / 1e6;
    if let Some(sink) = signal {
        sink.finish()?;
    }
    if let Some(csv) = csv {
        csv.commit()?;
    }
    written.commit()?;
    let default_mb = (sigstream::pipeline::DEFAULT_MEMORY_LIMIT >> 20) as f64;
    if args.run.memory_limit.is_none() && stats.memory_limit_mb > default_mb && !args.run.quiet {
        eprintln!(
            "sigstream: note: {}: the job's own state for {} needs more than the default {default_mb} MiB budget; it ran within {:.0} MiB (--memory-limit MB makes the limit hard)",
            input.display(),
            if stats.channels == 1 {
                "1 channel".to_string()
            } else {
                format!("{} channels", stats.channels)
            },
            stats.memory_limit_mb.ceil()
        );
    }
    let job = processor.job();
    let mut entry = describe_input(&info, Some(stats.samples));
    if let Spans::Segmented(rec) = &spans {
        entry.insert("segments".into(), json!(rec.span_summaries()));
        entry.insert("skipped_segments".into(), json!(skipped));
    }
    let detector = match &job.detector {
        Some(DetectorChoice::Builtin(spec)) => json!(spec),
        Some(DetectorChoice::Custom(_)) => json!({"kind": "custom"}),
        Some(DetectorChoice::PerChannel(specs)) => {
            json!({"kind": "per_channel", "detectors": specs.as_ref()})
        }
        None => Value::Null,
    };
    for (key, value) in [
        ("bytes", json!(stats.bytes)),
        ("seconds", json!(stats.seconds)),
        ("throughput_mb_s", json!(stats.throughput_mb_s)),
        ("output_samples", json!(stats.output_samples)),
        ("chunks", json!(stats.chunks)),
        ("chunk_size", json!(stats.chunk_size)),
        ("memory_limit_mb", json!(stats.memory_limit_mb)),
        ("planned_mb", json!(stats.planned_mb)),
        ("overlap", json!(stats.overlap)),
        ("threads", json!(threads(args.run.threads)?)),
        ("events", json!(stats.events)),
        (
            "filter",
            job.kernel.as_ref().map_or(Value::Null, |k| {
                json!({
                    "taps": k.len(),
                    "method": stats.fir_method,
                    "conv_mode": job.conv_mode,
                })
            }),
        ),
        ("detector", detector),
        ("shift_hz", json!(args.shift)),
        ("decimate", json!(args.decimate)),
        ("output_sample_rate", json!(out_rate)),
        (
            "outputs",
            outputs([
                ("signal", signal_path.as_deref()),
                ("events", events_path.as_deref()),
            ]),
        ),
    ] {
        entry.insert(key.into(), value);
    }
    Ok((entry, stats))
}
