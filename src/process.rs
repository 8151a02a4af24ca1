//! Filter inputs and detect events: everything `sigstream process` does,
//! for any front.
//!
//! Why it is in the library: the CLI and the Python package take the same
//! options ([`ProcessOptions`], clap's definitions, which the Python
//! front's keywords are parsed through: [`ProcessOptions::from_pairs`]),
//! check them the same way and run the same steps around the chunk engine
//! ([`StreamProcessor`]): the zero-phase passes, the noise estimate,
//! miniSEED segments, the outputs committed together, and the report.
//! A front only shows progress and warnings ([`Observer`]) and prints.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use crate::backend::{DetectorChoice, Job};
use crate::detect::coincidence::{Coincidence, DEFAULT_MAX_PENDING};
use crate::detect::dedup::DedupSpec;
use crate::detect::noise::NoiseChunks;
use crate::detect::snippet::{SnippetChannels, SnippetSpec};
use crate::detect::{DetectorKind, DetectorOptions, DetectorSpec, Polarity, WindowLen};
use crate::error::{Error, Result, about_input};
use crate::filter::iir::Sos;
use crate::filter::iir::design::{self, Band, Family};
use crate::filter::mix::Mixer;
use crate::filter::reference::Reference;
use crate::filter::{
    ConvMode, DEFAULT_ATTENUATION_DB, FilterSpec, FirDesign, FirPlan, FirWindow, WindowKind,
    load_kernel_spec,
};
use crate::options::{InputArgs, RunArgs, memory_limit, threads};
use crate::pipeline::noise::{self, NoiseLevels};
use crate::pipeline::zerophase::{self, Pad, StreamPlan};
use crate::pipeline::{Progress, Sinks, Stats, StreamConfig, StreamProcessor};
use crate::report::{describe_input, outputs};
use crate::sink::events::EventBatches;
use crate::sink::network::{CoincidenceSink, Tee};
use crate::sink::{
    EventClock, EventSink, NpyArrayWriter, SignalSink, SnippetSink, Transaction, is_stdout,
    open_signal_sink,
};
use crate::source::mseed::Recording;
use crate::source::{self, ChunkSource, Input, SignalInfo, SourceOptions};

/// The options of `sigstream process` (and of the Python front's
/// `process_file`).
#[derive(Debug, Args)]
pub struct ProcessOptions {
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
    /// Low-pass, cutoff in Hz: windowed sinc (scipy.signal.firwin; taps and
    /// window: --taps, --transition, --window), or the --iir family's design.
    #[arg(long, value_name = "HZ", group = "filter", help_heading = "Filter")]
    pub lowpass: Option<f64>,
    /// High-pass, cutoff in Hz: windowed sinc (odd --taps), or the --iir
    /// family's design.
    #[arg(long, value_name = "HZ", group = "filter", help_heading = "Filter")]
    pub highpass: Option<f64>,
    /// Band-pass between LO and HI Hz: windowed sinc, or the --iir family's
    /// design.
    #[arg(long, value_name = "LO:HI", group = "filter", help_heading = "Filter")]
    pub bandpass: Option<String>,
    /// Band-stop between LO and HI Hz (IIR filters: --iir).
    #[arg(long, value_name = "LO:HI", group = "filter", help_heading = "Filter")]
    pub bandstop: Option<String>,
    /// IIR filter as second-order sections from an .npy of shape (n, 6)
    /// (scipy's sos layout: b0 b1 b2 a0 a1 a2, a0 = 1).
    #[arg(long, value_name = "FILE", group = "filter", help_heading = "Filter")]
    pub sos: Option<PathBuf>,
    /// Design the --lowpass/--highpass/--bandpass/--bandstop filter as this
    /// IIR family, as scipy.signal.iirfilter(output='sos'), run as sosfilt.
    #[arg(long, value_enum, value_name = "FAMILY", help_heading = "Filter")]
    pub iir: Option<IirArg>,
    /// Order of the IIR design (ObsPy's corners), 1 to 20.
    #[arg(long, value_name = "N", default_value_t = 4, help_heading = "Filter")]
    pub order: usize,
    /// Passband ripple in dB (cheby1, ellip).
    #[arg(
        long,
        value_name = "DB",
        default_value_t = 1.0,
        help_heading = "Filter"
    )]
    pub ripple: f64,
    /// Stopband attenuation in dB [default: 60]: of the --iir cheby2 and
    /// ellip designs, and of a windowed sinc's Kaiser window (its beta, and
    /// its taps without --taps).
    #[arg(long, value_name = "DB", help_heading = "Filter")]
    pub attenuation: Option<f64>,
    /// Filter forwards then backwards (IIR only): scipy.signal.sosfiltfilt
    /// in two passes through a scratch file beside the output.
    #[arg(long, help_heading = "Filter")]
    pub zero_phase: bool,
    /// Padding of --zero-phase: odd (sosfiltfilt's default) or none
    /// (ObsPy's zerophase=True).
    #[arg(long, value_enum, default_value_t = PadArg::Odd, help_heading = "Filter")]
    pub pad: PadArg,
    /// Subtract, at each sample, the median (CMR) or mean (CAR) across
    /// channels, after the filter.
    #[arg(long, value_enum, value_name = "HOW", help_heading = "Filter")]
    pub reference: Option<ReferenceArg>,
    /// Taps of a windowed sinc (default: the fewest whose transition band is
    /// --transition wide, by scipy.signal.kaiserord for a Kaiser window,
    /// made odd).
    #[arg(long, value_name = "N", help_heading = "Filter")]
    pub taps: Option<usize>,
    /// Width in Hz of a windowed sinc's transition band, which sets its taps
    /// (default: a quarter of the lowest cutoff, at most the band between a
    /// cutoff and 0 Hz, Nyquist or the other cutoff).
    #[arg(long, value_name = "HZ", help_heading = "Filter")]
    pub transition: Option<f64>,
    /// Window of a windowed sinc (default: kaiser, beta from --attenuation;
    /// hamming, scipy.signal.firwin's default, with --taps).
    #[arg(long, value_enum, value_name = "WINDOW", help_heading = "Filter")]
    pub window: Option<WindowArg>,
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
    #[arg(
        long,
        value_name = "X",
        allow_negative_numbers = true,
        help_heading = "Detection"
    )]
    pub on: Option<f64>,
    /// Trigger-off level (default: the --on level).
    #[arg(
        long,
        value_name = "Y",
        allow_negative_numbers = true,
        help_heading = "Detection"
    )]
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
    /// What --detect threshold compares: y (pos), −y (neg: negative
    /// peaks, as spikes) or |y| (both, the default).
    #[arg(long, value_enum, help_heading = "Detection")]
    pub polarity: Option<PolarityArg>,
    /// Per-channel levels: trigger on at K × the channel's noise (the MAD
    /// of the filtered, referenced signal: median(|y − median(y)|) / 0.6745,
    /// over --noise-chunks chunks spread over the recording).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "K",
        conflicts_with = "on",
        help_heading = "Detection"
    )]
    pub on_noise: Option<f64>,
    /// Trigger off at K2 × the channel's noise (default: the --on-noise K).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "K2",
        conflicts_with = "off",
        requires = "on_noise",
        help_heading = "Detection"
    )]
    pub off_noise: Option<f64>,
    /// Chunks the noise is estimated from (SpikeInterface's
    /// num_chunks_per_segment).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 20,
        help_heading = "Detection"
    )]
    pub noise_chunks: usize,
    /// Samples per noise chunk (SpikeInterface's chunk_size).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 10_000,
        help_heading = "Detection"
    )]
    pub noise_chunk_samples: usize,
    /// Dead time (refractory period) in seconds: no new onset on a channel
    /// within S of its last one; a later crossing joins that event.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "S",
        conflicts_with = "dead_samples",
        help_heading = "Detection"
    )]
    pub dead_time: Option<f64>,
    /// Dead time in samples.
    #[arg(long, value_name = "N", help_heading = "Detection")]
    pub dead_samples: Option<usize>,
    /// Report a spike seen on neighbouring channels once, where its peak is
    /// largest: an event is dropped when a channel within --dedup-radius has
    /// a larger peak within S seconds of its own (SpikeInterface's
    /// locally_exclusive).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "S",
        conflicts_with = "dedup_samples",
        help_heading = "Detection"
    )]
    pub dedup_window: Option<f64>,
    /// The de-duplication window in samples.
    #[arg(long, value_name = "N", help_heading = "Detection")]
    pub dedup_samples: Option<u64>,
    /// Channels on either side that are neighbours for --dedup-window
    /// (default 2).
    #[arg(long, value_name = "N", help_heading = "Detection")]
    pub dedup_radius: Option<usize>,
    /// Network events: groups of channels triggering together whose summed
    /// weights reach S (ObsPy's coincidence_trigger thr_coincidence_sum);
    /// written to --network-events.
    #[arg(
        long,
        value_name = "S",
        allow_negative_numbers = true,
        help_heading = "Detection"
    )]
    pub coincidence_sum: Option<f64>,
    /// Seconds a trigger's end is extended by when looking for coincident
    /// ones (ObsPy's trigger_off_extension).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "SECONDS",
        default_value_t = 0.0,
        help_heading = "Detection"
    )]
    pub coincidence_window: f64,
    /// Each channel's weight in the coincidence sum (default 1 each).
    #[arg(
        long,
        value_name = "W,W,...",
        value_delimiter = ',',
        help_heading = "Detection"
    )]
    pub weights: Option<Vec<f64>>,
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
    /// Events: CSV (channel,start,end,peak_index,peak_value, ...; `-`:
    /// standard output), or Arrow IPC for .arrow/.feather, Parquet for
    /// .parquet, with the same columns.
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub events: Option<PathBuf>,
    /// Network events of --coincidence-sum as CSV (`-`: standard output).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub network_events: Option<PathBuf>,
    /// Process one shard, samples START to END (exclusive), for a scheduler
    /// (the Python package's Dask and Ray drivers use it): read with the
    /// halo the stages need, write samples START..END of the filtered
    /// signal in place into --output (created for the whole input if it is
    /// not there), and report the events that start in the shard (cut at
    /// sync points; --snippets: theirs, in the events' order). The shards'
    /// events sorted by start, channel and end (their snippets with them),
    /// and their slices, are the whole run's. See the README's "Shards".
    #[arg(long, value_name = "START:END", help_heading = "Outputs")]
    pub range: Option<crate::shard::SampleRange>,
    /// Snippets: the output signal around each event's peak, as an .npy of
    /// shape (events, PRE+POST, channels), float32 (complex64 for I/Q), in
    /// the order of the events CSV; zero-padded past the signal's ends
    /// (the CSV's snippet_padded column says where).
    #[arg(long, value_name = "FILE.npy", help_heading = "Outputs")]
    pub snippets: Option<PathBuf>,
    /// Samples of each snippet before the peak, and from the peak on.
    #[arg(
        long,
        value_name = "PRE:POST",
        allow_hyphen_values = true,
        help_heading = "Outputs"
    )]
    pub snippet_samples: Option<String>,
    /// Channels of each snippet: the event's own (own), or all of them.
    #[arg(long, value_enum, value_name = "WHICH", help_heading = "Outputs")]
    pub snippet_channels: Option<SnippetChannelsArg>,
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
    /// A front's own detector (the seed's `custom_detector(chunk,
    /// offset)`, Python's `custom_detector=`), run on every channel in
    /// place of `--detect`. Not a command-line option.
    #[arg(skip)]
    pub custom_detector: Option<CustomDetector>,
}

