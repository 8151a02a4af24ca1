//! Signal sources: where samples come from and how they become `f32`.
//!
//! Why a module of its own: everything format-specific (raw dtypes and
//! endianness, `.npy` headers, WAV chunks) ends here. The rest of the crate
//! sees a [`ChunkSource`] that fills planar `f32` [`Block`]s, whatever the
//! file looked like.
//!
//! INTERFACE (filled in by the source implementation).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::pool::Block;

/// Sample type of the stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float (converted to f32).
    F64,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 24-bit integer, packed in 3 bytes (WAV only).
    I24,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
}

/// Byte order of the stored samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

/// Container format of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Headerless samples, described by the options.
    Raw,
    /// NumPy `.npy`.
    Npy,
    /// RIFF/RF64 WAVE.
    Wav,
}

/// What the user said about the input; only needed for raw data.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Sample type of raw data.
    pub dtype: Dtype,
    /// Byte order of raw data.
    pub endian: Endian,
    /// Bytes to skip at the start of raw data (a header).
    pub offset: u64,
    /// Interleaved channels of raw data.
    pub channels: usize,
    /// Sample rate in Hz; overrides the file's own for npy/wav.
    pub sample_rate: Option<f64>,
    /// Scale integer samples to [-1, 1).
    pub normalize: bool,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            dtype: Dtype::F32,
            endian: Endian::Little,
            offset: 0,
            channels: 1,
            sample_rate: None,
            normalize: false,
        }
    }
}

/// What an opened input holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignalInfo {
    /// The input's path (`-` for standard input).
    pub path: PathBuf,
    /// Container format.
    pub format: Format,
    /// Stored sample type.
    pub dtype: Dtype,
    /// Stored byte order.
    pub endian: Endian,
    /// Interleaved channels.
    pub channels: usize,
    /// Frames (samples per channel); `None` for a stream of unknown length.
    pub frames: Option<u64>,
    /// Sample rate in Hz, when known.
    pub sample_rate: Option<f64>,
    /// Byte offset of the first sample.
    pub data_offset: u64,
}

/// A stream of frames, converted to `f32` and deinterleaved.
pub trait ChunkSource: Send {
    /// What the input holds.
    fn info(&self) -> &SignalInfo;
    /// Reads up to `block.capacity()` frames into `block` (planar), sets its
    /// frame count and returns it; 0 means the end of the input.
    fn read_block(&mut self, block: &mut Block) -> Result<usize>;
}

/// Opens `path` (or standard input for `-`), detecting the format from the
/// magic bytes and the extension.
pub fn open(path: &Path, opts: &SourceOptions) -> Result<Box<dyn ChunkSource>> {
    let _ = (path, opts);
    unimplemented!("source::open is being written")
}
