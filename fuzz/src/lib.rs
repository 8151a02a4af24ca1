//! What the fuzz targets share: one scratch file per process, reading a
//! [`ChunkSource`] to the end with the invariants every source promises
//! checked, and the comparison of the file reader with the stream reader.
//!
//! Why it exists: every target feeds bytes to `sigstream::source` twice,
//! once as a regular file (`source::open`, the memory-mapped reader) and
//! once as a stream (`source::from_reader`, the standard-input reader), and
//! the two must agree. Only the public API is used, as a user would.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use sigstream::Result;
use sigstream::pipeline::InputShape;
use sigstream::pipeline::budget::{Limit, plan_blocks};
use sigstream::pool::Block;
use sigstream::source::{self, ChunkSource, SignalInfo, SourceOptions};

/// The scratch file of this process with extension `ext` (`npy`, `wav`,
/// `bin`, ...): one fixed path per process and extension under the system's
/// temporary directory, rewritten for every input (creating a new file per
/// input would cost more than most inputs take to parse).
pub fn scratch_path(target: &str, ext: &str) -> PathBuf {
    let mut name = format!("sigstream-fuzz-{target}-{}", std::process::id());
    if !ext.is_empty() {
        name.push('.');
        name.push_str(ext);
    }
    std::env::temp_dir().join(name)
}

/// Writes `bytes` to the scratch file `path` (truncating it).
///
/// # Panics
/// If the temporary directory cannot be written: the harness cannot run.
pub fn write_scratch(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes)
        .unwrap_or_else(|e| panic!("cannot write the scratch file {}: {e}", path.display()));
}

/// Frames per block for reading `info`, planned as the spectral commands
/// plan theirs (the library's budget, default memory limit): `None` when
/// the budget refuses the input's shape (a header that claims a million
/// channels), which is the library's answer, not a finding.
pub fn planned_capacity(info: &SignalInfo) -> Option<usize> {
    plan_blocks(
        None,
        Limit {
            bytes: sigstream::pipeline::DEFAULT_MEMORY_LIMIT,
            strict: false,
        },
        &InputShape {
            channels: info.channels,
            sample_bytes: info.dtype.size(),
            frames: info.frames,
        },
        1,
        0,
    )
    .ok()
}

/// A second block capacity, different from the planned one, so that the
/// two readers cut the input differently (the samples must not change).
pub fn other_capacity(planned: usize, selector: usize) -> usize {
    const CHOICES: [usize; 4] = [1, 3, 64, 4099];
    CHOICES[selector % CHOICES.len()].min(planned).max(1)
}

/// Every frame of `source`, channel by channel, read `capacity` frames at a
/// time.
///
/// # Panics
/// When the source breaks a promise of [`ChunkSource::read_block`]: block
/// starts not consecutive, a count that is not the block's frame count or
/// exceeds its capacity, an end that does not stay the end, or (on success)
/// a total that differs from [`SignalInfo::frames`].
pub fn read_all(source: &mut dyn ChunkSource, capacity: usize) -> Result<Vec<Vec<f32>>> {
    let channels = source.info().channels;
    let declared = source.info().frames;
    let mut block = Block::new(channels, capacity);
    let mut out = vec![Vec::new(); channels];
    let mut next = 0u64;
    loop {
        let n = source.read_block(&mut block)?;
        assert_eq!(block.start, next, "block starts where the last one ended");
        assert_eq!(
            n,
            block.frames(),
            "read_block returns the block's frame count"
        );
        assert!(n <= capacity, "{n} frames in a block of {capacity}");
        if n == 0 {
            assert_eq!(source.read_block(&mut block)?, 0, "the end stays the end");
            if let Some(frames) = declared {
                assert_eq!(next, frames, "frames read == SignalInfo::frames");
            }
            return Ok(out);
        }
        next += n as u64;
        for (c, ch) in out.iter_mut().enumerate() {
            ch.extend_from_slice(block.channel(c));
        }
    }
}

/// What reading one input gave: its info and samples (as bits, so that NaN
/// payloads compare too), or the error's text.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Opened and read to the end.
    Read {
        /// Format, dtype, endianness, channels, data offset.
        layout: String,
        /// Samples per channel, as `f32` bits.
        samples: Vec<Vec<u32>>,
    },
    /// The budget refused the input's shape before any block was made.
    Refused,
    /// `open` or `read_block` returned an error.
    Failed(String),
}

impl Outcome {
    /// One line: the layout and frame count, or why not.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Read { layout, samples } => {
                format!("read {layout}, {} frames", samples[0].len())
            }
            Outcome::Refused => "refused by the memory budget".to_string(),
            Outcome::Failed(e) => format!("error: {e}"),
        }
    }
}

/// Opens `source` (already opened, or the error) and reads it whole with
/// `capacity(planned)` frames per block.
pub fn outcome(source: Result<Box<dyn ChunkSource>>, capacity: impl Fn(usize) -> usize) -> Outcome {
    let mut source = match source {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let info = source.info().clone();
    assert!(info.channels >= 1, "a source has at least one channel");
    let Some(planned) = planned_capacity(&info) else {
        return Outcome::Refused;
    };
    match read_all(source.as_mut(), capacity(planned)) {
        Ok(samples) => Outcome::Read {
            layout: format!(
                "{:?} {:?} {:?} {} channels at byte {}",
                info.format, info.dtype, info.endian, info.channels, info.data_offset
            ),
            samples: samples
                .into_iter()
                .map(|ch| ch.into_iter().map(f32::to_bits).collect())
                .collect(),
        },
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Reads `bytes` as the file `path` (which must already hold them) through
/// [`source::open`] and as a stream of the same name through
/// [`source::from_reader`], each to the end, and checks that whenever both
/// succeed they give the same layout and the same samples, whatever the
/// block sizes. `selector` picks the stream's block capacity.
///
/// # Panics
/// On a disagreement, or a broken promise (see [`read_all`]).
pub fn check_file_and_stream(path: &Path, bytes: &[u8], opts: &SourceOptions, selector: usize) {
    let file = outcome(source::open(path, opts), |planned| planned);
    let stream = outcome(
        source::from_reader(path, Cursor::new(bytes.to_vec()), opts),
        |planned| other_capacity(planned, selector),
    );
    if print() {
        eprintln!("file:   {}\nstream: {}", file.summary(), stream.summary());
    }
    match (&file, &stream) {
        (Outcome::Read { .. }, Outcome::Read { .. }) => {
            assert_eq!(file, stream, "the file and stream readers disagree");
        }
        // One reader accepts what the other refuses. Not always a bug (a
        // stream is checked as it ends, a file up front, so the messages
        // differ), so only reported when asked for.
        (Outcome::Read { .. }, _) | (_, Outcome::Read { .. }) if strict() => {
            panic!("only one reader accepts the input:\nfile:   {file:?}\nstream: {stream:?}");
        }
        _ => {}
    }
}

/// Whether `SIGSTREAM_FUZZ_PRINT` is set: then each input's outcome is
/// printed (for checking seeds and reading crashes).
pub fn print() -> bool {
    static PRINT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PRINT.get_or_init(|| std::env::var_os("SIGSTREAM_FUZZ_PRINT").is_some())
}

/// Whether `SIGSTREAM_FUZZ_STRICT` is set: then an input that one reader
/// accepts and the other refuses is a finding too.
fn strict() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("SIGSTREAM_FUZZ_STRICT").is_some())
}