/// A front's own detector for [`ProcessOptions::custom_detector`]: builds
/// one [`crate::detect::Detector`] per channel.
#[derive(Clone)]
pub struct CustomDetector(pub crate::backend::DetectorFactory);

impl std::fmt::Debug for CustomDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomDetector")
    }
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

/// IIR families (scipy's ftype).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IirArg {
    /// Butterworth (ObsPy's filters).
    Butter,
    /// Chebyshev type I (--ripple).
    Cheby1,
    /// Chebyshev type II (--attenuation).
    Cheby2,
    /// Elliptic (--ripple, --attenuation).
    Ellip,
    /// Bessel, phase-normalised (scipy's default norm).
    Bessel,
}

/// Windows of a windowed-sinc design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WindowArg {
    /// Hamming: about 53 dB down, whatever the taps (firwin's default).
    Hamming,
    /// Kaiser: --attenuation dB down, beta = scipy.signal.kaiser_beta.
    Kaiser,
}

/// Zero-phase padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PadArg {
    /// Odd extension of padlen samples (sosfiltfilt's default).
    Odd,
    /// None (ObsPy's zerophase=True).
    None,
}

/// Channels on either side that are neighbours for `--dedup-window` when
/// `--dedup-radius` is not given: on a Neuropixels probe, whose channels
/// are numbered along the shank two sites to a row (rows 20 µm apart),
/// channels `c ± 2` are the sites of the same row and the next ones.
const DEFAULT_DEDUP_RADIUS: usize = 2;

/// Channels of a snippet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnippetChannelsArg {
    /// The event's own channel.
    Own,
    /// Every channel.
    All,
}

/// Common references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReferenceArg {
    /// The median across channels (CMR).
    Median,
    /// The mean across channels (CAR).
    Mean,
}

/// Threshold polarities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolarityArg {
    /// y: positive excursions.
    Pos,
    /// −y: negative excursions (spikes).
    Neg,
    /// |y|: both.
    Both,
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

