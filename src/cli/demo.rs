//! `sigstream demo`: the main job on an embedded default — a synthetic
//! recording with known bursts, processed through mmap, every burst checked.

use clap::Args;

use super::{RunArgs, group, memory_limit, out, progress_bar, threads};
use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::Event;
use sigstream::error::Result;
use sigstream::filter::ConvMode;
use sigstream::pipeline::{Progress, Sinks, StreamConfig, StreamProcessor};
use sigstream::source::SourceOptions;

/// `sigstream demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Samples in the synthetic recording.
    #[arg(long, default_value_t = 50_000_000, value_name = "N")]
    pub samples: u64,
    /// Events injected.
    #[arg(long, default_value_t = 1000, value_name = "K")]
    pub events: usize,
    /// Seed of the random signal.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Chunking, memory, threads, backend.
    #[command(flatten)]
    pub run: RunArgs,
}

/// `sigstream demo`: returns the exit code (1 if the events found do not
/// match those injected).
pub fn run(args: &DemoArgs) -> Result<i32> {
    args.run.validate()?;
    let threads = threads(args.run.threads)?;
    let positions = super::demo_signal::event_positions(args.samples, args.events, args.seed)?;
    // The backend first: a GPU that cannot be had fails before the signal is written.
    let backend = args.run.backend.open()?;
    let dir = sigstream::sink::TempDir::new("demo")?;
    let path = dir.path().join("signal.f32");
    let size_mb = args.samples as f64 * 4.0 / 1e6;
    out(&format!(
        "=== sigstream demo: memory-efficient stream processing ===\n\
         Creating {} sample signal (~{size_mb:.0} MB) with {} injected events...\n",
        group(args.samples),
        group(args.events as u64)
    ))?;
    super::demo_signal::write_signal(&path, args.samples, &positions, args.seed)?;
    out(
        "Processing with memory mapping (3-tap moving average, classic STA/LTA 100/1000, on 4, off 1.5)...\n",
    )?;
    let job = Job {
        kernel: Some(super::demo_signal::KERNEL.to_vec()),
        conv_mode: ConvMode::Same,
        detector: Some(DetectorChoice::Builtin(super::demo_signal::detector())),
        ..Job::default()
    };
    let config = StreamConfig {
        chunk_size: args.run.chunk_size,
        memory_limit: memory_limit(args.run.memory_limit)?.bytes,
        strict_memory_limit: args.run.memory_limit.is_some(),
        threads,
        ..StreamConfig::default()
    };
    let processor = StreamProcessor::new(config, job).with_backend(backend);
    let mut events: Vec<Event> = Vec::new();
    let bar = progress_bar(args.run.quiet, "demo", Some(args.samples));
    let mut on_progress = |p: &Progress| {
        bar.set_position(p.frames);
        Ok(())
    };
    let stats = processor.process_file(
        &path,
        &SourceOptions::default(),
        Sinks {
            signal: None,
            events: Some(&mut events),
            snippets: None,
            progress: Some(&mut on_progress),
        },
    )?;
    bar.finish_and_clear();
    let check = super::demo_signal::check(&positions, &events);
    let file_mib = args.samples as f64 * 4.0 / (1024.0 * 1024.0);
    out(&format!(
        "\nResults:\n\
         \x20 Backend:            {} on {}\n\
         \x20 Total samples:      {}\n\
         \x20 Chunks processed:   {} of {} samples\n\
         \x20 Events found:       {} ({} of {} injected recovered, {} missed, {} spurious)\n\
         \x20 Peak memory:        {:.1} MiB (this process or its largest child, file pages included)\n\
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
