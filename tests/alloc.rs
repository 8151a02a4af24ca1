//! The steady-state loop allocates nothing: a counting global allocator
//! counts every allocation in the process (reader, compute, writer and
//! worker threads alike) between the 10th and the 30th chunk of a run that
//! filters with a long kernel (FFT overlap-save), detects with STA/LTA, and
//! writes the filtered signal and the events to files.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use sigstream::backend::{DetectorChoice, Job};
use sigstream::detect::DetectorSpec;
use sigstream::filter::ConvMode;
use sigstream::pipeline::{Sinks, StreamConfig, StreamProcessor};
use sigstream::sink::{CsvEvents, EventSink, open_signal_sink};
use sigstream::source::SourceOptions;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_in_the_steady_state() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.f32");
    let chunk = 8192;
    let chunks = 40;
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for i in 0..chunk * chunks {
            let loud = i % 20_000 < 200;
            let v = ((i as f32) * 0.7548).sin() * if loud { 40.0 } else { 1.0 };
            f.write_all(&v.to_le_bytes()).unwrap();
        }
    }
    // One channel, on one thread and on two; four channels (the same
    // samples read as interleaved frames), filtered across channels in
    // groups that share one FFT scratch each.
    for (channels, threads) in [(1, 1), (1, 2), (4, 2)] {
        let chunk = chunk / channels;
        let job = Job {
            kernel: Some(
                (0..1025)
                    .map(|i| ((i as f32) * 0.01).cos() / 1025.0)
                    .collect(),
            ),
            conv_mode: ConvMode::Same,
            detector: Some(DetectorChoice::Builtin(DetectorSpec::ClassicStaLta {
                nsta: 50,
                nlta: 1000,
                on: 3.0,
                off: 1.5,
                max_len: None,
                dead: None,
            })),
            ..Job::default()
        };
        let config = StreamConfig {
            chunk_size: Some(chunk),
            threads,
            queue_depth: 2,
            ..StreamConfig::default()
        };
        let signal = open_signal_sink(&dir.path().join("out.npy"), channels, false, None).unwrap();
        let mut csv =
            CsvEvents::create(&dir.path().join("events.csv"), Default::default()).unwrap();
        let mut marks = [0u64; 2];
        let mut progress = |p: &sigstream::pipeline::Progress| {
            match p.chunks {
                10 => marks[0] = ALLOCS.load(Ordering::SeqCst),
                30 => marks[1] = ALLOCS.load(Ordering::SeqCst),
                _ => {}
            }
            Ok(())
        };
        let stats = StreamProcessor::new(config, job)
            .process_file(
                &input,
                &SourceOptions {
                    channels,
                    ..SourceOptions::default()
                },
                Sinks {
                    signal: Some(signal),
                    events: Some(&mut csv as &mut dyn EventSink),
                    snippets: None,
                    progress: Some(&mut progress),
                },
            )
            .unwrap();
        csv.commit().unwrap();
        assert_eq!(stats.chunks, chunks as u64);
        assert!(
            stats.events > 5,
            "the signal must trigger events: {}",
            stats.events
        );
        assert_eq!(
            marks[1] - marks[0],
            0,
            "{channels} channels, {threads} threads: {} allocations between chunk 10 and chunk 30",
            marks[1] - marks[0]
        );
    }
}
