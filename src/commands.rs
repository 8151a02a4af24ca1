//! The subcommands, run from validated arguments: what `main` calls.
//!
//! Why separate from `main.rs`: these functions return typed errors and exit
//! codes, so the binary itself stays a thin shell (parse, run, print the
//! error) and the command logic can be tested in-process.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::backend::{DetectorChoice, Job};
use crate::cli::{
    BackendArg, BenchArgs, DemoArgs, FftArgs, InfoArgs, ProcessArgs, PsdArgs, SpectralRunArgs,
    SpectrogramArgs, input_stem, threads,
};
use crate::demo;
use crate::detect::Event;
use crate::error::{Error, Result};
use crate::filter::ConvMode;
use crate::pipeline::{Progress, Sinks, StreamConfig, StreamProcessor, stats};
use crate::pool::Block;
use crate::sink::{CsvEvents, open_signal_sink, write_json};
use crate::source::{self, SignalInfo, SourceOptions};

/// Writes to stdout; a closed pipe (`sigstream info x | head`) is not an error.
fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}

/// Reports a failure on one of several inputs and remembers the exit code.
fn report_failure(e: &Error, code: &mut i32) {
    eprintln!("sigstream: {e}");
    *code = (*code).max(e.exit_code());
}

/// `sigstream info`: returns the exit code.
pub fn info(args: &InfoArgs) -> Result<i32> {
    if args.gpus {
        return gpus(args.json);
    }
    let opts = args.input.source_options()?;
    let mut code = 0;
    let mut all = Vec::new();
    for input in &args.inputs {
        match source::open(input, &opts) {
            Ok(src) => all.push(src.info().clone()),
            Err(e) => report_failure(&e, &mut code),
        }
    }
    if args.json {
        let values: Vec<Value> = all.iter().map(info_json).collect();
        let value = if args.inputs.len() == 1 {
            values.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(values)
        };
        if code == 0 || !all.is_empty() {
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            ))?;
        }
    } else {
        for info in &all {
            out(&info_text(info))?;
        }
    }
    Ok(code)
}

fn duration(info: &SignalInfo) -> Option<f64> {
    Some(info.frames? as f64 / info.sample_rate?)
}

fn info_json(info: &SignalInfo) -> Value {
    let mut v = serde_json::to_value(info).unwrap_or(Value::Null);
    v["path"] = json!(info.path.display().to_string());
    v["duration_s"] = json!(duration(info));
    v
}

/// The lower-case name serde gives a unit enum (`npy`, `i16`, `little`).
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn info_text(info: &SignalInfo) -> String {
    let samples = info.frames.map_or("unknown (stream)".into(), |n| {
        format!("{} per channel", group(n))
    });
    let rate = info
        .sample_rate
        .map_or("unknown".into(), |r| format!("{r} Hz"));
    let dur = duration(info).map_or("unknown".into(), |d| format!("{d:.3} s"));
    format!(
        "{}\n  format:      {}\n  dtype:       {} ({}-endian)\n  channels:    {}\n  samples:     {samples}\n  sample rate: {rate}\n  duration:    {dur}\n  data offset: {} bytes\n",
        info.path.display(),
        name(&info.format),
        name(&info.dtype),
        name(&info.endian),
        info.channels,
        info.data_offset
    )
}

