//! miniSEED inputs: record headers of versions 2 and 3 (fixed header,
//! blockette chains, lengths, times, rates, source ids, CRC), the index of
//! channels and segments, the spans of each gap mode, and the decoding of
//! every encoding (Steim-1/2 frames above all). Each span is read with two
//! block sizes, which must give the same samples; reading a span stops
//! after 2^22 frames (a header may claim billions that its records do not
//! hold: the reader must fail on them, not the harness wait for it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstream::pool::Block;
use sigstream::source::mseed::Gaps;
use sigstream::source::{self, ChunkSource, Input, SourceOptions};
use sigstream_fuzz::{scratch_path, write_scratch};

/// Frames read from each span at most.
const CAP: usize = 1 << 22;

/// Up to [`CAP`] frames of `source`, `capacity` at a time, or the error.
fn read(mut source: Box<dyn ChunkSource>, capacity: usize) -> Result<Vec<Vec<u32>>, String> {
    let channels = source.info().channels;
    let mut block = Block::new(channels, capacity);
    let mut out = vec![Vec::new(); channels];
    while out[0].len() < CAP {
        let n = source.read_block(&mut block).map_err(|e| e.to_string())?;
        assert_eq!(n, block.frames());
        if n == 0 {
            if let Some(frames) = source.info().frames {
                assert_eq!(
                    out[0].len() as u64,
                    frames,
                    "frames read == SignalInfo::frames"
                );
            }
            break;
        }
        for (c, ch) in out.iter_mut().enumerate() {
            ch.extend(block.channel(c).iter().map(|v| v.to_bits()));
        }
    }
    for ch in &mut out {
        ch.truncate(CAP);
    }
    Ok(out)
}

fuzz_target!(|bytes: &[u8]| {
    let Some((&mode, data)) = bytes.split_first() else {
        return;
    };
    let path = scratch_path("mseed", "mseed");
    write_scratch(&path, data);
    let opts = SourceOptions {
        gaps: match mode % 3 {
            0 => Gaps::Split,
            1 => Gaps::Fill(-1.0),
            _ => Gaps::Interpolate,
        },
        ..SourceOptions::default()
    };
    let Ok(Input::Segmented(rec)) = source::open_input(&path, &opts) else {
        return;
    };
    let _ = rec.inventory();
    for i in 0..rec.spans().min(4) {
        let info = rec.span_info(i);
        assert!(info.channels >= 1);
        let a = read(Box::new(rec.span_source(i)), 4096);
        let b = read(Box::new(rec.span_source(i)), 1 + usize::from(mode) % 700);
        match (&a, &b) {
            (Ok(x), Ok(y)) => assert_eq!(x, y, "block size changed the samples"),
            (Err(_), Err(_)) => {}
            // A capped read may stop before the record that fails.
            _ if info.frames.is_some_and(|n| n > CAP as u64) => {}
            _ => panic!("one block size fails, the other not: {a:?} vs {b:?}"),
        }
    }
});
