//! Signal sources: where samples come from and how they become `f32`.
//!
//! Why a module of its own: everything format-specific (raw dtypes and
//! endianness, `.npy` headers, WAV chunks) ends here. The rest of the crate
//! sees a [`ChunkSource`] that fills planar `f32` [`Block`]s, whatever the
//! file looked like.
//!
//! How it is split:
//! - [`open`] tells standard input, FIFOs and regular files apart and
//!   detects the format: magic bytes first (`\x93NUMPY`, or
//!   `RIFF`/`RF64`/`BW64` followed by `WAVE`, `ARROW1`), then the extension (a `.npy` or
//!   `.wav` without its magic is an error rather than silently raw data),
//!   else raw. A SigMF recording is found by name before that (its
//!   `.sigmf-meta`, `.sigmf-data` or base name; see `sigmf`): its meta
//!   gives the layout of the data file beside it.
//! - `npy` and `wav` parse headers over a byte prefix (`&[u8]`), so the
//!   file reader and the stream reader share one parser each; a parser that
//!   needs more bytes than it was given says how many (`Parsed::NeedMore`).
//! - `convert` turns bytes of any [`Dtype`] into planar `f32` (the hot loop).
//! - [`arrow`] reads Arrow IPC files (Feather v2), whose columns are the
//!   channels, batch by batch through memory maps of each record batch.
//! - `mmap` reads regular files through a bounded, moving memory map, so
//!   memory stays flat however large the file; `stream` reads any
//!   [`std::io::Read`] (standard input, pipes) through one reusable buffer.

pub mod arrow;
mod convert;
mod flac;
mod mmap;
pub mod mseed;
mod npy;
mod raw;
mod sac;
#[cfg(unix)]
mod sigbus;
pub mod sigmf;
#[cfg(not(unix))]
mod sigbus {
    //! Windows refuses to shrink a file while it is mapped, so a mapped
    //! window cannot vanish: the guard is a formality there.

    /// A window that cannot vanish.
    #[derive(Debug)]
    pub(super) struct Guard;

    impl Guard {
        pub(super) fn new(_ptr: *const u8, _len: usize) -> Option<Guard> {
            Some(Guard)
        }
        pub(super) fn faulted(&self) -> bool {
            false
        }
    }
}
mod spikeglx;
mod stream;
mod wav;

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::pool::Block;
use crate::time::UtcTime;

pub(crate) use npy::check_nesting as check_npy_header_nesting;
pub(crate) use npy::header_end as npy_header_end;
pub use stream::from_reader;

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
    /// Unsigned 32-bit integer (Arrow columns only).
    U32,
    /// Signed 64-bit integer (Arrow columns only; rounded to f32).
    I64,
    /// Unsigned 64-bit integer (Arrow columns only; rounded to f32).
    U64,
    /// 16-bit IEEE float (Arrow columns only).
    F16,
}

impl Dtype {
    /// Bytes one stored sample takes (3 for [`Dtype::I24`]).
    pub fn size(self) -> usize {
        match self {
            Dtype::I8 | Dtype::U8 => 1,
            Dtype::I16 | Dtype::U16 | Dtype::F16 => 2,
            Dtype::I24 => 3,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
        }
    }