/// 50000000 → "50,000,000".
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A progress bar on stderr when it is a terminal and not `--quiet`.
fn progress_bar(quiet: bool, name: &str, total: Option<u64>) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
    }
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {percent:>3}% {human_pos}/{human_len} samples, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{prefix} {spinner} {human_pos} samples, {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_prefix(name.to_string());
    bar
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
pub fn process(args: &ProcessArgs) -> Result<i32> {
    let opts = args.input.source_options()?;
    let config = args.stream_config()?;
    let filter = args.filter_spec()?;
    // Validate what does not depend on the input before touching any file.
    args.detector(args.input.sample_rate.or(Some(1.0)))?;
    let backend = args.backend.open()?;
    let inputs = expand_inputs(&args.inputs)?;
    if inputs.len() > 1
        && args.output_dir.is_none()
        && (args.output.is_some() || args.events.is_some())
    {
        return Err(Error::usage(
            "with several inputs, -o/--events need --output-dir DIR (outputs go to DIR/<input stem>.<name>)",
        ));
    }
    if args.output_dir.is_some() {
        let mut stems: Vec<String> = inputs.iter().map(|p| input_stem(p)).collect();
        stems.sort();
        if let Some(w) = stems.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::usage(format!(
                "two inputs share the stem '{}': their outputs in --output-dir would collide",
                w[0]
            )));
        }
    }
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let started = Instant::now();
    let mut entries = Vec::new();
    let mut code = 0;
    let mut totals = (0u64, 0u64, 0u64, 0u64);
    for input in &inputs {
        let processor =
            |job: Job| StreamProcessor::new(config.clone(), job).with_backend(backend.clone());
        match process_one(args, filter.as_ref(), input, &opts, processor) {
            Ok((entry, stats)) => {
                if !args.quiet && args.report.is_none() {
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
                totals.0 += stats.samples;
                totals.1 += stats.events;
                totals.2 += stats.bytes;
                totals.3 += 1;
                entries.push(entry);
            }
            Err(e) => {
                report_failure(&e, &mut code);
                entries.push(json!({"input": input.display().to_string(), "error": e.to_string()}));
            }
        }
    }
    if let Some(path) = &args.report {
        let seconds = started.elapsed().as_secs_f64();
        let report = if inputs.len() == 1 {
            entries.pop().unwrap_or(Value::Null)
        } else {
            json!({
                "files": entries,
                "totals": {
                    "files": inputs.len(),
                    "succeeded": totals.3,
                    "failed": inputs.len() as u64 - totals.3,
                    "samples": totals.0,
                    "events": totals.1,
                    "bytes": totals.2,
                    "seconds": seconds,
                    "throughput_mb_s": totals.2 as f64 / seconds.max(1e-9) / 1e6,
                    "peak_rss_mb": stats::peak_rss_mib(),
                }
            })
        };
        write_json(path, &report)?;
    }
    Ok(code)
}

/// Processes one input with all its outputs; returns its report entry.
fn process_one(
    args: &ProcessArgs,
    filter: Option<&crate::filter::FilterSpec>,
    input: &Path,
    opts: &SourceOptions,
    processor: impl Fn(Job) -> StreamProcessor,
) -> Result<(Value, stats::Stats)> {
    let mut source = source::open(input, opts)?;
    let info = source.info().clone();
    // Option errors that depend on this input (no sample rate, ...) name it.
    let job = args.job(filter, &info).map_err(|e| match e {
        Error::Usage { msg } => Error::format(input, msg),
        e => e,
    })?;
    let processor = processor(job);
    let signal_path = args.output.as_ref().map(|o| args.output_path(o, input));
    let events_path = args.events.as_ref().map(|o| args.output_path(o, input));
    let signal = signal_path
        .as_ref()
        .map(|p| open_signal_sink(p, info.channels, info.sample_rate))
        .transpose()?;
    let mut csv = events_path
        .as_ref()
        .map(|p| CsvEvents::create(p))
        .transpose()?;
    let bar = progress_bar(args.quiet, &input.display().to_string(), info.frames);
    let mut on_progress = |p: &Progress| bar.set_position(p.frames);
    let stats = processor.process_source(
        source.as_mut(),
        Sinks {
            signal: signal.map(|s| s as Box<dyn crate::sink::SignalSink>),
            events: csv.as_mut().map(|c| c as &mut dyn crate::sink::EventSink),
            progress: Some(&mut on_progress),
        },
    )?;
    bar.finish_and_clear();
    if let Some(csv) = csv {
        csv.commit()?;
    }
    let job = processor.job();
    let entry = json!({
        "input": input.display().to_string(),
        "format": info.format,
        "dtype": info.dtype,
        "channels": stats.channels,
        "sample_rate": info.sample_rate,
        "samples": stats.samples,
        "output_samples": stats.output_samples,
        "chunks": stats.chunks,
        "chunk_size": stats.chunk_size,
        "overlap": stats.overlap,
        "events": stats.events,
        "bytes": stats.bytes,
        "peak_rss_mb": stats.peak_rss_mb,
        "seconds": stats.seconds,
        "throughput_mb_s": stats.throughput_mb_s,
        "backend": stats.backend,
        "device": stats.device,
        "threads": threads(args.threads)?,
        "filter": job.kernel.as_ref().map(|k| json!({
            "taps": k.len(),
            "method": stats.fir_method,
            "conv_mode": job.conv_mode,
        })),
        "detector": job.detector.as_ref().map(|d| format!("{d:?}")),
        "outputs": {
            "signal": signal_path.map(|p| p.display().to_string()),
            "events": events_path.map(|p| p.display().to_string()),
        },
    });
    Ok((entry, stats))
}

