//! Arrow IPC (Feather v2) inputs: the footer and its batch index (checked
//! against the file's size), the schema (flatbuffers, through arrow-ipc),
//! the column selection and types, every record batch's metadata through
//! arrow-ipc's `FileDecoder` over the mapped batch (lengths, buffers,
//! alignment, nulls, compression), and the conversion of every sample.
//! The input's length picks the options (all columns, `--columns b`,
//! `--columns b,a`, or `--normalize`). The file is read twice, with the
//! planned blocks and with small ones, which must give the same outcome;
//! when it reads, a seek to its middle must give the same tail. An error
//! must be bad input (exit code 2), and come when the file opens, never
//! while it is read. A stream of the same bytes is not read (Arrow files
//! need their footer).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstream::pool::Block;
use sigstream::source::{self, SourceOptions};
use sigstream_fuzz::{Outcome, other_capacity, outcome, print, scratch_path, write_scratch};

fuzz_target!(|bytes: &[u8]| {
    let path = scratch_path("arrow", "arrow");
    write_scratch(&path, bytes);
    let columns = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    let opts = match bytes.len() % 4 {
        0 => SourceOptions::default(),
        1 => SourceOptions {
            columns: columns(&["b"]),
            ..SourceOptions::default()
        },
        2 => SourceOptions {
            columns: columns(&["b", "a"]),
            ..SourceOptions::default()
        },
        _ => SourceOptions {
            normalize: true,
            ..SourceOptions::default()
        },
    };
    let opened = source::open(&path, &opts);
    let open = match &opened {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "an error that is not bad input: {e}");
            false
        }
    };
    let planned = outcome(opened, |planned| planned);
    if let Outcome::Failed(e) = &planned {
        // Every batch is checked when the file opens.
        assert!(!open, "a read failed after the file opened: {e}");
    }
    let small = outcome(source::open(&path, &opts), |planned| {
        other_capacity(planned, bytes.len() / 4)
    });
    if print() {
        eprintln!(
            "planned: {}\nsmall:   {}",
            planned.summary(),
            small.summary()
        );
    }
    assert_eq!(planned, small, "the block size changed the outcome");
    let Outcome::Read { samples, .. } = &planned else {
        return;
    };
    // Random access: from the middle to the end.
    let mut src = source::open(&path, &opts).expect("opened before");
    let frames = samples[0].len() as u64;
    let mid = frames / 2;
    src.seek(mid).expect("a frame inside the file");
    let mut block = Block::new(samples.len(), 97);
    let mut at = mid as usize;
    loop {
        let n = src.read_block(&mut block).expect("read before");
        assert_eq!(
            block.start, at as u64,
            "a block starts where the seek put it"
        );
        if n == 0 {
            break;
        }
        for (c, want) in samples.iter().enumerate() {
            let got: Vec<u32> = block.channel(c).iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want[at..at + n], "after a seek to {mid}");
        }
        at += n;
    }
    assert_eq!(at as u64, frames, "the tail after a seek");
    assert!(src.seek(frames + 1).is_err(), "a seek past the end");
});