    /// The sample types headerless data may have, by name (`--dtype`, and
    /// the file extensions that name one).
    pub const RAW_NAMES: [&'static str; 7] = ["f32", "f64", "i8", "i16", "i32", "u8", "u16"];

    /// The raw sample type a name gives (`f32`, `i16`, ..., case-insensitive);
    /// `None` for anything else (`i24` is WAV-only).
    pub fn from_name(name: &str) -> Option<Dtype> {
        Some(match name.to_ascii_lowercase().as_str() {
            "f32" => Dtype::F32,
            "f64" => Dtype::F64,
            "i8" => Dtype::I8,
            "i16" => Dtype::I16,
            "i32" => Dtype::I32,
            "u8" => Dtype::U8,
            "u16" => Dtype::U16,
            _ => return None,
        })
    }

    /// The sample type a file's extension names (`x.f32`, `x.I16`), if any:
    /// the convention for headerless files that need no `--dtype`.
    pub fn from_extension(path: &Path) -> Option<Dtype> {
        Dtype::from_name(path.extension()?.to_str()?)
    }

    /// The complex (interleaved I/Q) sample types headerless data may have,
    /// by name: SigMF's names without the byte order (`--dtype cf32`, and the
    /// file extensions that name one).
    pub const COMPLEX_NAMES: [&'static str; 7] =
        ["cf32", "cf64", "ci8", "ci16", "ci32", "cu8", "cu16"];

    /// The component type of a complex sample type's name (`cf32` → `f32`,
    /// `ci16` → `i16`, ..., case-insensitive; `cfile`, GNU Radio's name for
    /// complex64 files, → `f32`); `None` for anything else.
    pub fn from_complex_name(name: &str) -> Option<Dtype> {
        let name = name.to_ascii_lowercase();
        if name == "cfile" {
            return Some(Dtype::F32);
        }
        let component = name.strip_prefix('c')?;
        if component.starts_with('c') {
            return None;
        }
        Dtype::from_name(component)
    }

    /// The raw sample type (component type, complex or not) a file's
    /// extension names: `x.f32` → (`f32`, real), `x.cf32` / `x.cfile` →
    /// (`f32`, complex).
    pub fn from_extension_any(path: &Path) -> Option<(Dtype, bool)> {
        let ext = path.extension()?.to_str()?;
        Dtype::from_name(ext)
            .map(|d| (d, false))
            .or_else(|| Dtype::from_complex_name(ext).map(|d| (d, true)))
    }

    /// The name of this component type as a sample type: `f32`, or `cf32`
    /// when `complex`.
    pub fn sample_name(self, complex: bool) -> String {
        if complex {
            format!("c{}", self.name())
        } else {
            self.name().to_owned()
        }
    }

    /// Short lower-case name, as used in options and messages (`f32`, `i24`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
            Dtype::I8 => "i8",
            Dtype::I16 => "i16",
            Dtype::I24 => "i24",
            Dtype::I32 => "i32",
            Dtype::U8 => "u8",
            Dtype::U16 => "u16",
            Dtype::U32 => "u32",
            Dtype::I64 => "i64",
            Dtype::U64 => "u64",
            Dtype::F16 => "f16",
        }
    }
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

impl Endian {
    /// This machine's byte order.
    pub fn native() -> Endian {
        if cfg!(target_endian = "big") {
            Endian::Big
        } else {
            Endian::Little
        }
    }
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
    /// SAC binary (either byte order).
    Sac,
    /// miniSEED, version 2 or 3.
    Mseed,
    /// FLAC (lossless audio), decoded with symphonia.
    Flac,
    /// SpikeGLX: a `.bin` of int16 beside its `.meta`.
    #[serde(rename = "spikeglx")]
    SpikeGlx,
    /// A SigMF recording: a `.sigmf-data` beside its `.sigmf-meta`.
    #[serde(rename = "sigmf")]
    Sigmf,
    /// An Arrow IPC file (Feather v2): numeric columns are channels.
    Arrow,
}

/// What the user said about the input; only needed for raw data.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// Sample type of raw data (the component type when `complex`); `None`
    /// takes it from the file's extension (`.f32`, `.i16`, `.cf32`, ...),
    /// and a raw input with neither is refused.
    pub dtype: Option<Dtype>,
    /// Raw data is complex: interleaved I/Q pairs of `dtype` (`--dtype
    /// cf32`, ...). Each channel then reads as two planes, I then Q.
    pub complex: bool,
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
    /// When the first sample was taken (UTC); overrides the file's own.
    pub start_time: Option<UtcTime>,
    /// Channels of a miniSEED file to read, as ObsPy `select` patterns on
    /// `NET.STA.LOC.CHA` (any matching); empty: all.
    pub select: Vec<String>,
    /// What to do with a miniSEED file's gaps.
    pub gaps: mseed::Gaps,
    /// Columns of an Arrow file to read as channels, in this order, by
    /// name (`--columns`); empty: every column, which must then all be
    /// numeric. Refused for other formats.
    pub columns: Vec<String>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            dtype: None,
            complex: false,
            endian: Endian::Little,
            offset: 0,
            channels: 1,
            sample_rate: None,
            normalize: false,
            start_time: None,
            select: Vec::new(),
            gaps: mseed::Gaps::Split,
            columns: Vec::new(),
        }
    }
}

