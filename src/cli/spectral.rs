//! What `spectrogram` and `psd` share: windows, detrending, the run
//! options, and [`SpectralRun`] (input, GPU, threads, reader thread,
//! report).

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};

use super::{
    BackendArg, InputArgs, RunArgs, group, memory_limit, progress_bar, threads, write_report,
};
use sigstream::error::{Error, Result};
use sigstream::pool::Block;
use sigstream::report::{Report, describe_input};
use sigstream::source::{self, SignalInfo};

/// Windows for the spectral commands (periodic, as scipy.signal.get_window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WindowArg {
    /// Hann.
    Hann,
    /// Hamming.
    Hamming,
    /// Blackman.
    Blackman,
    /// Rectangular (boxcar).
    Rect,
}

impl WindowArg {
    /// The library's window.
    pub fn window(self) -> sigstream::spectral::Window {
        use sigstream::spectral::Window;
        match self {
            WindowArg::Hann => Window::Hann,
            WindowArg::Hamming => Window::Hamming,
            WindowArg::Blackman => Window::Blackman,
            WindowArg::Rect => Window::Rect,
        }
    }
}

/// Per-frame detrending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DetrendArg {
    /// None.
    None,
    /// Subtract each frame's mean.
    Constant,
}

impl DetrendArg {
    pub(super) fn detrend(self) -> sigstream::spectral::Detrend {
        match self {
            DetrendArg::None => sigstream::spectral::Detrend::None,
            DetrendArg::Constant => sigstream::spectral::Detrend::Constant,
        }
    }
}

/// Options the spectral commands share.
#[derive(Debug, Clone, Args)]
pub struct SpectralRunArgs {
    /// Optional PNG picture of the result.
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub png: Option<PathBuf>,
    /// PNG width in pixels.
    #[arg(
        long,
        default_value_t = 1200,
        value_name = "PX",
        help_heading = "Outputs"
    )]
    pub width: u32,
    /// PNG height in pixels.
    #[arg(
        long,
        default_value_t = 600,
        value_name = "PX",
        help_heading = "Outputs"
    )]
    pub height: u32,
    /// Run report as JSON (seconds, throughput_mb_s, peak_rss_mb, backend, device).
    #[arg(long, value_name = "FILE", help_heading = "Outputs")]
    pub report: Option<PathBuf>,
    /// Chunking, memory, threads, backend.
    #[command(flatten)]
    pub run: RunArgs,
}

impl SpectralRunArgs {
    /// Checks the options that do not depend on the input, with the
    /// command's own outputs (`(option, path)`) beside --png and --report.
    pub fn validate(&self, input: &Path, own: &[(&str, Option<&Path>)]) -> Result<()> {
        self.run.validate()?;
        if self.png.as_deref().is_some_and(sigstream::sink::is_stdout) {
            return Err(Error::usage(
                "--png -: a picture cannot go to standard output; give a file",
            ));
        }
        let all: Vec<(&str, &Path)> = own
            .iter()
            .copied()
            .chain([
                ("--png", self.png.as_deref()),
                ("--report", self.report.as_deref()),
            ])
            .filter_map(|(name, p)| Some((name, p?)))
            .collect();
        sigstream::sink::check_outputs(&[input], &all)
    }
}

/// Blocks the reader fills ahead of the transform (reused).
const BLOCKS: usize = 3;

/// What the spectral commands share around their computation: the input,
/// the GPU, a rayon pool of `--threads` threads, the progress bar, and the
/// report.
pub(super) struct SpectralRun {
    pub(super) source: Box<dyn source::ChunkSource>,
    pub(super) info: SignalInfo,
    pub(super) gpu: Option<std::sync::Arc<sigstream::backend::gpu::GpuContext>>,
    pool: rayon::ThreadPool,
    threads: usize,
    /// Frames per chunk, planned under the memory budget.
    chunk: usize,
    started: Instant,
}

impl SpectralRun {
    /// Opens the input and the backend. With `--backend auto` and a
    /// hardware GPU, a frame length the GPU FFT cannot do (not a power of
    /// two) falls back to the CPU; with `--backend gpu` it is an error.
    pub(super) fn open(
        input: &Path,
        input_args: &InputArgs,
        run: &SpectralRunArgs,
        frame_len: usize,
    ) -> Result<Self> {
        let opts = input_args.source_options()?;
        let threads = threads(run.run.threads)?;
        let source = source::open(input, &opts)?;
        let info = source.info().clone();
        if let Some(frames) = info.frames
            && frames < frame_len as u64
        {
            return Err(too_short(input, frame_len, frames));
        }
        // The chunk, checked against the budget with the transform's own
        // state before anything of it is built: a frame too long for the
        // budget (`--nfft 1e9` on a stream, whose length is unknown) is
        // refused here, before its buffers are allocated.
        let chunk = sigstream::pipeline::budget::plan_blocks(
            run.run.chunk_size,
            memory_limit(run.run.memory_limit)?,
            &sigstream::pipeline::InputShape {
                channels: info.channels,
                sample_bytes: info.dtype.size(),
                frames: info.frames,
            },
            BLOCKS,
            sigstream::spectral::state_bytes(info.channels, frame_len),
        )?;
        let gpu = match run.run.backend.gpu_context()? {
            Some(_)
                if run.run.backend.backend == BackendArg::Auto
                    && !sigstream::backend::gpu::spectra::supports(frame_len) =>
            {
                None
            }
            g => g,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::Runtime {
                msg: format!("cannot start {threads} threads: {e}"),
            })?;
        Ok(SpectralRun {
            source,
            info,
            gpu,
            pool,
            threads,
            chunk,
            started: Instant::now(),
        })
    }