/// `sigstream demo`: returns the exit code (1 if the events found do not
/// match those injected).
pub fn demo(args: &DemoArgs) -> Result<i32> {
    let threads = threads(args.threads)?;
    let positions = demo::event_positions(args.samples, args.events, args.seed)?;
    let dir = tempfile::Builder::new()
        .prefix("sigstream-demo-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let path = dir.path().join("signal.f32");
    let size_mb = args.samples as f64 * 4.0 / 1e6;
    out(&format!(
        "=== sigstream demo: memory-efficient stream processing ===\n\
         Creating {} sample signal (~{size_mb:.0} MB) with {} injected events...\n",
        group(args.samples),
        group(args.events as u64)
    ))?;
    demo::write_signal(&path, args.samples, &positions, args.seed)?;
    out(
        "Processing with memory mapping (3-tap moving average, classic STA/LTA 100/1000, on 4, off 1.5)...\n",
    )?;
    let job = Job {
        kernel: Some(demo::KERNEL.to_vec()),
        conv_mode: ConvMode::Same,
        detector: Some(DetectorChoice::Builtin(demo::detector())),
        ..Job::default()
    };
    let config = StreamConfig {
        chunk_size: args.chunk_size,
        threads,
        ..StreamConfig::default()
    };
    let backend = args.backend.open()?;
    let processor = StreamProcessor::new(config, job).with_backend(backend);
    let mut events: Vec<Event> = Vec::new();
    let bar = progress_bar(args.quiet, "demo", Some(args.samples));
    let mut on_progress = |p: &Progress| bar.set_position(p.frames);
    let stats = processor.process_file(
        &path,
        &SourceOptions::default(),
        Sinks {
            signal: None,
            events: Some(&mut events),
            progress: Some(&mut on_progress),
        },
    )?;
    bar.finish_and_clear();
    let check = demo::check(&positions, &events);
    let file_mib = args.samples as f64 * 4.0 / (1024.0 * 1024.0);
    out(&format!(
        "\nResults:\n\
         \x20 Backend:            {} on {}\n\
         \x20 Total samples:      {}\n\
         \x20 Chunks processed:   {} of {} samples\n\
         \x20 Events found:       {} ({} of {} injected recovered, {} missed, {} spurious)\n\
         \x20 Peak memory:        {:.1} MiB (whole process, file pages included)\n\
         \x20 Time:               {:.3} s\n\
         \x20 Throughput:         {:.0} MB/s\n\
         \x20 Memory efficiency:  {:.1}x (file size {:.0} MiB / peak memory)\n",
        stats.backend,
        stats.device,
        group(stats.samples),
        group(stats.chunks),
        group(stats.chunk_size as u64),
        group(stats.events),
        group(check.recovered as u64),
        group(positions.len() as u64),
        check.missed,
        check.spurious,
        stats.peak_rss_mb,
        stats.seconds,
        stats.throughput_mb_s,
        file_mib / stats.peak_rss_mb.max(1e-9),
        file_mib,
    ))?;
    if check.recovered == positions.len() && check.spurious == 0 {
        out("OK: every injected event was found, and nothing else.\n")?;
        Ok(0)
    } else {
        eprintln!("sigstream: demo: the events found do not match the injected ones");
        Ok(1)
    }
}

/// `sigstream info --gpus`: the adapters wgpu sees.
fn gpus(json: bool) -> Result<i32> {
    let adapters = crate::backend::gpu::context::adapters();
    if json {
        let list: Vec<Value> = adapters
            .iter()
            .map(|a| {
                serde_json::json!({
                    "name": a.name,
                    "type": format!("{:?}", a.device_type),
                    "backend": format!("{:?}", a.backend),
                    "driver": a.driver,
                    "driver_info": a.driver_info,
                    "software": a.device_type == wgpu::DeviceType::Cpu,
                })
            })
            .collect();
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&Value::Array(list)).unwrap_or_default()
        ))?;
    } else if adapters.is_empty() {
        out("no GPU adapters (is a Vulkan, Metal or DX12 driver installed?)\n")?;
    } else {
        for a in &adapters {
            let soft = if a.device_type == wgpu::DeviceType::Cpu {
                "  [software: used only with --backend gpu]"
            } else {
                ""
            };
            out(&format!(
                "{} ({:?}, {:?}, {} {}){soft}\n",
                a.name, a.device_type, a.backend, a.driver, a.driver_info
            ))?;
        }
    }
    Ok(0)
}