impl SourceOptions {
    /// Raw data of sample type `dtype`, one channel, little-endian, no
    /// offset.
    pub fn raw(dtype: Dtype) -> Self {
        SourceOptions {
            dtype: Some(dtype),
            ..SourceOptions::default()
        }
    }

    /// Raw complex data (interleaved I/Q) whose components are `dtype`
    /// (`Dtype::F32` for cf32), one channel, little-endian, no offset.
    pub fn raw_complex(dtype: Dtype) -> Self {
        SourceOptions {
            dtype: Some(dtype),
            complex: true,
            ..SourceOptions::default()
        }
    }

    /// Checks the values that do not depend on the input.
    ///
    /// # Errors
    /// [`Error::Usage`] for 0 channels or a sample rate that is not a
    /// positive finite number.
    pub fn validate(&self) -> Result<()> {
        if self.channels == 0 {
            return Err(Error::usage("--channels must be at least 1"));
        }
        if self.complex && self.dtype.is_none() {
            return Err(Error::usage(
                "complex raw data needs its component type (--dtype cf32, ci16, ...)",
            ));
        }
        if let Some(r) = self.sample_rate
            && !(r.is_finite() && r > 0.0)
        {
            return Err(Error::usage(format!(
                "--sample-rate {r}: must be a positive number of Hz"
            )));
        }
        Ok(())
    }
}

/// What an opened input holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignalInfo {
    /// The input's path (`-` for standard input).
    pub path: PathBuf,
    /// Container format.
    pub format: Format,
    /// Stored sample type (of each component, when `complex`).
    pub dtype: Dtype,
    /// Stored byte order.
    pub endian: Endian,
    /// Interleaved planes: the channels, or twice the channels of a complex
    /// input, whose channel `c` reads as plane `2c` (I) and `2c + 1` (Q).
    /// Blocks, backends and sinks see planes; [`SignalInfo::signal_channels`]
    /// is what a user calls channels.
    pub channels: usize,
    /// The samples are complex (I/Q pairs); see `channels`.
    pub complex: bool,
    /// The centre frequency of a complex baseband recording in Hz (SigMF's
    /// `core:frequency`), which its spectra are offset by; `None` when
    /// unknown.
    pub center_frequency: Option<f64>,
    /// The recording's annotations (SigMF), in sample order; empty for
    /// other formats.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    /// Frames (samples per channel); `None` for a stream of unknown length.
    pub frames: Option<u64>,
    /// Sample rate in Hz, when known.
    pub sample_rate: Option<f64>,
    /// Byte offset of the first sample.
    pub data_offset: u64,
    /// When the first sample was taken (UTC), from the format's metadata
    /// or `--start-time`; `None` when unknown.
    pub start_time: Option<UtcTime>,
    /// The channels' names where the format has them (a SAC file's or
    /// miniSEED channels' `NET.STA.LOC.CHA`); empty otherwise.
    pub channel_names: Vec<String>,
    /// Which contiguous segment of the input this is, for inputs read in
    /// segments (miniSEED with `--gaps split`); `None` otherwise.
    pub segment: Option<usize>,
}

impl SignalInfo {
    /// Channels as a user counts them: complex channels count once
    /// (`channels / 2`), real ones as they are.
    pub fn signal_channels(&self) -> usize {
        if self.complex {
            self.channels / 2
        } else {
            self.channels
        }
    }

    /// The stored sample type's name: `f32`, or `cf32` for complex data.
    pub fn sample_type(&self) -> String {
        self.dtype.sample_name(self.complex)
    }
}

