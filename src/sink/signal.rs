//! Writers for the filtered signal: float32 `.npy`, float WAV, raw f32;
//! complex signals (planes I, Q per channel) as complex64 `.npy` or raw cf32
//! (interleaved I/Q, the same bytes).
//!
//! The length of the output is known only at the end (a stream from stdin
//! has no length), so each writer reserves a fixed-size header, streams the
//! samples, and patches the header when it finishes. Samples arrive planar
//! (one slice per channel) and are interleaved into one byte buffer,
//! allocated once, per block.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use super::Output;
use crate::error::{Error, Result};
use crate::pool::Block;

/// Receives the output signal block by block, in order.
pub trait SignalSink: Send {
    /// Appends a block's frames.
    fn write(&mut self, block: &Block) -> Result<()>;
    /// Completes the output (headers, renaming into place).
    fn finish(self: Box<Self>) -> Result<()>;
}

/// Output container, chosen from the target's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalFormat {
    /// float32 `.npy`: shape `(samples,)` for one channel, `(samples, channels)` otherwise.
    Npy,
    /// IEEE-float 32-bit WAV (RF64 past 4 GiB).
    Wav,
    /// Raw interleaved float32, little-endian.
    Raw,
}

impl SignalFormat {
    /// The format for a target path: `.npy`, `.wav`, anything else raw.
    pub fn from_path(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("npy") => SignalFormat::Npy,
            Some("wav") => SignalFormat::Wav,
            _ => SignalFormat::Raw,
        }
    }
}

/// Opens a writer for `path` (format from its extension; `-` is raw
/// float32 to standard output) for `channels` planes; with `complex`, the
/// planes are I/Q pairs and the output is complex64 (`.npy` of `<c8`, or raw
/// interleaved cf32).
///
/// # Errors
/// [`Error::Open`] when the file cannot be created; [`Error::Usage`] for a
/// complex signal to `.wav` (WAV has no complex samples).
pub fn open_signal_sink(
    path: &Path,
    channels: usize,
    complex: bool,
    sample_rate: Option<f64>,
) -> Result<Box<dyn SignalSink>> {
    let format = SignalFormat::from_path(path);
    check_complex(path, format, complex)?;
    // Checked before opening: opening a FIFO for writing waits for its reader.
    if format != SignalFormat::Raw && super::is_stream_target(path) {
        return Err(Error::usage(format!(
            "{}: a .npy or .wav header is completed at the end, so it needs a regular file, not a device, FIFO or standard output; write raw f32 there",
            path.display()
        )));
    }
    let mut file = Output::create(path)?;
    let header = match format {
        SignalFormat::Npy => NPY_HEADER_LEN,
        SignalFormat::Wav => WAV_HEADER_LEN,
        SignalFormat::Raw => 0,
    };
    file.write_all(&vec![0u8; header])
        .map_err(|e| Error::io(path, e))?;
    Ok(Box::new(FileSink {
        file,
        format,
        channels,
        complex,
        sample_rate,
        frames: 0,
        bytes: Vec::new(),
    }))
}

struct FileSink {
    file: Output,
    format: SignalFormat,
    channels: usize,
    /// Planes are I/Q pairs: the npy header says complex64.
    complex: bool,
    sample_rate: Option<f64>,
    frames: u64,
    bytes: Vec<u8>,
}

impl SignalSink for FileSink {
    fn write(&mut self, block: &Block) -> Result<()> {
        let n = block.frames();
        let need = n * self.channels * 4;
        if self.bytes.len() < need {
            // Sized once, on the first write, for the largest block the
            // pool hands out (its capacity), not for this block's frames:
            // the filter's first output block is shorter than the later
            // ones, and growing on a later one would allocate mid-stream.
            self.bytes
                .resize(need.max(block.capacity() * self.channels * 4), 0);
        }
        let bytes = &mut self.bytes[..need];
        interleave_le(block, bytes);
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(self.file.target(), e))?;
        self.frames += n as u64;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        let header = header(
            self.format,
            self.frames,
            self.channels,
            self.complex,
            self.sample_rate,
        );
        let target = self.file.target().to_path_buf();
        // Standard output is always raw (`-` has no extension): no header.
        if !header.is_empty()
            && let Some(f) = self.file.file_mut()
        {
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.write_all(&header))
                .map_err(|e| Error::io(&target, e))?;
        }
        self.file.commit()
    }
}

/// Interleaves a block's channels into little-endian f32 bytes.
fn interleave_le(block: &Block, out: &mut [u8]) {
    interleave_frames_le(block, 0..block.frames(), out);
}