impl ProcessOptions {
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
        if self.bandstop.is_some() && self.iir.is_none() && self.sos.is_none() {
            return Err(Error::usage(
                "--bandstop designs IIR filters only: give --iir butter (or another family)",
            ));
        }
        let designed_fir = self.iir.is_none()
            && self.sos.is_none()
            && (self.lowpass.is_some() || self.highpass.is_some() || self.bandpass.is_some());
        if !designed_fir {
            // They would be ignored: say so instead.
            let what = if self.iir.is_some() {
                "an --iir design has no taps or window"
            } else if self.sos.is_some() {
                "--sos filters have no taps or window"
            } else if self.kernel.is_some() || self.moving_average.is_some() {
                "--kernel and --moving-average give their taps"
            } else {
                "there is no filter"
            };
            for (set, name) in [
                (self.taps.is_some(), "--taps"),
                (self.transition.is_some(), "--transition"),
                (self.window.is_some(), "--window"),
            ] {
                if set {
                    return Err(Error::usage(format!(
                        "{name} designs the windowed sinc of --lowpass, --highpass or --bandpass; {what}"
                    )));
                }
            }
            if self.iir.is_none()
                && let Some(a) = self.attenuation
            {
                return Err(Error::usage(format!(
                    "--attenuation {a} shapes the Kaiser window of --lowpass, --highpass or --bandpass, or an --iir cheby2/ellip design; {what}"
                )));
            }
        }
        if self.iir.is_some() || self.sos.is_some() {
            return Ok(None);
        }
        let fir = FirDesign {
            taps: self.taps,
            window: self.window.map(|w| match w {
                WindowArg::Hamming => WindowKind::Hamming,
                WindowArg::Kaiser => WindowKind::Kaiser,
            }),
            transition: self.transition,
            attenuation: self.attenuation,
        };
        let spec = if let Some(path) = &self.kernel {
            Some(load_kernel_spec(path)?)
        } else if let Some(n) = self.moving_average {
            Some(FilterSpec::MovingAverage(n))
        } else if let Some(cutoff) = self.lowpass {
            Some(FilterSpec::Lowpass { cutoff, fir })
        } else if let Some(cutoff) = self.highpass {
            Some(FilterSpec::Highpass { cutoff, fir })
        } else if let Some(band) = &self.bandpass {
            let (low, high) = FilterSpec::parse_band(band)?;
            Some(FilterSpec::Bandpass { low, high, fir })
        } else {
            None
        };
        spec.as_ref().map(FilterSpec::validate).transpose()?;
        Ok(spec)
    }

    /// Checks the IIR options that need no input: an --iir with one band,
    /// --zero-phase and --pad only with an IIR filter.
    fn check_iir(&self) -> Result<()> {
        let bands = [
            self.lowpass.is_some(),
            self.highpass.is_some(),
            self.bandpass.is_some(),
            self.bandstop.is_some(),
        ];
        if self.iir.is_some() && !bands.contains(&true) {
            return Err(Error::usage(
                "--iir needs its band: --lowpass HZ, --highpass HZ, --bandpass LO:HI or --bandstop LO:HI",
            ));
        }
        let iir = self.iir.is_some() || self.sos.is_some();
        if self.zero_phase && !iir {
            return Err(Error::usage(
                "--zero-phase runs IIR filters (--iir, --sos) forwards and backwards; the FIR filters here are linear-phase, and --conv-mode same already removes their delay",
            ));
        }
        if self.pad != PadArg::Odd && !self.zero_phase {
            return Err(Error::usage("--pad applies to --zero-phase only"));
        }
        if self.zero_phase && self.decimate.is_some() {
            return Err(Error::usage(
                "--zero-phase with --decimate: not supported; decimate in a second run",
            ));
        }
        Ok(())
    }

    /// The snippet window and channels as given (`None` without
    /// `--snippets`); the scratch directory is set per input.
    fn snippet_spec(&self) -> Result<Option<SnippetSpec>> {
        let Some(path) = &self.snippets else {
            if self.snippet_samples.is_some() || self.snippet_channels.is_some() {
                return Err(Error::usage(
                    "--snippet-samples and --snippet-channels shape the --snippets FILE.npy: give --snippets",
                ));
            }
            return Ok(None);
        };
        if is_stdout(path) {
            return Err(Error::usage(
                "--snippets -: the snippets file's header is completed at the end, so it needs a file, not standard output",
            ));
        }
        if self.detect.is_none() {
            return Err(Error::usage(
                "--snippets cuts the signal around each event: it needs --detect",
            ));
        }
        let window = self.snippet_samples.as_deref().ok_or_else(|| {
            Error::usage("--snippets needs --snippet-samples PRE:POST (samples before the peak and from it on)")
        })?;
        let (pre, post) = SnippetSpec::parse_window(window)?;
        let channels = match self.snippet_channels {
            None | Some(SnippetChannelsArg::Own) => SnippetChannels::Own,
            Some(SnippetChannelsArg::All) => SnippetChannels::All,
        };
        SnippetSpec::new(pre, post, channels, PathBuf::new()).map(Some)
    }

    /// Checks the detection options that need no input.
    fn check_detection(&self) -> Result<()> {
        self.snippet_spec()?;
        if let Some(k) = self.on_noise {
            if self.detect != Some(DetectArg::Threshold) {
                return Err(Error::usage(
                    "--on-noise sets threshold levels: it needs --detect threshold",
                ));
            }
            if !(k.is_finite() && k > 0.0) {
                return Err(Error::usage(format!(
                    "--on-noise {k}: a positive number of noise levels"
                )));
            }
            if let Some(k2) = self.off_noise
                && !(k2.is_finite() && k2 >= 0.0)
            {
                return Err(Error::usage(format!(
                    "--off-noise {k2}: 0 or more noise levels"
                )));
            }
            self.noise_chunks().validate()?;
        }
        match (self.coincidence_sum, &self.network_events) {
            (Some(_), None) => {
                return Err(Error::usage(
                    "--coincidence-sum writes network events: give --network-events FILE",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::usage(
                    "--network-events needs --coincidence-sum S (and --detect)",
                ));
            }
            (Some(sum), Some(_)) if !(sum.is_finite() && sum > 0.0) => {
                return Err(Error::usage(format!(
                    "--coincidence-sum {sum}: a positive sum of weights"
                )));
            }
            _ => {}
        }
        if !(self.coincidence_window.is_finite() && self.coincidence_window >= 0.0) {
            return Err(Error::usage(format!(
                "--coincidence-window {}: 0 or more seconds",
                self.coincidence_window
            )));
        }
        if self.weights.is_some() && self.coincidence_sum.is_none() {
            return Err(Error::usage("--weights applies to --coincidence-sum only"));
        }
        Ok(())
    }

    /// The noise chunks as given.
    fn noise_chunks(&self) -> NoiseChunks {
        NoiseChunks {
            chunks: self.noise_chunks,
            chunk_samples: self.noise_chunk_samples,
        }
    }

    /// The coincidence of an input of `channels` channels at `rate` (the
    /// rate the detector sees).
    fn coincidence(&self, channels: usize, rate: Option<f64>) -> Result<Option<Coincidence>> {
        let Some(sum) = self.coincidence_sum else {
            return Ok(None);
        };
        let extension = if self.coincidence_window > 0.0 {
            let fs = rate.ok_or_else(|| {
                Error::usage(
                    "--coincidence-window is in seconds: the input has no sample rate, give --sample-rate HZ",
                )
            })?;
            (self.coincidence_window * fs).round() as u64
        } else {
            0
        };
        let weights = match &self.weights {
            Some(w) if w.len() != channels => {
                return Err(Error::usage(format!(
                    "--weights gives {} weights for {channels} channels",
                    w.len()
                )));
            }
            Some(w) => w.clone(),
            None => vec![1.0; channels],
        };
        Coincidence::new(weights, sum, extension, DEFAULT_MAX_PENDING).map(Some)
    }

    /// The IIR filter for an input of `sample_rate` (designed, or read
    /// from --sos), with its description for the report.
    fn iir(&self, sample_rate: Option<f64>) -> Result<Option<(Sos, Value)>> {
        if let Some(path) = &self.sos {
            let sos = Sos::load(path)?;
            let about = json!({
                "kind": "sos",
                "file": path,
                "sections": sos.len(),
            });
            return Ok(Some((sos, about)));
        }
        let Some(family) = self.iir else {
            return Ok(None);
        };
        let family = match family {
            IirArg::Butter => Family::Butter,
            IirArg::Cheby1 => Family::Cheby1 { rp: self.ripple },
            IirArg::Cheby2 => Family::Cheby2 {
                rs: self.attenuation.unwrap_or(DEFAULT_ATTENUATION_DB),
            },
            IirArg::Ellip => Family::Ellip {
                rp: self.ripple,
                rs: self.attenuation.unwrap_or(DEFAULT_ATTENUATION_DB),
            },
            IirArg::Bessel => Family::Bessel,
        };
        let band = if let Some(f) = self.lowpass {
            Band::Lowpass(f)
        } else if let Some(f) = self.highpass {
            Band::Highpass(f)
        } else if let Some(b) = &self.bandpass {
            let (lo, hi) = FilterSpec::parse_band(b)?;
            Band::Bandpass(lo, hi)
        } else if let Some(b) = &self.bandstop {
            let (lo, hi) = FilterSpec::parse_band(b)
                .map_err(|e| Error::usage(e.to_string().replace("--bandpass", "--bandstop")))?;
            Band::Bandstop(lo, hi)
        } else {
            return Err(Error::usage("--iir needs its band"));
        };
        let fs = sample_rate.ok_or_else(|| {
            Error::usage("--iir designs in Hz: the input has no sample rate, give --sample-rate HZ")
        })?;
        let sos = Sos::new(design::iirfilter(family, self.order, band, fs)?)?;
        let about = json!({
            "kind": "iir",
            "family": family.name(),
            "order": self.order,
            "band": band,
            "ripple_db": matches!(family, Family::Cheby1 { .. } | Family::Ellip { .. }).then_some(self.ripple),
            "attenuation_db": matches!(family, Family::Cheby2 { .. } | Family::Ellip { .. }).then_some(self.attenuation.unwrap_or(DEFAULT_ATTENUATION_DB)),
            "sections": sos.len(),
        });
        Ok(Some((sos, about)))
    }

    /// The de-duplication for a detector that sees `rate` Hz, or `None`.
    fn dedup(&self, rate: Option<f64>) -> Result<Option<DedupSpec>> {
        let window = match (self.dedup_window, self.dedup_samples) {
            (None, None) => {
                if self.dedup_radius.is_some() {
                    return Err(Error::usage(
                        "--dedup-radius sets the neighbours of --dedup-window: give --dedup-window S or --dedup-samples N",
                    ));
                }
                return Ok(None);
            }
            (_, Some(n)) => n,
            (Some(s), None) => {
                if !(s.is_finite() && s >= 0.0) {
                    return Err(Error::usage(format!(
                        "--dedup-window {s}: 0 or more seconds"
                    )));
                }
                let fs = rate.ok_or_else(|| {
                    Error::usage(
                        "--dedup-window is in seconds: the input has no sample rate, give --sample-rate HZ or --dedup-samples N",
                    )
                })?;
                let n = (s * fs).round();
                if n >= u64::MAX as f64 {
                    return Err(Error::usage(format!(
                        "--dedup-window {s}: too long at {fs} Hz"
                    )));
                }
                n as u64
            }
        };
        DedupSpec::new(window, self.dedup_radius.unwrap_or(DEFAULT_DEDUP_RADIUS)).map(Some)
    }

    /// The detector options as given.
    fn detector_options(&self) -> DetectorOptions {
        let window = |n: Option<usize>, s: Option<f64>| {
            n.map(WindowLen::Samples)
                .or_else(|| s.map(WindowLen::Seconds))
        };
        // With --on-noise the levels are set per channel once the noise is
        // known; 1 stands for them until then.
        let noise = self.on_noise.map(|_| 1.0);
        DetectorOptions {
            on: self.on.or(noise),
            off: self.off.or(noise),
            sta: window(self.sta, self.sta_seconds),
            lta: window(self.lta, self.lta_seconds),
            max_len: self.max_len,
            polarity: self.polarity.map(|p| match p {
                PolarityArg::Pos => Polarity::Pos,
                PolarityArg::Neg => Polarity::Neg,
                PolarityArg::Both => Polarity::Both,
            }),
            dead: window(self.dead_samples, self.dead_time),
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
                (self.polarity.is_some(), "--polarity"),
                (self.on_noise.is_some(), "--on-noise"),
                (
                    self.dead_time.is_some() || self.dead_samples.is_some(),
                    "--dead-time",
                ),
                (self.coincidence_sum.is_some(), "--coincidence-sum"),
                (
                    self.dedup_window.is_some() || self.dedup_samples.is_some(),
                    "--dedup-window",
                ),
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
    fn job(
        &self,
        filter: Option<&FilterSpec>,
        info: &SignalInfo,
        observer: &mut dyn Observer,
    ) -> Result<Planned> {
        if let Some(f) = filter {
            // The taps are counted (for a designed filter, from the sample
            // rate) and their memory checked before any is computed.
            let limit = memory_limit(self.run.memory_limit)?;
            let plan = f.fir_plan(info.sample_rate)?;
            let taps = match plan {
                Some(plan) => plan.taps,
                None => f.num_taps(info.sample_rate)?,
            };
            crate::pipeline::budget::check_kernel(taps, info.channels, limit.bytes).map_err(
                |e| match (e, plan) {
                    (
                        Error::Usage { msg },
                        Some(FirPlan {
                            transition: Some(t),
                            ..
                        }),
                    ) => Error::usage(format!(
                        "{msg} (the {taps} taps are the fewest for a transition band of {t} Hz: a wider --transition, or a lower --attenuation, needs fewer)"
                    )),
                    (e, _) => e,
                },
            )?;
        }
        let designed = filter.map(|f| f.design(info.sample_rate)).transpose()?;
        for warning in designed.iter().flat_map(|d| &d.warnings) {
            observer.warn(&info.path, &warning.to_string(), false);
        }
        let (kernel, kernel_imag, fir) = match designed {
            Some(d) => (Some(d.taps), d.taps_imag, d.fir),
            None => (None, None, None),
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
        let iir = self.iir(info.sample_rate)?;
        let (iir, iir_about, zero_phase) = match iir {
            Some((sos, about)) if self.zero_phase => (None, Some(about), Some(sos)),
            Some((sos, about)) => (Some(sos), Some(about), None),
            None => (None, None, None),
        };
        let job = Job {
            kernel,
            kernel_imag,
            iir,
            reference: self.reference.map(|r| match r {
                ReferenceArg::Median => Reference::Median,
                ReferenceArg::Mean => Reference::Mean,
            }),
            shift,
            decimate: self.decimate,
            complex: info.complex,
            conv_mode: match self.conv_mode {
                ConvModeArg::Full => ConvMode::Full,
                ConvModeArg::Same => ConvMode::Same,
                ConvModeArg::Valid => ConvMode::Valid,
            },
            detector,
            dedup: self.dedup(output_rate(info.sample_rate, self.decimate))?,
            ..Job::default()
        };
        // Checked here, where the input is known, so the message names it.
        job.validate()?;
        Ok(Planned {
            job,
            fir,
            iir_about,
            zero_phase,
        })
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
        for (name, given) in [
            ("-o", &self.output),
            ("--events", &self.events),
            ("--network-events", &self.network_events),
            ("--snippets", &self.snippets),
        ] {
            if let Some(p) = given
                && is_stdout(p)
                && (several || self.output_dir.is_some())
            {
                return Err(Error::usage(format!(
                    "{name} - (standard output) takes a single input and no --output-dir"
                )));
            }
        }
        if several
            && self.output_dir.is_none()
            && (self.output.is_some()
                || self.events.is_some()
                || self.network_events.is_some()
                || self.snippets.is_some())
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
            for (name, given) in [
                ("-o", &self.output),
                ("--events", &self.events),
                ("--network-events", &self.network_events),
                ("--snippets", &self.snippets),
            ] {
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
        crate::sink::check_outputs(&inputs, &refs)
    }
}

/// What [`ProcessArgs::job`] plans for one input.
struct Planned {
    /// The job the pipeline runs (without a zero-phase filter: that feeds
    /// it, or runs before, see [`zerophase`]).
    job: Job,
    /// A designed FIR filter's length and window, for the report.
    fir: Option<FirPlan>,
    /// The IIR filter, for the report.
    iir_about: Option<Value>,
    /// The IIR filter run forwards and backwards ahead of the pipeline.
    zero_phase: Option<Sos>,
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

/// Each channel's noise for --on-noise, before the streaming pass: from a
/// second reader of the same frames when they can be read at random
/// (regular files; the zero-phase result), else from the first frames,
/// spooled and replayed (`source` then reads them again before the rest).
fn estimate_noise<'s>(
    args: &ProcessOptions,
    processor: &StreamProcessor,
    source: &mut Box<dyn ChunkSource + 's>,
    zero_phased: &ZeroPhased<'_>,
    span_info: &SignalInfo,
    (input, opts): (&Path, &SourceOptions),
    dir: PathBuf,
) -> Result<NoiseLevels> {
    let plan = args.noise_chunks();
    let config = processor.config();
    let block = config.chunk_size.unwrap_or(NOISE_BLOCK);
    let job = processor.job();
    let mut limit = memory_limit(args.run.memory_limit)?;
    let threads = config.threads;
    let mut zero_phase_warm = 0;
    if source.seekable() {
        let mut second: Box<dyn ChunkSource> = match zero_phased {
            ZeroPhased::Scratch(filtered) => filtered.source(span_info)?,
            ZeroPhased::Streaming {
                sos,
                pad,
                plan: stream,
            } => {
                // A second stream of the zero-phase result, over a second
                // reader of the input, sought to each chunk; in blocks as
                // long as a chunk when they fit (one block per chunk, not
                // two). Its restarts forget the state to the noise
                // estimate's own level (1e-7 of the scale,
                // `noise::settle_len`, as its other filters' warm-ups do)
                // rather than the stream's 1e-20: the values are the
                // stream's up to that, wherever the restarts fall.
                let warm = noise::settle_len(sos).min(stream.warm);
                zero_phase_warm = warm;
                let chunk = StreamPlan {
                    grid: stream
                        .grid
                        .max(plan.chunk_samples.saturating_add(job.taps())),
                    warm,
                    ..*stream
                };
                let channels = span_info.channels;
                let fits = chunk.bytes(sos, channels) <= zero_phase_room(config);
                let stream = if fits {
                    chunk
                } else {
                    StreamPlan { warm, ..*stream }
                };
                // The main stream allocates on its first read, after this.
                limit.bytes = limit.bytes.saturating_sub(stream.bytes(sos, channels));
                Box::new(zerophase::Streaming::new(
                    source::open(input, opts)?,
                    sos,
                    *pad,
                    stream,
                    threads,
                )?)
            }
            ZeroPhased::No => source::open(input, opts)?,
        };
        if second.seekable() {
            let mut levels = noise::estimate(
                second.as_mut(),
                job,
                processor.backend(),
                &plan,
                block,
                threads,
                &dir,
                false,
                limit.bytes,
            )?;
            // The zero-phase stream's warm-up, before (and after) each chunk.
            levels.warmup += zero_phase_warm;
            return Ok(levels);
        }
    }
    let frames = (plan.chunks as u64).saturating_mul(plan.chunk_samples as u64);
    let taken = std::mem::replace(source, Box::new(EmptySource(span_info.clone())));
    let (mut prefix, chain) = noise::spool_prefix(taken, frames, block, &dir)?;
    *source = chain;
    noise::estimate(
        prefix.as_mut(),
        job,
        processor.backend(),
        &plan,
        block,
        threads,
        &dir,
        true,
        limit.bytes,
    )
}

/// How the zero-phase filter runs for one input, if it does.
enum ZeroPhased<'a> {
    /// No zero-phase filter.
    No,
    /// As a stream ([`zerophase::Streaming`]), which holds
    /// [`StreamPlan::bytes`].
    Streaming {
        sos: &'a Sos,
        pad: Pad,
        plan: StreamPlan,
    },
    /// Done, through a scratch file.
    Scratch(zerophase::Filtered),
}

/// Bytes of the memory limit the streaming zero-phase filter may take:
/// half of what is left after the process's baseline (the pipeline it
/// feeds plans within the rest).
fn zero_phase_room(config: &StreamConfig) -> u64 {
    use crate::pipeline::budget::BASELINE_BYTES;
    config.memory_limit.saturating_sub(BASELINE_BYTES) / 2
}

/// Frames per block of the noise estimate's reads without --chunk-size.
const NOISE_BLOCK: usize = 4096;

/// A source with no frames (stands in while the real one is spooled).
struct EmptySource(SignalInfo);

impl ChunkSource for EmptySource {
    fn info(&self) -> &SignalInfo {
        &self.0
    }
    fn read_block(&mut self, block: &mut crate::pool::Block) -> Result<usize> {
        block.set_frames(0);
        Ok(0)
    }
}

/// The job's threshold with each channel's levels at `k` and `k2` times its
/// noise; a channel whose noise is 0 or undefined (constant, or no finite
/// sample) gets levels nothing reaches, with a warning.
fn noise_detector(
    job: &Job,
    levels: &[f64],
    k: f64,
    k2: f64,
    input: &Path,
    observer: &mut dyn Observer,
) -> DetectorChoice {
    let base = job
        .detector
        .as_ref()
        .and_then(|d| d.specs().first().cloned())
        .expect("--on-noise comes with --detect threshold (checked)");
    let mut silent = Vec::new();
    let specs: Vec<DetectorSpec> = levels
        .iter()
        .enumerate()
        .map(|(c, &n)| {
            if n.is_finite() && n > 0.0 {
                base.with_levels(k * n, k2 * n)
            } else {
                silent.push(c);
                base.with_levels(f64::MAX, f64::MAX)
            }
        })
        .collect();
    if !silent.is_empty() {
        observer.warn(
            input,
            &format!(
                "channels {silent:?} have no noise (constant or not finite where it was estimated): nothing is detected on them"
            ),
            false,
        );
    }
    DetectorChoice::PerChannel(specs.into())
}

/// Where the zero-phase scratch file goes: beside the signal output, else
/// beside the events, else in the temporary directory.
fn scratch_dir(signal: Option<&Path>, events: Option<&Path>) -> PathBuf {
    [signal, events]
        .into_iter()
        .flatten()
        .find(|p| !is_stdout(p))
        .map_or_else(std::env::temp_dir, |p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        })
}

/// Output frames of `job` over `frames` input frames (when known): the
/// convolution mode's count, then the decimation's `ceil(n / N)`.
fn output_frames(job: &Job, frames: Option<u64>, decimate: Option<usize>) -> Option<u64> {
    let n = frames?;
    let taps = job.taps();
    let n = if taps as u64 <= n {
        job.conv_mode.output_len(n, taps)
    } else {
        n
    };
    Some(match decimate {
        Some(d) if d > 1 => n.div_ceil(d as u64),
        _ => n,
    })
}

/// The window of the zero-phase passes: the given chunk size, else the
/// largest (up to the pipeline's largest chunk) whose buffers fit the
/// memory limit.
fn zero_phase_window(
    config: &StreamConfig,
    sos: &Sos,
    channels: usize,
    strict: bool,
) -> Result<usize> {
    use crate::pipeline::budget::BASELINE_BYTES;
    use crate::pipeline::{MAX_CHUNK_FRAMES, MIN_CHUNK_FRAMES};
    if let Some(n) = config.chunk_size {
        return Ok(n);
    }
    let fits = |w: usize| {
        BASELINE_BYTES.saturating_add(zerophase::bytes(sos, channels, w)) <= config.memory_limit
    };
    let mut w = MAX_CHUNK_FRAMES;
    while w > MIN_CHUNK_FRAMES && !fits(w) {
        w /= 2;
    }
    if !fits(w) && strict {
        let need = BASELINE_BYTES.saturating_add(zerophase::bytes(sos, channels, w));
        return Err(Error::usage(format!(
            "--memory-limit {} MB: the zero-phase passes over {channels} channels need at least {} MB",
            config.memory_limit >> 20,
            need.div_ceil(1 << 20)
        )));
    }
    Ok(w)
}

/// Threads for stages that split channels (none for one thread).
fn stage_pool(threads: usize) -> Result<Option<std::sync::Arc<rayon::ThreadPool>>> {
    if threads <= 1 {
        return Ok(None);
    }
    crate::pipeline::worker_pool(threads).map(Some)
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

/// What a front hears while an input is processed.
pub trait Observer {
    /// A warning about `input`, as the CLI prints it:
    /// `sigstream: warning: <input>: <msg>` (`note` instead of `warning`
    /// for `is_note`).
    fn warn(&mut self, input: &Path, msg: &str, is_note: bool);
    /// An input's run starts; `total` is its frames when known.
    fn start(&mut self, input: &Path, total: Option<u64>) {
        let _ = (input, total);
    }
    /// Frames of the current input done so far (called after every
    /// chunk). An error stops the run (the outputs are abandoned) and is
    /// what [`Prepared::process`] returns: a front's way to interrupt.
    ///
    /// # Errors
    /// Whatever the front wants the run to stop with
    /// ([`Error::Interrupted`]).
    fn progress(&mut self, done: u64) -> Result<()> {
        let _ = done;
        Ok(())
    }
    /// The run is done and its outputs are about to be committed: an
    /// error here abandons them and is what [`Prepared::process`] returns
    /// (a front's detector that failed in the last samples, after the last
    /// progress call).
    ///
    /// # Errors
    /// Whatever the front wants the run to fail with.
    fn before_commit(&mut self) -> Result<()> {
        Ok(())
    }
    /// The current input's run ended (successfully or not).
    fn finish(&mut self) {}
}

/// An [`Observer`] that hears nothing.
#[derive(Debug, Default)]
pub struct Silent;

impl Observer for Silent {
    fn warn(&mut self, _: &Path, _: &str, _: bool) {}
}

/// The events of a run in memory: the events file's schema and its record
/// batches ([`Prepared::process_collecting`]).
pub type EventTable = (
    crate::sink::events::SchemaRef,
    Vec<crate::sink::events::RecordBatch>,
);

/// A [`ProcessOptions`] checked for everything that does not depend on the
/// inputs' contents, with its backend open: ready to process its inputs
/// one by one ([`Prepared::process`]).
pub struct Prepared<'a> {
    options: &'a ProcessOptions,
    inputs: Vec<PathBuf>,
    source: SourceOptions,
    config: StreamConfig,
    filter: Option<FilterSpec>,
    backend: std::sync::Arc<dyn crate::backend::Backend>,
}

impl std::fmt::Debug for Prepared<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("inputs", &self.inputs)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl ProcessOptions {
    /// Parses options given as `(name, value)` pairs, named as the CLI's
    /// long options without their dashes (`_` or `-` between words:
    /// `("zero_phase", "true")`, `("bandpass", "300:6000")`), with the
    /// CLI's definitions: the same defaults, value checks and messages.
    /// A flag takes `"true"` or `"false"`; an option that repeats takes
    /// its values separated by commas where the CLI's does, or one pair
    /// per value. `inputs` are the input paths.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the option, for an unknown option or a value
    /// the CLI would refuse.
    pub fn from_pairs<I, K, V>(inputs: &[PathBuf], pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        use clap::{CommandFactory, FromArgMatches};
        #[derive(clap::Parser)]
        #[command(name = "process", no_binary_name = true, disable_help_flag = true)]
        struct Wrapper {
            #[command(flatten)]
            options: ProcessOptions,
        }
        let cmd = Wrapper::command();
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        for (key, value) in pairs {
            let key = key.as_ref().replace('_', "-");
            let value = value.as_ref();
            let flag = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(key.as_str()))
                .ok_or_else(|| Error::usage(format!("{key}: no such option of process")))?;
            if !flag.get_action().takes_values() {
                match value {
                    "true" => argv.push(format!("--{key}").into()),
                    "false" => {}
                    other => {
                        return Err(Error::usage(format!(
                            "{key} is a flag: true or false, not {other:?}"
                        )));
                    }
                }
            } else {
                argv.push(format!("--{key}={value}").into());
            }
        }
        argv.extend(inputs.iter().map(|p| p.as_os_str().to_owned()));
        let matches = cmd
            .try_get_matches_from(argv)
            .map_err(|e| Error::usage(clap_message(&e)))?;
        let w = Wrapper::from_arg_matches(&matches).map_err(|e| Error::usage(clap_message(&e)))?;
        Ok(w.options)
    }

    /// The length of `input` in samples, as these options read it (`None`
    /// for a stream, or a miniSEED file split at its gaps): what a driver
    /// cuts into shards ([`crate::shard::SampleRange::split`]).
    ///
    /// # Errors
    /// Anything about opening the input (named).
    pub fn input_frames(&self, input: &Path) -> Result<Option<u64>> {
        let opts = self.input.source_options()?;
        Ok(match source::open_input(input, &opts)? {
            Input::Stream(s) => s.info().frames,
            Input::Segmented(_) => None,
        })
    }

    /// The de-duplication these options ask for on `input` (its window in
    /// samples at the input's rate), or `None`: what a driver applies to
    /// its shards' merged events ([`crate::detect::dedup::keep`]), since a
    /// shard cannot.
    ///
    /// # Errors
    /// The options' own (`--dedup-window` without a rate, ...), and
    /// anything about opening the input (named).
    pub fn dedup_spec(&self, input: &Path) -> Result<Option<DedupSpec>> {
        if self.dedup_window.is_none() && self.dedup_samples.is_none() {
            return self.dedup(None);
        }
        let opts = self.input.source_options()?;
        let info = match source::open_input(input, &opts)? {
            Input::Stream(s) => s.info().clone(),
            Input::Segmented(rec) => rec.span_source(0).info().clone(),
        };
        self.dedup(output_rate(info.sample_rate, self.decimate))
    }

    /// Creates `output`, the filtered output of `input` that shards
    /// (`--range`) write into, with its header for the whole input
    /// ([`crate::shard::create_output`]); a driver calls it before its
    /// shards run. Does nothing if a file is there.
    ///
    /// # Errors
    /// Anything about opening the input (named), or making the file; and
    /// options a shard refuses (`--decimate`).
    pub fn create_shared_output(&self, input: &Path, output: &Path) -> Result<()> {
        if self.decimate.is_some_and(|n| n > 1) {
            return Err(Error::usage(
                "--range with --decimate: the decimated grid follows the stream's start; decimate the merged output",
            ));
        }
        let opts = self.input.source_options()?;
        let Input::Stream(s) = source::open_input(input, &opts)? else {
            return Err(Error::format(
                input,
                "a shard seeks to its start: give a file of fixed-size frames (not standard input, miniSEED or FLAC)",
            ));
        };
        let info = s.info();
        let frames = info
            .frames
            .ok_or_else(|| Error::format(input, "a stream has no length to cut into shards"))?;
        crate::shard::create_output(
            output,
            info.channels,
            info.complex,
            info.sample_rate,
            frames,
        )
        .map(|_| ())
    }

    /// Checks everything that needs no input file and opens the backend.
    ///
    /// # Errors
    /// The first option that is refused, a missing input, an output that
    /// would overwrite an input, a backend that cannot be opened.
    pub fn prepare(&self) -> Result<Prepared<'_>> {
        let args = self;
        args.run.validate()?;
        let source = args.input.source_options()?;
        let config = args.stream_config()?;
        let filter = args.filter_spec()?;
        // Validate what does not depend on the input before touching any file.
        args.detector(args.input.sample_rate.or(Some(1.0)))?;
        args.check_iir()?;
        args.check_detection()?;
        if let Some(path) = &args.sos {
            Sos::load(path)?;
        }
        if let Some(n) = args.decimate {
            crate::filter::resample::check_factor(n)?;
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
        Ok(Prepared {
            options: self,
            inputs,
            source,
            config,
            filter,
            backend,
        })
    }
}

/// clap's message without its "error: " prefix and usage lines.
fn clap_message(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.trim_start_matches("error: ").to_string()
}

impl Prepared<'_> {
    /// The inputs, directories expanded.
    pub fn inputs(&self) -> &[PathBuf] {
        &self.inputs
    }

    /// The backend the inputs run on.
    pub fn backend(&self) -> &std::sync::Arc<dyn crate::backend::Backend> {
        &self.backend
    }

    /// Processes one input: its outputs are committed together when it
    /// succeeds, and none is left when it fails. Returns the input's entry
    /// of the report (`sigstream process --report`'s `inputs[i]`) and its
    /// statistics.
    ///
    /// # Errors
    /// Anything about the input (named), its outputs or the run.
    pub fn process(
        &self,
        input: &Path,
        observer: &mut dyn Observer,
    ) -> Result<(Map<String, Value>, Stats)> {
        self.run(input, None, observer, false)
            .map(|(entry, stats, _)| (entry, stats))
    }

    /// As [`Prepared::process`], and with detection, the events in memory
    /// too ([`EventBatches`]: the events file's columns, as record
    /// batches), for a front that hands them over as a table.
    ///
    /// # Errors
    /// As [`Prepared::process`].
    pub fn process_collecting(
        &self,
        input: &Path,
        observer: &mut dyn Observer,
    ) -> Result<(Map<String, Value>, Stats, Option<EventTable>)> {
        self.run(input, None, observer, true)
    }

    /// As [`Prepared::process_collecting`], over an opened `source` (an
    /// array in memory: [`crate::pipeline::MemorySource`]) named `name` in
    /// messages and the report. The input options do not apply to it.
    ///
    /// # Errors
    /// As [`Prepared::process`].
    pub fn process_source<'s>(
        &self,
        name: &Path,
        source: Box<dyn ChunkSource + 's>,
        observer: &mut dyn Observer,
    ) -> Result<(Map<String, Value>, Stats, Option<EventTable>)> {
        self.run(name, Some(source), observer, true)
    }

    /// Runs `input` (opened here, or `opened`), its events collected in
    /// memory too when `collect`.
    fn run<'s>(
        &self,
        input: &Path,
        opened: Option<Box<dyn ChunkSource + 's>>,
        observer: &mut dyn Observer,
        collect: bool,
    ) -> Result<(Map<String, Value>, Stats, Option<EventTable>)> {
        let processor = |job: Job| {
            StreamProcessor::new(self.config.clone(), job).with_backend(self.backend.clone())
        };
        let result = process_one(
            self.options,
            self.filter.as_ref(),
            input,
            opened,
            &self.source,
            processor,
            observer,
            collect,
        );
        observer.finish();
        result
    }
}