/// A stretch of a recording that its metadata describes (a SigMF
/// annotation: `core:sample_start`, `core:sample_count`, the frequency
/// edges and the label).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Annotation {
    /// First sample the annotation covers.
    pub sample_start: u64,
    /// Samples it covers; `None`: to the end of the recording.
    pub sample_count: Option<u64>,
    /// Lower frequency edge, Hz (absolute, as SigMF gives it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freq_lower_edge: Option<f64>,
    /// Upper frequency edge, Hz.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freq_upper_edge: Option<f64>,
    /// `core:label`, else `core:comment`; empty when it has neither.
    pub label: String,
}

/// A stream of frames, converted to `f32` and deinterleaved.
pub trait ChunkSource: Send {
    /// What the input holds.
    fn info(&self) -> &SignalInfo;
    /// Reads up to `block.capacity()` frames into `block` (planar), sets its
    /// frame count and returns it; 0 means the end of the input.
    fn read_block(&mut self, block: &mut Block) -> Result<usize>;
    /// Whether [`ChunkSource::seek`] works: regular files of fixed-size
    /// frames (raw, npy, wav, SAC, SigMF, SpikeGLX) and Arrow files can; streams and
    /// decoded formats (miniSEED, FLAC) cannot.
    fn seekable(&self) -> bool {
        false
    }
    /// Moves to frame `frame` (at most the frame count): the next block
    /// starts there. Used for the noise estimate's random access.
    ///
    /// # Errors
    /// [`Error::Usage`] when the source cannot seek.
    fn seek(&mut self, frame: u64) -> Result<()> {
        let _ = frame;
        Err(Error::usage(format!(
            "{}: this input is read in order only",
            self.info().path.display()
        )))
    }
}

/// A source lent for a while: whoever borrows it reads it as its own (a
/// front that owns an array source and hands it to
/// [`crate::process::Prepared::process_source`]).
impl<S: ChunkSource + ?Sized> ChunkSource for &mut S {
    fn info(&self) -> &SignalInfo {
        (**self).info()
    }
    fn read_block(&mut self, block: &mut Block) -> Result<usize> {
        (**self).read_block(block)
    }
    fn seekable(&self) -> bool {
        (**self).seekable()
    }
    fn seek(&mut self, frame: u64) -> Result<()> {
        (**self).seek(frame)
    }
}

/// An opened input: one stream of frames, or a miniSEED file that may hold
/// several contiguous spans (segments between gaps).
#[derive(Debug)]
pub enum Input {
    /// Any format but miniSEED (and miniSEED read as one span).
    Stream(Box<dyn ChunkSource>),
    /// A miniSEED file, indexed.
    Segmented(Box<mseed::Recording>),
}

impl std::fmt::Debug for dyn ChunkSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSource")
            .field("info", self.info())
            .finish()
    }
}

/// Opens `path` (or standard input for `-`), detecting the format from the
/// magic bytes and the extension, as one stream of frames.
///
/// A miniSEED file is read as one stream when its selection makes one span
/// (no gap, or `--gaps fill`/`interpolate`); one with several spans is an
/// error here: [`open_input`] gives them one by one.
///
/// Regular files are read through a bounded memory map (see `mmap`);
/// standard input, FIFOs and character devices through a stream reader (see
/// [`from_reader`]). Errors: [`Error::Open`] when the input cannot be opened
/// (missing, a directory), [`Error::Format`] when its contents are not what
/// they claim to be, [`Error::Usage`] for raw data with `channels == 0`.
pub fn open(path: &Path, opts: &SourceOptions) -> Result<Box<dyn ChunkSource>> {
    match open_input(path, opts)? {
        Input::Stream(source) => Ok(source),
        Input::Segmented(rec) if rec.spans() == 1 => Ok(Box::new(rec.span_source(0))),
        Input::Segmented(rec) => Err(Error::format(
            path,
            format!(
                "{} holds {} separate segments (gaps or overlaps); this command needs one contiguous recording: \
                 add --gaps fill=0 or --gaps interpolate, or --select one channel's segment (`process` runs segments one by one)",
                rec.channel_names().join(", "),
                rec.spans()
            ),
        )),
    }
}