/// `sigstream bench`: runs the job on every backend and prints the table.
pub fn bench(args: &BenchArgs) -> Result<i32> {
    const OWN: [&str; 6] = [
        "-o",
        "--output",
        "--events",
        "--report",
        "--backend",
        "--gpu-adapter",
    ];
    if let Some(bad) = args.ops.iter().find(|o| {
        OWN.iter()
            .any(|own| o.as_str() == *own || o.starts_with(&format!("{own}=")))
    }) {
        return Err(Error::usage(format!(
            "bench sets {bad} itself; give only the job's options"
        )));
    }
    if args.repeat == 0 {
        return Err(Error::usage("--repeat must be at least 1"));
    }
    if !args.input.is_file() {
        return Err(match std::fs::metadata(&args.input) {
            Err(e) => Error::open(&args.input, e),
            Ok(_) => Error::format(
                &args.input,
                "not a regular file (bench reads it several times)",
            ),
        });
    }
    let backends: Vec<String> = if args.backends.is_empty() {
        crate::bench::available_backends()
    } else {
        args.backends
            .iter()
            .map(|b| match b {
                BackendArg::Auto => "auto",
                BackendArg::Cpu => "cpu",
                BackendArg::Gpu => "gpu",
            })
            .map(str::to_owned)
            .collect()
    };
    let results = crate::bench::run(&args.input, &args.ops, &backends, args.repeat)?;
    out(&crate::bench::table(&results))?;
    Ok(0)
}