/// The contiguous spans of one input: the input itself, or a miniSEED
/// file's segments (`--gaps split`), each run with fresh state.
enum Spans<'s> {
    One(Option<Box<dyn ChunkSource + 's>>),
    Segmented(Box<Recording>),
}

impl<'s> Spans<'s> {
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

    fn source(&mut self, i: usize) -> Box<dyn ChunkSource + 's> {
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
    fn write(&mut self, block: &crate::pool::Block) -> Result<()> {
        self.0.write(block)
    }
    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// Plans the shard `range` of `input` (`--range`), refusing what cannot be
/// cut into shards (see [`crate::shard`]).
fn shard_plan(
    args: &ProcessOptions,
    planned: &Planned,
    spans: &Spans<'_>,
    info: &SignalInfo,
    range: crate::shard::SampleRange,
) -> Result<crate::shard::ShardPlan> {
    let refuse = |what: &str, why: &str| Err(Error::usage(format!("--range with {what}: {why}")));
    if let Some(sos) = &planned.zero_phase {
        // A shard reproduces the streaming filter (its blocks and restarts
        // are on fixed grids, `zerophase::Streaming::exact_seeks`), not the
        // two passes through a scratch file.
        let room = zero_phase_room(&args.stream_config()?);
        if zerophase::StreamPlan::fit(sos, info.channels, room).is_none() {
            return refuse(
                "--zero-phase",
                &format!(
                    "the memory limit leaves the streaming filter too little room for {} channels of this filter, and the two passes through a scratch file start at the file's end: raise --memory-limit",
                    info.channels
                ),
            );
        }
    }
    if args.network_events.is_some() {
        return refuse(
            "--network-events",
            "coincidence groups all channels' triggers over a window a shard boundary may split; run it on the merged events",
        );
    }
    if args.custom_detector.is_some() {
        return refuse(
            "a custom detector",
            "its events cannot be cut at sync points",
        );
    }
    if let (Some(on), Some(off)) = (args.on_noise, args.off_noise)
        && off > on
    {
        return refuse(
            "--off-noise above --on-noise",
            "an event then lasts until a later run above the off level, so no quiet stretch ends it",
        );
    }
    if matches!(spans, Spans::Segmented(_)) || info.frames.is_none() {
        return Err(Error::format(
            &info.path,
            "--range: a shard seeks to its start: give a file of fixed-size frames (not standard input, miniSEED or FLAC)",
        ));
    }
    let frames = info.frames.expect("checked");
    if range.end > frames {
        return Err(Error::format(
            &info.path,
            format!(
                "--range {}:{}: the input has {frames} samples",
                range.start, range.end
            ),
        ));
    }
    let mut job = planned.job.clone();
    job.complex = info.complex;
    crate::shard::plan(&job, info.channels, frames, range)
}

/// Processes one input with all its outputs; returns its report entry.
#[expect(
    clippy::too_many_arguments,
    reason = "the prepared run's parts, the input and how it is heard"
)]
fn process_one<'s>(
    args: &ProcessOptions,
    filter: Option<&FilterSpec>,
    input: &Path,
    opened: Option<Box<dyn ChunkSource + 's>>,
    opts: &SourceOptions,
    make_processor: impl Fn(Job) -> StreamProcessor,
    observer: &mut dyn Observer,
    collect: bool,
) -> Result<(Map<String, Value>, Stats, Option<EventTable>)> {
    // This input's outputs are renamed into place together, at the end.
    let written = Transaction::begin();
    let mut spans: Spans<'s> = match opened {
        Some(s) => Spans::One(Some(s)),
        None => match source::open_input(input, opts)? {
            Input::Stream(s) => Spans::One(Some(s)),
            Input::Segmented(rec) => Spans::Segmented(rec),
        },
    };
    let info = spans.info(0);
    if let Spans::Segmented(rec) = &spans {
        for (id, n) in rec.dropped() {
            observer.warn(
                input,
                &format!(
                    "{n} samples of {id} are not processed: they repeat overlapping records, or (--gaps split, several channels) fall where not every selected channel has data"
                ),
                false,
            );
        }
    }
    // Option errors that depend on this input (no sample rate, ...) name it.
    let mut planned = args
        .job(filter, &info, observer)
        .map_err(about_input(input))?;
    let snippet_path = args.snippets.as_ref().map(|o| args.output_path(o, input));
    if let (Some(spec), Some(path)) = (args.snippet_spec()?, &snippet_path) {
        let window = spec.window() as u64;
        let frames = output_frames(&planned.job, info.frames, args.decimate);
        if let Some(n) = frames.filter(|&n| n < window) {
            return Err(Error::format(
                input,
                format!(
                    "--snippet-samples {}:{}: a window of {window} samples is longer than the {n} samples of the output",
                    spec.pre, spec.post
                ),
            ));
        }
        planned.job.snippets = Some(SnippetSpec {
            scratch_dir: scratch_dir(Some(path), None),
            ..spec
        });
    }
    if planned.zero_phase.is_some() && input == Path::new("-") {
        return Err(Error::usage(
            "-: --zero-phase reads its input twice (forwards, then its filtered copy backwards): give a file, not standard input",
        ));
    }
    if args.on_noise.is_some() && info.complex {
        return Err(Error::usage(format!(
            "{}: --on-noise estimates the noise of real channels; this signal is complex (I/Q)",
            input.display()
        )));
    }
    if let Some(custom) = &args.custom_detector {
        if args.detect.is_some() {
            return Err(Error::usage(
                "a custom detector runs in place of --detect: give one or the other",
            ));
        }
        planned.job.detector = Some(DetectorChoice::Custom(custom.0.clone()));
    }
    let shard = match args.range {
        Some(range) => Some(shard_plan(args, &planned, &spans, &info, range)?),
        None => None,
    };
    let make_processor = |job: Job| {
        let p = make_processor(job);
        match &shard {
            Some(plan) => p.with_shard(plan.clone()),
            None => p,
        }
    };
    let mut processor = make_processor(planned.job.clone());
    let signal_path = args.output.as_ref().map(|o| args.output_path(o, input));
    let events_path = args.events.as_ref().map(|o| args.output_path(o, input));
    let out_rate = output_rate(info.sample_rate, args.decimate);
    let mut signal = signal_path
        .as_ref()
        .map(|p| match &shard {
            Some(plan) => {
                crate::shard::open_shared_output(p, info.channels, info.complex, out_rate, plan)
            }
            None => open_signal_sink(p, info.channels, info.complex, out_rate),
        })
        .transpose()?;
    let mut csv = events_path
        .as_ref()
        .map(|p| {
            crate::sink::events::create(
                p,
                output_clock(&info, args.decimate),
                snippet_path.is_some(),
            )
        })
        .transpose()?;
    let detects = args.detect.is_some() || args.custom_detector.is_some();
    let mut collected = (collect && detects)
        .then(|| EventBatches::new(output_clock(&info, args.decimate), snippet_path.is_some()));
    let mut snippets = match (&planned.job.snippets, &snippet_path) {
        (Some(spec), Some(path)) => Some(NpyArrayWriter::create_typed(
            path,
            &[spec.window(), spec.columns(info.signal_channels())],
            info.complex,
        )?),
        _ => None,
    };
    let network_path = args
        .network_events
        .as_ref()
        .map(|o| args.output_path(o, input));
    let mut network = match &network_path {
        Some(path) => {
            if spans.count() > 1 {
                return Err(Error::format(
                    input,
                    format!(
                        "{} segments: coincidence needs one time axis for all channels; read the gaps with --gaps fill",
                        spans.count()
                    ),
                ));
            }
            let coincidence = args
                .coincidence(info.signal_channels(), out_rate)
                .map_err(about_input(input))?
                .expect("--network-events comes with --coincidence-sum (checked)");
            Some(CoincidenceSink::create(
                path,
                coincidence,
                output_clock(&info, args.decimate),
            )?)
        }
        None => None,
    };
    let mut noise: Option<NoiseLevels> = None;
    let total_frames = match &spans {
        Spans::One(_) => info.frames,
        Spans::Segmented(rec) => Some(rec.span_summaries().iter().map(|s| s.samples).sum()),
    };
    observer.start(input, total_frames);
    let started = std::time::Instant::now();
    let mut stats = Stats::default();
    let mut done = 0u64;
    let mut skipped = 0usize;
    let mut stats_scratch = 0u64;
    let mut stream_plan: Option<StreamPlan> = None;
    let taps = processor.job().taps() as u64;
    for i in 0..spans.count() {
        let span_info = spans.info(i);
        if spans.count() > 1 && span_info.frames.is_some_and(|n| n < taps) {
            // A segment shorter than the kernel cannot be filtered alone.
            skipped += 1;
            continue;
        }
        let mut source = spans.source(i);
        let mut scratch_bytes = 0;
        let mut zero_phased = ZeroPhased::No;
        if let Some(sos) = &planned.zero_phase {
            let pad = match args.pad {
                PadArg::Odd => Pad::Odd,
                PadArg::None => Pad::None,
            };
            let threads = processor.config().threads;
            let room = zero_phase_room(processor.config());
            if let Some(plan) = zerophase::StreamPlan::fit(sos, span_info.channels, room) {
                // As a stream, feeding the pipeline (which plans within the
                // rest of the limit). It filters in the pipeline's reader
                // thread, beside the pipeline's own stages, on the same
                // worker threads as they (`pipeline::worker_pool`).
                let stream = zerophase::Streaming::new(source, sos, pad, plan, threads)?;
                // A shard's seek to its start must give the whole run's
                // values, bit for bit.
                source = if shard.is_some() {
                    Box::new(stream.exact_seeks())
                } else {
                    Box::new(stream)
                };
                stream_plan = Some(plan);
                zero_phased = ZeroPhased::Streaming { sos, pad, plan };
            } else {
                if shard.is_some() {
                    return Err(Error::Runtime {
                        msg: "internal: a shard's zero-phase filter does not stream".into(),
                    });
                }
                // Through a scratch file, before the pipeline.
                let dir = scratch_dir(signal_path.as_deref(), events_path.as_deref());
                let window = zero_phase_window(
                    processor.config(),
                    sos,
                    span_info.channels,
                    args.run.memory_limit.is_some(),
                )?;
                let pool = stage_pool(threads)?;
                let filtered =
                    zerophase::filtfilt(source.as_mut(), sos, pad, &dir, window, pool.as_deref())?;
                scratch_bytes = filtered.scratch_bytes();
                source = filtered.source(&span_info)?;
                zero_phased = ZeroPhased::Scratch(filtered);
            }
        }
        stats_scratch = stats_scratch.max(scratch_bytes);
        if let Some(k) = args.on_noise
            && noise.is_none()
        {
            let levels = estimate_noise(
                args,
                &processor,
                &mut source,
                &zero_phased,
                &span_info,
                (input, opts),
                scratch_dir(signal_path.as_deref(), events_path.as_deref()),
            )?;
            let mut job = processor.job().clone();
            job.detector = Some(noise_detector(
                &job,
                &levels.levels,
                k,
                args.off_noise.unwrap_or(k),
                input,
                observer,
            ));
            processor = make_processor(job);
            noise = Some(levels);
        }
        if let Some(csv) = csv.as_mut() {
            csv.set_clock(output_clock(&span_info, args.decimate));
        }
        if let Some(c) = collected.as_mut() {
            c.set_clock(output_clock(&span_info, args.decimate))?;
        }
        let mut on_progress = |p: &Progress| observer.progress(done + p.frames);
        let mut tee = Tee(Vec::new());
        if let Some(c) = csv.as_mut() {
            tee.0.push(c);
        }
        if let Some(n) = network.as_mut() {
            tee.0.push(n);
        }
        if let Some(c) = collected.as_mut() {
            tee.0.push(c);
        }
        let runner = match &zero_phased {
            ZeroPhased::Streaming { sos, plan, .. } => processor
                .clone()
                .reserving(plan.bytes(sos, span_info.channels)),
            _ => processor.clone(),
        };
        let part = runner.process_source(
            source.as_mut(),
            Sinks {
                signal: signal
                    .as_mut()
                    .map(|s| Box::new(Appending(s)) as Box<dyn SignalSink>),
                events: if tee.0.is_empty() {
                    None
                } else {
                    Some(&mut tee as &mut dyn EventSink)
                },
                snippets: snippets.as_mut().map(|w| w as &mut dyn SnippetSink),
                progress: Some(&mut on_progress),
            },
        )?;
        done += part.samples;
        stats.add(&part);
    }
    if stats.chunks == 0 {
        return Err(Error::format(
            input,
            format!(
                "all {} segments are shorter than the kernel's {taps} taps: nothing to filter",
                spans.count()
            ),
        ));
    }
    if skipped > 0 {
        observer.warn(
            input,
            &format!(
                "{skipped} of {} segments are shorter than the kernel's {taps} taps and were skipped",
                spans.count()
            ),
            false,
        );
    }
    stats.seconds = started.elapsed().as_secs_f64();
    stats.throughput_mb_s = stats.bytes as f64 / stats.seconds.max(1e-9) / 1e6;
    if let Some(sink) = signal {
        sink.finish()?;
    }
    if let Some(spec) = &processor.job().snippets
        && shard.is_none()
        && stats.output_samples < spec.window() as u64
    {
        // A stream, whose length was not known before (a shard's input,
        // a file, was checked whole before it ran).
        return Err(Error::format(
            input,
            format!(
                "--snippet-samples {}:{}: a window of {} samples is longer than the {} samples of the output",
                spec.pre,
                spec.post,
                spec.window(),
                stats.output_samples
            ),
        ));
    }
    observer.before_commit()?;
    if let Some(csv) = csv {
        csv.commit()?;
    }
    if let Some(w) = snippets {
        w.finish()?;
    }
    let network_events = network.map(CoincidenceSink::commit).transpose()?;
    written.commit()?;
    let default_mb = (crate::pipeline::DEFAULT_MEMORY_LIMIT >> 20) as f64;
    if args.run.memory_limit.is_none() && stats.memory_limit_mb > default_mb {
        observer.warn(
            input,
            &format!(
                "the job's own state for {} needs more than the default {default_mb} MiB budget; it ran within {:.0} MiB (--memory-limit MB makes the limit hard)",
                if stats.channels == 1 {
                    "1 channel".to_string()
                } else {
                    format!("{} channels", stats.channels)
                },
                stats.memory_limit_mb.ceil()
            ),
            true,
        );
    }
    let job = processor.job();
    let mut entry = describe_input(&info, Some(stats.samples));
    if let Spans::Segmented(rec) = &spans {
        entry.insert("segments".into(), json!(rec.span_summaries()));
        entry.insert("skipped_segments".into(), json!(skipped));
    }
    let choice = match &job.detector {
        Some(DetectorChoice::Ranged { inner, .. }) => Some(&**inner),
        other => other.as_ref(),
    };
    let detector = match choice {
        Some(DetectorChoice::Ranged { .. }) => unreachable!("a shard's detectors are not nested"),
        Some(DetectorChoice::Builtin(spec)) => json!(spec),
        Some(DetectorChoice::PerChannel(specs)) => {
            let mut about = json!(specs.first());
            about["on_noise"] = json!(args.on_noise);
            about["off_noise"] = json!(args.off_noise.or(args.on_noise));
            about["on"] = json!(specs.iter().map(|s| s.on_off().0).collect::<Vec<_>>());
            about["off"] = json!(specs.iter().map(|s| s.on_off().1).collect::<Vec<_>>());
            about
        }
        Some(DetectorChoice::Custom(_)) => json!({"kind": "custom"}),
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
            match (&planned.iir_about, job.kernel.as_ref()) {
                (Some(about), _) => {
                    let mut about = about.clone();
                    about["zero_phase"] = json!(args.zero_phase);
                    if args.zero_phase {
                        about["pad"] = json!(match args.pad {
                            PadArg::Odd => "odd",
                            PadArg::None => "none",
                        });
                        about["scratch_bytes"] = json!(stats_scratch);
                        // The stream's blocks and restart warm-up (null:
                        // through the scratch file).
                        about["stream_block"] = json!(stream_plan.map(|p| p.grid));
                        about["stream_warm"] = json!(stream_plan.map(|p| p.warm));
                    }
                    about
                }
                (None, Some(k)) => json!({
                    "taps": k.len(),
                    "method": stats.fir_method,
                    "conv_mode": job.conv_mode,
                    "window": planned.fir.map(|p| p.window.name()),
                    "beta": planned.fir.and_then(|p| p.window.beta()),
                    "attenuation_db": planned.fir.and_then(|p| match p.window {
                        FirWindow::Kaiser { attenuation, .. } => Some(attenuation),
                        FirWindow::Hamming => None,
                    }),
                    "transition_hz": planned.fir.and_then(|p| p.transition),
                }),
                (None, None) => Value::Null,
            },
        ),
        ("reference", json!(job.reference)),
        ("detector", detector),
        ("noise", json!(noise)),
        ("network_events", json!(network_events)),
        (
            "dedup",
            match &job.dedup {
                Some(d) => json!({
                    "window": d.window,
                    "radius": d.radius,
                    "dropped": stats.duplicates,
                }),
                None => Value::Null,
            },
        ),
        (
            "snippets",
            match &job.snippets {
                Some(spec) => json!({
                    "pre": spec.pre,
                    "post": spec.post,
                    "channels": spec.channels,
                    "rows": stats.events,
                    "dtype": if info.complex { "complex64" } else { "float32" },
                }),
                None => Value::Null,
            },
        ),
        (
            "range",
            match &shard {
                Some(plan) => json!({
                    "start": plan.range.start,
                    "end": plan.range.end,
                    "read_start": plan.read_start,
                }),
                None => Value::Null,
            },
        ),
        ("shift_hz", json!(args.shift)),
        ("decimate", json!(args.decimate)),
        ("output_sample_rate", json!(out_rate)),
        (
            "outputs",
            outputs([
                ("signal", signal_path.as_deref()),
                ("events", events_path.as_deref()),
                ("network_events", network_path.as_deref()),
                ("snippets", snippet_path.as_deref()),
            ]),
        ),
    ] {
        entry.insert(key.into(), value);
    }
    let table = collected.map(EventBatches::finish).transpose()?;
    Ok((entry, stats, table))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    #[command(name = "process", no_binary_name = true)]
    struct Cli {
        #[command(flatten)]
        options: ProcessOptions,
    }

    fn cli(argv: &[&str]) -> std::result::Result<ProcessOptions, String> {
        Cli::try_parse_from(argv)
            .map(|c| c.options)
            .map_err(|e| clap_message(&e))
    }

    /// Keywords give the options the command line gives.
    #[test]
    fn pairs_parse_as_the_command_line() {
        let inputs = [PathBuf::from("x.f32")];
        let pairs = [
            ("sample_rate", "100"),
            ("iir", "butter"),
            ("order", "4"),
            ("bandpass", "1:10"),
            ("zero_phase", "true"),
            ("detect", "threshold"),
            ("polarity", "neg"),
            ("on", "5"),
            ("normalize", "false"),
            ("select", "XX.A..HHZ"),
            ("select", "XX.B..HHZ"),
        ];
        let got = ProcessOptions::from_pairs(&inputs, pairs).unwrap();
        let want = cli(&[
            "--sample-rate",
            "100",
            "--iir",
            "butter",
            "--order",
            "4",
            "--bandpass",
            "1:10",
            "--zero-phase",
            "--detect",
            "threshold",
            "--polarity",
            "neg",
            "--on",
            "5",
            "--select",
            "XX.A..HHZ",
            "--select",
            "XX.B..HHZ",
            "x.f32",
        ])
        .unwrap();
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        // No options: the command line's defaults.
        let got = ProcessOptions::from_pairs(&inputs, [("", ""); 0]).unwrap();
        assert_eq!(
            format!("{got:?}"),
            format!("{:?}", cli(&["x.f32"]).unwrap())
        );
    }

    /// A value the command line refuses is refused with its message; an
    /// unknown keyword and a flag given a non-boolean are named.
    #[test]
    fn pairs_are_refused_as_the_command_line_refuses() {
        let inputs = [PathBuf::from("x.f32")];
        let err = ProcessOptions::from_pairs(&inputs, [("order", "four")]).unwrap_err();
        let cli_err = cli(&["--order", "four", "x.f32"]).unwrap_err();
        assert_eq!(err.to_string(), cli_err);
        assert!(cli_err.contains("--order"), "{cli_err}");
        let err = ProcessOptions::from_pairs(&inputs, [("polarity", "up")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            cli(&["--polarity", "up", "x.f32"]).unwrap_err()
        );
        let err = ProcessOptions::from_pairs(&inputs, [("lowpas", "10")]).unwrap_err();
        assert_eq!(err.to_string(), "lowpas: no such option of process");
        let err = ProcessOptions::from_pairs(&inputs, [("zero_phase", "yes")]).unwrap_err();
        assert!(err.to_string().contains("zero-phase is a flag"), "{err}");
        // Options that exclude each other, as on the command line.
        let err = ProcessOptions::from_pairs(&inputs, [("lowpass", "1"), ("moving_average", "3")])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            cli(&["--lowpass", "1", "--moving-average", "3", "x.f32"]).unwrap_err()
        );
    }
}