/// Opens `path` like [`open`], but gives a miniSEED file as its index, to be
/// read span by span.
///
/// # Errors
/// As [`open`].
pub fn open_input(path: &Path, opts: &SourceOptions) -> Result<Input> {
    if path == Path::new("-") {
        return from_reader(path, io::stdin(), opts).map(Input::Stream);
    }
    // SigMF is two files, found by name (the base name alone may not exist).
    if let Some(meta) = sigmf::locate(path, opts)? {
        arrow::check_no_columns(path, opts)?;
        return Ok(Input::Stream(Box::new(sigmf::open(&meta, opts)?)));
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::open(path, e))?;
    // `File::open` succeeds on a directory on Linux; the first read would
    // then fail with a less helpful message.
    if meta.is_dir() {
        return Err(Error::open(
            path,
            io::Error::from(io::ErrorKind::IsADirectory),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::open(path, e))?;
    if !meta.is_file() {
        // A FIFO (`<(command)`) or a device: no size, no mapping.
        return from_reader(path, file, opts).map(Input::Stream);
    }
    let mut prefix = vec![0u8; meta.len().min(DETECT_BYTES as u64) as usize];
    {
        use crate::io_at::PositionalIo;
        file.read_exact_at(&mut prefix, 0)
            .map_err(|e| Error::io(path, e))?;
    }
    let format = detect(path, &prefix, opts)?;
    if format == Format::Arrow {
        return Ok(Input::Stream(Box::new(arrow::open(
            path,
            file,
            meta.len(),
            opts,
        )?)));
    }
    arrow::check_no_columns(path, opts)?;
    if format == Format::Flac {
        return Ok(Input::Stream(Box::new(flac::open_file(path, file, opts)?)));
    }
    if format == Format::Mseed {
        if opts.start_time.is_some() {
            return Err(Error::usage(format!(
                "{}: --start-time: a miniSEED file carries its own times",
                path.display()
            )));
        }
        return mseed::Recording::open(path, file, meta.len(), opts)
            .map(|r| Input::Segmented(Box::new(r)));
    }
    Ok(Input::Stream(Box::new(mmap::FileSource::open(
        path,
        file,
        meta.len(),
        opts,
    )?)))
}

/// Reads `frames` frames of interleaved little-endian `f32` from byte
/// `offset` of `file`, a scratch file this run wrote (the zero-phase
/// result), through the windowed map, described as `like` (its rate, start
/// time and names).
///
/// # Errors
/// When the file does not hold those frames.
pub fn scratch_source(
    file: std::fs::File,
    like: &SignalInfo,
    offset: u64,
    frames: u64,
) -> Result<Box<dyn ChunkSource>> {
    let len = file.metadata().map_err(|e| Error::io(&like.path, e))?.len();
    let channels = like.channels;
    let header = Header {
        format: Format::Raw,
        dtype: Dtype::F32,
        endian: Endian::Little,
        channels,
        complex: like.complex,
        center_frequency: like.center_frequency,
        annotations: Vec::new(),
        data_offset: offset,
        data_len: Some(frames.saturating_mul(channels as u64 * 4)),
        sample_rate: like.sample_rate,
        start_time: like.start_time,
        names: like.channel_names.clone(),
        gains: Vec::new(),
    };
    let mut source =
        mmap::FileSource::from_header(&like.path, file, len, header, &SourceOptions::default())?;
    source.describe_as(like);
    Ok(Box::new(source))
}

/// Largest header the parsers look at, in bytes (a `.npy` header, or the WAV
/// chunks before `data`). Real headers take well under a kilobyte; the limit
/// keeps a corrupt length field from allocating gigabytes.
const MAX_HEADER_BYTES: u64 = 64 << 20;

/// The data layout a header (or the raw options) describes.
#[derive(Debug, Clone)]
struct Header {
    format: Format,
    /// The sample type (of each component, when `complex`).
    dtype: Dtype,
    endian: Endian,
    /// Planes: channels, or twice the channels of complex data.
    channels: usize,
    /// I/Q pairs (see [`SignalInfo::channels`]).
    complex: bool,
    /// Centre frequency of complex baseband data, Hz.
    center_frequency: Option<f64>,
    /// Annotations from the metadata.
    annotations: Vec<Annotation>,
    /// Byte offset of the first sample.
    data_offset: u64,
    /// Bytes of sample data; `None`: up to the end of the input (raw data,
    /// or a WAV written by a streaming writer that never filled in the size).
    data_len: Option<u64>,
    sample_rate: Option<f64>,
    /// When the first sample was taken, from the header.
    start_time: Option<UtcTime>,
    /// The channels' names, for formats that name them (else empty).
    names: Vec<String>,
    /// Per-channel factors to physical units, applied instead of
    /// `--normalize`'s full-scale scaling (SpikeGLX's gains to µV); empty:
    /// none.
    gains: Vec<f32>,
}

impl Header {
    /// Bytes of one frame (one sample of every channel).
    fn frame_bytes(&self) -> usize {
        self.channels * self.dtype.size()
    }

    /// The [`SignalInfo`] for this layout, with `opts.sample_rate` taking
    /// precedence over the file's own rate.
    fn info(&self, path: &Path, frames: Option<u64>, opts: &SourceOptions) -> SignalInfo {
        SignalInfo {
            path: path.to_path_buf(),
            format: self.format,
            dtype: self.dtype,
            endian: self.endian,
            channels: self.channels,
            complex: self.complex,
            center_frequency: self.center_frequency,
            annotations: self.annotations.clone(),
            frames,
            sample_rate: opts.sample_rate.or(self.sample_rate),
            data_offset: self.data_offset,
            start_time: opts.start_time.or(self.start_time),
            channel_names: self.names.clone(),
            segment: None,
        }
    }
}

/// What a header parser made of a prefix of the input.
#[derive(Debug)]
enum Parsed {
    /// The header is complete.
    Header(Header),
    /// The prefix ends inside the header: give at least this many bytes from
    /// the start of the input and parse again.
    NeedMore(u64),
}

/// Bytes a prefix must hold (unless the input is shorter) for [`detect`] to
/// decide: a whole SAC header (`RIFF`, size, `WAVE` and the npy magic are
/// within it).
const DETECT_BYTES: usize = sac::HEADER_BYTES;

/// The container format of an input, from the first bytes (at least
/// [`DETECT_BYTES`] of them unless the input is shorter) and the name.
fn detect(path: &Path, prefix: &[u8], opts: &SourceOptions) -> Result<Format> {
    // A SigMF name says what the file is whatever its bytes (`open_input`
    // opens SigMF files before detecting; this is for streams).
    match path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(sigmf::extension)
    {
        Some(sigmf::Kind::Data) if opts.dtype.is_some() => {}
        Some(sigmf::Kind::Meta | sigmf::Kind::Data) => return Ok(Format::Sigmf),
        Some(kind) => return Err(sigmf::refused(path, kind)),
        None => {}
    }
    if prefix.starts_with(npy::MAGIC) {
        return Ok(Format::Npy);
    }
    if arrow::has_magic(prefix) && opts.dtype.is_none() {
        return Ok(Format::Arrow);
    }
    if prefix.starts_with(b"FEA1") && opts.dtype.is_none() {
        return Err(Error::format(
            path,
            "Feather version 1 is not read: rewrite it as Feather v2, the Arrow IPC file format \
             (pyarrow.feather.write_feather(table, path, version=2, compression=\"uncompressed\"))",
        ));
    }
    if wav::has_magic(prefix) {
        return Ok(Format::Wav);
    }
    if prefix.starts_with(flac::MAGIC) && opts.dtype.is_none() {
        return Ok(Format::Flac);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let declared_raw = opts.dtype.is_some() || Dtype::from_extension(path).is_some();
    if !declared_raw && mseed::looks_like(prefix) {
        return Ok(Format::Mseed);
    }
    // SAC has no magic: unless declared raw (`--dtype`, or a dtype
    // extension), a file named .sac, or one with a valid header version.
    if !declared_raw && (ext.as_deref() == Some("sac") || sac::looks_like(prefix)) {
        return Ok(Format::Sac);
    }
    if !declared_raw && ext.as_deref() == Some("bin") && spikeglx::meta_path(path).is_file() {
        return Ok(Format::SpikeGlx);
    }
    match ext.as_deref() {
        Some("npy") => Err(Error::format(
            path,
            "missing or invalid npy header: the file does not start with the \\x93NUMPY magic",
        )),
        Some("wav" | "wave") => Err(Error::format(
            path,
            "missing or invalid WAV header: the file does not start with RIFF/RF64/BW64 ... WAVE",
        )),
        Some("flac") if !declared_raw => Err(Error::format(
            path,
            "not FLAC: the file does not start with fLaC",
        )),
        Some("mseed" | "miniseed") if !declared_raw => Err(Error::format(
            path,
            "not miniSEED: the file does not start with a version 2 fixed header or MS3",
        )),
        Some("arrow" | "feather") if !declared_raw => Err(Error::format(
            path,
            "not an Arrow IPC file: it does not start with ARROW1",
        )),
        Some("arrows") if !declared_raw => Err(Error::format(
            path,
            "an Arrow IPC stream is not read: write the IPC file format (Feather v2: pyarrow.feather.write_feather, or pyarrow.ipc.new_file)",
        )),
        Some("parquet") if !declared_raw => Err(Error::format(
            path,
            "Parquet is not read as input (its pages are encoded and compressed, so they cannot be mapped): \
             convert it to Feather v2 (pyarrow.feather.write_feather(pyarrow.parquet.read_table(path), out, compression=\"uncompressed\"))",
        )),
        _ => Ok(Format::Raw),
    }
}

/// Parses the header of an input of the given format from `prefix` (the
/// first bytes of the input); `total` is the input's whole length when known
/// (a file, or a stream that has ended), so that a header cut short is an
/// error rather than a request for more bytes.
fn parse_header(
    path: &Path,
    format: Format,
    prefix: &[u8],
    total: Option<u64>,
    opts: &SourceOptions,
) -> Result<Parsed> {
    match format {
        Format::Raw => raw::header(path, opts).map(Parsed::Header),
        Format::Npy => npy::parse(path, prefix, total),
        Format::Wav => wav::parse(path, prefix, total),
        Format::Sac => sac::parse(path, prefix, total),
        Format::SpikeGlx => spikeglx::parse(path, opts).map(Parsed::Header),
        // Opened by `open_input` from the meta; a stream cannot be SigMF.
        Format::Sigmf => Err(sigmf::refused(path, sigmf::Kind::Meta)),
        // Opened by `open_input` and `from_reader` before headers are parsed.
        Format::Flac => Err(Error::format(path, "FLAC is decoded, not parsed")),
        Format::Mseed => Err(Error::format(
            path,
            "miniSEED is read from a regular file (it is indexed before it is read), not from a pipe or standard input",
        )),
        Format::Arrow => Err(Error::format(
            path,
            "an Arrow IPC file is read from a regular file (the footer at its end indexes the record batches), not from a pipe or standard input",
        )),
    }
}

/// Multiplies each channel of `block` by its factor in `gains` (empty:
/// nothing to do).
fn apply_gains(gains: &[f32], block: &mut Block) {
    for (c, &g) in gains.iter().enumerate() {
        block.channel_mut(c).iter_mut().for_each(|v| *v *= g);
    }
}

/// Checks that `data_len` (already reduced to whole frames where the format
/// allows) is not empty.
fn check_not_empty(path: &Path, data_len: u64) -> Result<()> {
    if data_len == 0 {
        return Err(Error::format(path, "empty: no samples"));
    }
    Ok(())
}

/// Panics unless `block` fits an input of `channels` channels.
///
/// A mismatch is a bug in the caller (blocks come from a pool shaped after
/// [`SignalInfo::channels`]), not bad input.
fn check_block(block: &Block, channels: usize) {
    assert_eq!(
        block.channels(),
        channels,
        "block has {} channels but the input has {channels}",
        block.channels()
    );
    assert!(block.capacity() > 0, "block has no room for a frame");
}