/// `sigstream fft`: the spectrum of the whole input, out of core when it
/// does not fit in `--memory-limit`.
pub fn fft(args: &FftArgs) -> Result<i32> {
    use crate::spectral::ooc_fft::{self, FftOptions, PassProgress};
    let opts = args.input_args.source_options()?;
    if args.memory_limit == 0 {
        return Err(Error::usage("--memory-limit must be at least 1 (MiB)"));
    }
    let gpu = args.backend.gpu_context()?;
    let device = gpu.as_ref().map(|g| g.describe());
    let options = FftOptions {
        memory_limit: args.memory_limit.saturating_mul(1 << 20),
        full: args.full,
        channel: args.channel,
        gpu,
        ..FftOptions::default()
    };
    let mut bar: Option<(usize, ProgressBar)> = None;
    let quiet = args.quiet;
    let mut on_progress = |p: &PassProgress| {
        if bar.as_ref().is_none_or(|(pass, _)| *pass != p.pass) {
            if let Some((_, b)) = bar.take() {
                b.finish_and_clear();
            }
            let b = progress_bar(
                quiet,
                &format!("pass {}/{}: {}", p.pass, p.passes, p.name),
                Some(p.total),
            );
            bar = Some((p.pass, b));
        }
        if let Some((_, b)) = &bar {
            b.set_position(p.done);
        }
    };
    let stats = ooc_fft::fft_file(&args.input, &opts, &options, &args.output, &mut on_progress)?;
    if let Some((_, b)) = bar.take() {
        b.finish_and_clear();
    }
    if !args.quiet && args.report.is_none() {
        let how = match stats.split {
            None => "in core".to_string(),
            Some((p, l)) => format!("out of core, {p} x {l}"),
        };
        eprintln!(
            "{}: {} samples -> {} bins, {how}, {} pass{}, {:.2} s, peak {:.1} MiB",
            args.input.display(),
            group(stats.n),
            group(stats.bins),
            stats.passes,
            if stats.passes == 1 { "" } else { "es" },
            stats.seconds,
            stats.peak_rss_mb
        );
    }
    if let Some(path) = &args.report {
        let mut value = serde_json::to_value(&stats).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("input".into(), json!(args.input.display().to_string()));
            map.insert("output".into(), json!(args.output.display().to_string()));
            map.insert("memory_limit_mb".into(), json!(args.memory_limit));
            map.insert(
                "backend".into(),
                json!(if device.is_some() { "gpu" } else { "cpu" }),
            );
            map.insert("device".into(), json!(device));
        }
        write_json(path, &value)?;
    }
    Ok(0)
}
/// What the spectral commands share around their computation: the input,
/// the GPU, a rayon pool of `--threads` threads, the progress bar, and the
/// report.
struct SpectralRun {
    source: Box<dyn source::ChunkSource>,
    info: SignalInfo,
    gpu: Option<std::sync::Arc<crate::backend::gpu::GpuContext>>,
    pool: rayon::ThreadPool,
    threads: usize,
    started: Instant,
}

impl SpectralRun {
    /// Opens the input and the backend. With `--backend auto` and a
    /// hardware GPU, a frame length the GPU FFT cannot do (not a power of
    /// two) falls back to the CPU; with `--backend gpu` it is an error.
    fn open(
        input: &Path,
        input_args: &crate::cli::InputArgs,
        run: &SpectralRunArgs,
        frame_len: usize,
    ) -> Result<Self> {
        let opts = input_args.source_options()?;
        let threads = threads(run.threads)?;
        let source = source::open(input, &opts)?;
        let info = source.info().clone();
        if let Some(frames) = info.frames
            && frames < frame_len as u64
        {
            return Err(too_short(input, frame_len, frames));
        }
        let gpu = match run.backend.gpu_context()? {
            Some(_)
                if run.backend.backend == BackendArg::Auto
                    && !crate::backend::gpu::spectra::supports(frame_len) =>
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
            started: Instant::now(),
        })
    }

    /// Streams every chunk of the input through `f`. A reader thread fills
    /// the next blocks (three in all, reused) while `f` works on the
    /// current one, so reading and converting overlap the FFTs.
    ///
    /// The chunk is `--chunk-size`, or the largest that fits
    /// `--memory-limit` with the three blocks, the source's window and
    /// `state` bytes of the transform's own (see
    /// [`crate::pipeline::budget::plan_blocks`]).
    fn stream(
        &mut self,
        run: &SpectralRunArgs,
        state: u64,
        mut f: impl FnMut(&Block) -> Result<()> + Send,
    ) -> Result<u64> {
        use std::sync::mpsc::sync_channel;
        const BLOCKS: usize = 3;
        let shape = crate::pipeline::InputShape {
            channels: self.info.channels,
            sample_bytes: self.info.dtype.size(),
            frames: self.info.frames,
        };
        let chunk_size = crate::pipeline::budget::plan_blocks(
            run.chunk_size,
            crate::cli::memory_limit(run.memory_limit)?,
            &shape,
            BLOCKS,
            state,
        )?;
        let quiet = run.quiet;
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
                crate::backend::Backend::device(&crate::backend::cpu::CpuBackend),
            ),
        }
    }

    /// The report's common fields.
    fn report(&self, samples: u64) -> Value {
        let seconds = self.started.elapsed().as_secs_f64();
        let bytes = samples * self.info.channels as u64 * self.info.dtype.size() as u64;
        let (backend, device) = self.backend();
        json!({
            "input": self.info.path.display().to_string(),
            "format": self.info.format,
            "dtype": self.info.dtype,
            "channels": self.info.channels,
            "sample_rate": self.info.sample_rate,
            "samples": samples,
            "bytes": bytes,
            "seconds": seconds,
            "throughput_mb_s": bytes as f64 / seconds.max(1e-9) / 1e6,
            "peak_rss_mb": stats::peak_rss_mib(),
            "backend": backend,
            "device": device,
            "threads": self.threads,
        })
    }
}