/// Interleaves frames `frames` of a block's channels into little-endian
/// f32 bytes (`out` holds exactly those frames).
pub(crate) fn interleave_frames_le(block: &Block, frames: std::ops::Range<usize>, out: &mut [u8]) {
    let c = block.channels();
    if c == 1 {
        for (o, v) in out.chunks_exact_mut(4).zip(&block.channel(0)[frames]) {
            o.copy_from_slice(&v.to_le_bytes());
        }
        return;
    }
    for ch in 0..c {
        let values = &block.channel(ch)[frames.clone()];
        for (frame, v) in out.chunks_exact_mut(4 * c).zip(values) {
            frame[4 * ch..4 * ch + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// The complete header of an output of `frames` frames in `format` (empty
/// for raw): what [`open_signal_sink`]'s writer puts in front when it
/// finishes, for a writer that knows the length up front
/// ([`crate::shard`]'s shared output).
pub(crate) fn header(
    format: SignalFormat,
    frames: u64,
    channels: usize,
    complex: bool,
    sample_rate: Option<f64>,
) -> Vec<u8> {
    match format {
        SignalFormat::Npy => npy_header(frames, channels, complex),
        SignalFormat::Wav => wav_header(frames, channels, sample_rate),
        SignalFormat::Raw => Vec::new(),
    }
}

/// Refuses a complex signal to WAV, which has no complex samples.
pub(crate) fn check_complex(path: &Path, format: SignalFormat, complex: bool) -> Result<()> {
    if complex && format == SignalFormat::Wav {
        return Err(Error::usage(format!(
            "{}: the signal is complex (I/Q) and WAV has no complex samples; write .npy (complex64) or raw cf32 (e.g. .cf32)",
            path.display()
        )));
    }
    Ok(())
}

/// Bytes reserved for the npy header: magic, version 1.0, header length and a
/// dict padded with spaces; 128 leaves room for two 20-digit dimensions.
pub const NPY_HEADER_LEN: usize = 128;

/// The header of `frames` frames of `channels` f32 planes, or of
/// `channels / 2` complex64 channels.
fn npy_header(frames: u64, channels: usize, complex: bool) -> Vec<u8> {
    let (descr, columns) = if complex {
        ("<c8", channels / 2)
    } else {
        ("<f4", channels)
    };
    let shape = if columns == 1 {
        format!("({frames},)")
    } else {
        format!("({frames}, {columns})")
    };
    npy_header_for(descr, &shape)
}

/// The [`NPY_HEADER_LEN`]-byte header of a one-dimensional complex64
/// (`<c8`) `.npy` array of `len` values: the data follow at byte 128.
pub fn npy_c8_header(len: u64) -> Vec<u8> {
    npy_header_for("<c8", &format!("({len},)"))
}

/// A version 1.0 npy header of [`NPY_HEADER_LEN`] bytes for `descr` and a
/// shape written as a Python tuple.
fn npy_header_for(descr: &str, shape: &str) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut h = Vec::with_capacity(NPY_HEADER_LEN);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    h.extend_from_slice(&((NPY_HEADER_LEN - 10) as u16).to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(NPY_HEADER_LEN - 1, b' ');
    h.push(b'\n');
    h
}

/// RIFF header with a 36-byte JUNK chunk that becomes the `ds64` chunk when
/// the data exceed 4 GiB (the RF64 convention), `fmt ` for IEEE float
/// (18 bytes), `fact`, and the `data` chunk header.
const WAV_HEADER_LEN: usize = 12 + 36 + 26 + 12 + 8;

fn wav_header(frames: u64, channels: usize, sample_rate: Option<f64>) -> Vec<u8> {
    let block_align = 4 * channels as u64;
    let data = frames * block_align;
    let riff = WAV_HEADER_LEN as u64 - 8 + data;
    let big = riff > u32::MAX as u64;
    let rate = sample_rate.map_or(1, |r| r.round().clamp(1.0, u32::MAX as f64) as u32);
    let mut h = Vec::with_capacity(WAV_HEADER_LEN);
    let u32_or_ff = |v: u64| if big { u32::MAX } else { v as u32 };
    h.extend_from_slice(if big { b"RF64" } else { b"RIFF" });
    h.extend_from_slice(&u32_or_ff(riff).to_le_bytes());
    h.extend_from_slice(b"WAVE");
    if big {
        h.extend_from_slice(b"ds64");
        h.extend_from_slice(&28u32.to_le_bytes());
        h.extend_from_slice(&riff.to_le_bytes());
        h.extend_from_slice(&data.to_le_bytes());
        h.extend_from_slice(&frames.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
    } else {
        h.extend_from_slice(b"JUNK");
        h.extend_from_slice(&28u32.to_le_bytes());
        h.extend_from_slice(&[0u8; 28]);
    }
    h.extend_from_slice(b"fmt ");
    h.extend_from_slice(&18u32.to_le_bytes());
    h.extend_from_slice(&3u16.to_le_bytes()); // WAVE_FORMAT_IEEE_FLOAT
    h.extend_from_slice(&(channels as u16).to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(
        &(rate as u64 * block_align)
            .min(u32::MAX as u64)
            .to_le_bytes()[..4],
    );
    h.extend_from_slice(&(block_align as u16).to_le_bytes());
    h.extend_from_slice(&32u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // cbSize
    h.extend_from_slice(b"fact");
    h.extend_from_slice(&4u32.to_le_bytes());
    h.extend_from_slice(&(frames.min(u32::MAX as u64) as u32).to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32_or_ff(data).to_le_bytes());
    debug_assert_eq!(h.len(), WAV_HEADER_LEN);
    h
}

/// Collects the output signal in memory, interleaved (for the in-memory
/// helpers and tests).
#[derive(Debug)]
pub struct VecSink<'a> {
    /// Where the samples go.
    pub out: &'a mut Vec<f32>,
}

impl SignalSink for VecSink<'_> {
    fn write(&mut self, block: &Block) -> Result<()> {
        let c = block.channels();
        let start = self.out.len();
        self.out.resize(start + block.frames() * c, 0.0);
        for ch in 0..c {
            for (i, v) in block.channel(ch).iter().enumerate() {
                self.out[start + i * c + ch] = *v;
            }
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