    /// Streams every chunk of the input through `f`. A reader thread fills
    /// the next blocks (three in all, reused) while `f` works on the
    /// current one, so reading and converting overlap the FFTs.
    ///
    /// Blocks are of the chunk planned in [`SpectralRun::open`].
    pub(super) fn stream(
        &mut self,
        run: &SpectralRunArgs,
        mut f: impl FnMut(&Block) -> Result<()> + Send,
    ) -> Result<u64> {
        use std::sync::mpsc::sync_channel;
        let chunk_size = self.chunk;
        let quiet = run.run.quiet;
        let bar = progress_bar(
            quiet,
            &self.info.path.display().to_string(),
            self.info.frames,
        );
        let channels = self.info.channels;
        let source = &mut self.source;
        let pool = &self.pool;
        let samples = std::thread::scope(|scope| -> Result<u64> {
            let (full_tx, full_rx) = sync_channel::<Result<Block>>(BLOCKS);
            let (free_tx, free_rx) = sync_channel::<Block>(BLOCKS);
            for _ in 0..BLOCKS {
                let _ = free_tx.send(Block::new(channels, chunk_size));
            }
            scope.spawn(move || {
                while let Ok(mut block) = free_rx.recv() {
                    match source.read_block(&mut block) {
                        Ok(0) => break,
                        Ok(_) => {
                            if full_tx.send(Ok(block)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            let _ = full_tx.send(Err(e));
                            break;
                        }
                    }
                }
            });
            let bar = &bar;
            pool.install(move || -> Result<u64> {
                let mut samples = 0u64;
                // Ends when the reader hangs up (end of input or error);
                // returning early drops `free_tx`, which stops the reader.
                while let Ok(block) = full_rx.recv() {
                    let block = block?;
                    f(&block)?;
                    samples += block.frames() as u64;
                    bar.set_position(samples);
                    let _ = free_tx.send(block);
                }
                Ok(samples)
            })
        })?;
        bar.finish_and_clear();
        Ok(samples)
    }

    fn backend(&self) -> (&'static str, String) {
        match &self.gpu {
            Some(ctx) => ("gpu", ctx.describe()),
            None => (
                "cpu",
                sigstream::backend::Backend::device(&sigstream::backend::cpu::CpuBackend),
            ),
        }
    }

    /// The report entry's common fields, for `samples` frames read.
    pub(super) fn entry(&self, samples: u64) -> Map<String, Value> {
        let seconds = self.started.elapsed().as_secs_f64();
        let bytes = samples * self.info.channels as u64 * self.info.dtype.size() as u64;
        let mut entry = describe_input(&self.info, Some(samples));
        entry.insert("bytes".into(), json!(bytes));
        entry.insert("seconds".into(), json!(seconds));
        entry.insert(
            "throughput_mb_s".into(),
            json!(bytes as f64 / seconds.max(1e-9) / 1e6),
        );
        entry.insert("threads".into(), json!(self.threads));
        entry
    }

    /// Writes the report (`--report`), or says in one line what was done.
    pub(super) fn finish(
        &self,
        command: &str,
        args: &SpectralRunArgs,
        entry: Map<String, Value>,
    ) -> Result<()> {
        let mut report = Report::new(command);
        let (backend, device) = self.backend();
        report.set_backend(backend, &device);
        let summary = format!(
            "{}: {} samples × {} {}ch, {:.2} s, {:.0} MB/s, peak {:.1} MiB, {backend}",
            self.info.path.display(),
            group(entry["samples"].as_u64().unwrap_or(0)),
            self.info.signal_channels(),
            if self.info.complex { "complex " } else { "" },
            entry["seconds"].as_f64().unwrap_or(0.0),
            entry["throughput_mb_s"].as_f64().unwrap_or(0.0),
            sigstream::pipeline::stats::peak_rss_mib(),
        );
        report.push(entry);
        if let Some(path) = &args.report {
            write_report(path, &report.finish())
        } else {
            if !args.run.quiet {
                eprintln!("{summary}");
            }
            Ok(())
        }
    }
}

pub(super) fn too_short(input: &Path, frame_len: usize, samples: u64) -> Error {
    Error::format(
        input,
        format!(
            "frame length {frame_len} (--nfft/--nperseg) is larger than the signal ({samples} samples per channel)"
        ),
    )
}

pub(super) fn input_title(input: &Path) -> String {
    input.file_name().map_or_else(
        || input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