fn too_short(input: &Path, frame_len: usize, samples: u64) -> Error {
    Error::format(
        input,
        format!(
            "frame length {frame_len} (--nfft/--nperseg) is larger than the signal ({samples} samples per channel)"
        ),
    )
}

/// Bytes the STFT or Welch state holds for `channels` channels of frames
/// of `frame_len` samples, for the memory budget: per channel, the carried
/// partial frame and the joined frame (`f32`), the accumulated or current
/// spectrum (`f64`) and the transform's buffers (complex `f32`), about 32
/// bytes per sample of a frame.
fn spectral_state(channels: usize, frame_len: usize) -> u64 {
    const BYTES_PER_FRAME_SAMPLE: u64 = 32;
    (channels as u64)
        .saturating_mul(frame_len as u64)
        .saturating_mul(BYTES_PER_FRAME_SAMPLE)
}

/// A library usage error that is about this input: name the input.
fn about_input(input: &Path) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Usage { msg } => Error::format(input, msg),
        e => e,
    }
}

fn input_title(input: &Path) -> String {
    input.file_name().map_or_else(
        || input.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `sigstream spectrogram`: returns the exit code.
pub fn spectrogram(args: &SpectrogramArgs) -> Result<i32> {
    use crate::sink::NpyArrayWriter;
    use crate::sink::plot::{SpectrogramAxes, SpectrogramImage};
    use crate::spectral::{Stft, frame_count};

    let config = args.config()?;
    let mut run = SpectralRun::open(&args.input, &args.input_args, &args.run, config.nfft)?;
    let info = run.info.clone();
    let mut stft = Stft::new(config, info.channels, info.sample_rate, run.gpu.as_ref())?;
    let bins = stft.bins();
    let tail = if info.channels == 1 {
        vec![bins]
    } else {
        vec![info.channels, bins]
    };
    let mut npy = args
        .output
        .as_ref()
        .map(|p| NpyArrayWriter::create(p, &tail))
        .transpose()?;
    let total = info.frames.map(|n| frame_count(n, config.nfft, config.hop));
    let mut image = args
        .run
        .png
        .as_ref()
        .map(|_| SpectrogramImage::new(args.run.width, args.run.height, info.channels, bins, total))
        .transpose()?;
    let state = spectral_state(info.channels, config.nfft);
    let samples = run.stream(&args.run, state, |block| {
        stft.push(block, |rows| {
            if let Some(w) = npy.as_mut() {
                w.write(rows.values)?;
            }
            if let Some(img) = image.as_mut() {
                img.add(rows.first, rows.count, rows.db);
            }
            Ok(())
        })
    })?;
    if stft.frames() == 0 {
        return Err(too_short(&args.input, config.nfft, samples));
    }
    if let Some(w) = npy {
        w.finish()?;
    }
    if let (Some(img), Some(path)) = (&image, &args.run.png) {
        let title = format!(
            "{}: {} window, nfft {}, hop {}",
            input_title(&args.input),
            config.window.name(),
            config.nfft,
            config.hop
        );
        img.write_png(
            path,
            SpectrogramAxes {
                sample_rate: info.sample_rate,
                hop: config.hop,
                nfft: config.nfft,
            },
            args.db_range,
            &title,
        )?;
    }
    let mut report = run.report(samples);
    report["command"] = json!("spectrogram");
    report["nfft"] = json!(config.nfft);
    report["hop"] = json!(config.hop);
    report["window"] = json!(config.window);
    report["scale"] = json!(config.scale);
    report["frames"] = json!(stft.frames());
    report["bins"] = json!(bins);
    report["outputs"] = json!({
        "npy": args.output.as_ref().map(|p| p.display().to_string()),
        "png": args.run.png.as_ref().map(|p| p.display().to_string()),
    });
    finish_report(&args.run, &report)?;
    Ok(0)
}

/// `sigstream psd`: returns the exit code.
pub fn psd(args: &PsdArgs) -> Result<i32> {
    use crate::spectral::{Scaling, Welch};

    let config = args.config()?;
    let mut run = SpectralRun::open(&args.input, &args.input_args, &args.run, config.nperseg)?;
    let info = run.info.clone();
    let mut welch = Welch::new(config, info.channels, info.sample_rate, run.gpu.as_ref())?;
    let state = spectral_state(info.channels, config.nperseg);
    let samples = run.stream(&args.run, state, |block| welch.push(block))?;
    let psd = welch.finish().map_err(about_input(&args.input))?;
    if let Some(path) = &args.output {
        let mut file = std::io::BufWriter::new(crate::sink::AtomicFile::create(path)?);
        let mut text = String::from("frequency");
        for c in 0..info.channels {
            text.push_str(&format!(",ch{c}"));
        }
        text.push('\n');
        for (k, f) in psd.frequencies.iter().enumerate() {
            text.push_str(&format!("{f}"));
            for ch in &psd.values {
                text.push_str(&format!(",{:e}", ch[k]));
            }
            text.push('\n');
        }
        file.write_all(text.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| Error::io(path, e))?;
        file.into_inner()
            .map_err(|e| Error::io(path, e.into_error()))?
            .commit()?;
    }
    if let Some(path) = &args.run.png {
        let title = format!(
            "{}: Welch, {} window, nperseg {}, overlap {}, {} segments",
            input_title(&args.input),
            config.window.name(),
            config.nperseg,
            config.noverlap,
            psd.segments
        );
        crate::sink::plot::psd_png(
            path,
            &psd.frequencies,
            &psd.values,
            info.sample_rate.is_some(),
            config.scaling == Scaling::Density,
            (args.run.width, args.run.height),
            &title,
        )?;
    }
    let mut report = run.report(samples);
    report["command"] = json!("psd");
    report["nperseg"] = json!(config.nperseg);
    report["noverlap"] = json!(config.noverlap);
    report["window"] = json!(config.window);
    report["scaling"] = json!(config.scaling);
    report["segments"] = json!(psd.segments);
    report["outputs"] = json!({
        "csv": args.output.as_ref().map(|p| p.display().to_string()),
        "png": args.run.png.as_ref().map(|p| p.display().to_string()),
    });
    finish_report(&args.run, &report)?;
    Ok(0)
}

/// Writes the report, or says in one line what was done.
fn finish_report(run: &SpectralRunArgs, report: &Value) -> Result<()> {
    if let Some(path) = &run.report {
        write_json(path, report)?;
    } else if !run.quiet {
        eprintln!(
            "{}: {} samples × {} ch, {:.2} s, {:.0} MB/s, peak {:.1} MiB, {}",
            report["input"].as_str().unwrap_or_default(),
            group(report["samples"].as_u64().unwrap_or(0)),
            report["channels"],
            report["seconds"].as_f64().unwrap_or(0.0),
            report["throughput_mb_s"].as_f64().unwrap_or(0.0),
            report["peak_rss_mb"].as_f64().unwrap_or(0.0),
            report["backend"].as_str().unwrap_or_default(),
        );
    }
    Ok(())
}
