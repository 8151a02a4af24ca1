//! SigMF recordings: a `.sigmf-data` of samples beside its `.sigmf-meta`
//! (JSON), as the SigMF specification (v1.2) and its reference reader,
//! sigmf-python, define them.
//!
//! Why a module of its own: the samples are plain interleaved values that
//! stream through the memory-mapped reader like raw data; what is
//! SigMF-specific is finding the two files and turning the JSON into a
//! layout. The JSON is deserialised into typed structs (serde), never into a
//! generic tree, so memory follows what is kept, not the file: a meta of
//! millions of annotations is legal, and only the first
//! [`MAX_ANNOTATIONS`] of them are kept (the others are counted).
//!
//! What is read:
//! - `global`: `core:datatype` (the full grammar
//!   `(c|r)(f32|f64|i32|i16|u32|u16|i8|u8)(_le|_be)?`; `u32` is refused, as
//!   sigstream has no unsigned 32-bit conversion; a multi-byte type without
//!   `_le`/`_be` is read little-endian, as sigmf-python reads it on every
//!   machine it runs on), `core:num_channels` (default 1; a complex
//!   channel reads as two planes, I then Q), `core:sample_rate`,
//!   `core:offset` (the index of the data file's first sample: SigMF
//!   indices are absolute, so it is subtracted from every capture's and
//!   annotation's index), `core:dataset` (a Non-Conforming Dataset's file
//!   name, in the meta's directory), `core:trailing_bytes` and
//!   `core:metadata_only` (refused: no samples).
//! - `captures[0]`: `core:frequency` (the centre frequency),
//!   `core:datetime` (the time of its `core:sample_start`, moved back to
//!   the data file's first sample with the rate) and `core:header_bytes`
//!   (skipped before the samples). Later captures are listed among the
//!   annotations (`capture N: FREQ Hz, DATETIME`) so that `info` shows
//!   where a recording was retuned or restarted; the samples are read as
//!   one run at the first capture's frequency. A later capture with
//!   `core:header_bytes` is refused: its header lies between samples.
//! - `annotations`: `core:sample_start`, `core:sample_count`, the frequency
//!   edges, and `core:label` (else `core:comment`), control characters made
//!   spaces and cut at [`MAX_LABEL_CHARS`].

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::mmap::FileSource;
use super::{Annotation, Dtype, Endian, Format, Header, SourceOptions, raw};
use crate::error::{Error, Result};
use crate::time::UtcTime;

/// Largest `.sigmf-meta` read, in bytes. Metas with hundreds of thousands
/// of annotations take some tens of megabytes; the file is read whole
/// before it is parsed.
pub const MAX_META_BYTES: u64 = 64 << 20;

/// Annotations kept from a meta (and, separately, later captures listed
/// as annotations): about 100 bytes each, so at most some megabytes
/// whatever the meta holds. When there are more, the first ones in the
/// file are kept and one last annotation says how many were left out.
pub const MAX_ANNOTATIONS: usize = 1 << 16;

/// Longest label kept, in characters (SigMF recommends at most 20 for a
/// label; a `core:comment` standing in for one may be a paragraph).
pub const MAX_LABEL_CHARS: usize = 256;

/// Sample rates outside this range (Hz) are not rates: a meta that says so
/// is refused rather than making durations of 10^300 seconds.
const RATE_RANGE: std::ops::RangeInclusive<f64> = 1e-9..=1e12;

/// The datatype grammar, for messages.
const GRAMMAR: &str =
    "(c|r)(f32|f64|i32|i16|u32|u16|i8|u8)(_le|_be)?, e.g. cf32_le, ci16_le, cu8, rf32_le";

/// What a `.sigmf-meta` says about its recording.
///
/// Made by [`Meta::parse`]; [`Meta::data_range`] then checks it against
/// the data file.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    /// The stored type of each value (each component, when `complex`).
    pub dtype: Dtype,
    /// Their byte order.
    pub endian: Endian,
    /// Complex samples: interleaved I/Q pairs (`c` datatypes).
    pub complex: bool,
    /// `core:num_channels`: interleaved channels (complex ones count once).
    pub channels: usize,
    /// `core:sample_rate`, Hz.
    pub sample_rate: Option<f64>,
    /// The first capture's `core:frequency`, Hz.
    pub center_frequency: Option<f64>,
    /// The first capture's `core:datetime`: when its first sample was taken.
    pub datetime: Option<UtcTime>,
    /// The first capture's `core:sample_start`, counted from the data
    /// file's first sample (`core:offset` subtracted).
    pub first_capture_start: u64,
    /// `core:offset`: the absolute index of the data file's first sample.
    pub offset: u64,
    /// `core:dataset`: the data file's name when it is not
    /// `<base>.sigmf-data` (a Non-Conforming Dataset).
    pub dataset: Option<String>,
    /// The first capture's `core:header_bytes`: bytes before the samples.
    pub header_bytes: u64,
    /// `core:trailing_bytes`: bytes after the samples.
    pub trailing_bytes: u64,
    /// Captures in the meta.
    pub captures: u64,
    /// The annotations kept and the later captures, in sample order,
    /// indices counted from the data file's first sample.
    pub annotations: Vec<Annotation>,
}

impl Meta {
    /// Parses the JSON of a `.sigmf-meta` (`path` names it in errors).
    ///
    /// # Errors
    /// [`Error::Format`] naming `path`: JSON that does not parse (with the
    /// line and column), a field of the wrong type, no or an unknown
    /// `core:datatype`, a sample rate that is not one, a datetime that is
    /// not ISO 8601, captures out of order, header bytes in a later
    /// capture, an index before `core:offset`, `core:metadata_only`.
    pub fn parse(path: &Path, json: &[u8]) -> Result<Meta> {
        let bad = |why: String| Error::format(path, why);
        let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
        let doc: Doc = serde_json::from_slice(json).map_err(|e| {
            bad(match e.classify() {
                serde_json::error::Category::Data => format!("bad SigMF metadata: {e}"),
                _ => format!("not valid JSON: {e}"),
            })
        })?;
        let g = doc.global;
        if g.metadata_only == Some(true) {
            return Err(bad(
                "core:metadata_only is true: this SigMF metadata comes without samples".into(),
            ));
        }
        let Some(datatype) = g.datatype else {
            return Err(bad(
                "no global core:datatype: the type of the samples is unknown".into(),
            ));
        };
        let (dtype, endian, complex) = parse_datatype(&datatype).map_err(bad)?;
        let channels = match g.num_channels {
            None => 1,
            Some(n) if n >= 1 => usize::try_from(n).map_err(|_| {
                bad(format!(
                    "core:num_channels {n}: more channels than memory can address"
                ))
            })?,
            Some(n) => return Err(bad(format!("core:num_channels {n}: must be at least 1"))),
        };
        let planes = channels.checked_mul(if complex { 2 } else { 1 });
        if planes.and_then(|p| p.checked_mul(dtype.size())).is_none() {
            return Err(bad(format!(
                "core:num_channels {channels}: frames of that many {datatype} samples do not fit in memory's address space"
            )));
        }
        if let Some(r) = g.sample_rate
            && !RATE_RANGE.contains(&r)
        {
            return Err(bad(format!(
                "core:sample_rate {r}: not a sample rate (sigstream takes {:e} to {:e} Hz)",
                RATE_RANGE.start(),
                RATE_RANGE.end()
            )));
        }
        if let Some(name) = &g.dataset
            && !plain_file_name(name)
        {
            return Err(bad(format!(
                "core:dataset {name:?}: must be a file name in the meta's directory (no directories)"
            )));
        }
        let offset = g.offset.unwrap_or(0);
        let relative = |what: &str, index: u64| -> Result<u64> {
            index.checked_sub(offset).ok_or_else(|| {
                bad(format!(
                    "{what} core:sample_start {index} is before core:offset {offset}, the data file's first sample \
                     (SigMF indices are absolute: they include core:offset)"
                ))
            })
        };
        let caps = doc.captures;
        let first_capture_start = match &caps.first {
            Some(c) => relative("captures[0]", c.sample_start)?,
            None => 0,
        };
        let first = caps.first.unwrap_or_default();
        let datetime = first
            .datetime
            .as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|m| bad(format!("captures[0] core:datetime: {m}")))?;
        let mut annotations = Vec::with_capacity(
            (caps.later.len() + doc.annotations.kept.len()).min(2 * MAX_ANNOTATIONS) + 1,
        );
        for (k, c) in caps.later.iter().enumerate() {
            let start = relative(&format!("captures[{}]", c.index), c.sample_start)?;
            let next = caps.later.get(k + 1).map(|n| n.sample_start);
            let mut label = format!("capture {}:", c.index + 1);
            if let Some(f) = c.frequency {
                label.push_str(&format!(" {f} Hz"));
            }
            if let Some(t) = c.datetime {
                label.push_str(&format!(" {t}"));
            }
            annotations.push(Annotation {
                sample_start: start,
                sample_count: next.map(|n| n - c.sample_start),
                freq_lower_edge: None,
                freq_upper_edge: None,
                label,
            });
        }
        for (i, a) in doc.annotations.kept.into_iter().enumerate() {
            annotations.push(Annotation {
                sample_start: relative(&format!("annotations[{i}]"), a.sample_start)?,
                ..a
            });
        }
        annotations.sort_by_key(|a| a.sample_start);
        let mut unlisted = caps.unlisted + doc.annotations.unlisted;
        if annotations.len() > MAX_ANNOTATIONS {
            unlisted += (annotations.len() - MAX_ANNOTATIONS) as u64;
            annotations.truncate(MAX_ANNOTATIONS);
        }
        if unlisted > 0 {
            annotations.push(Annotation {
                sample_start: annotations.last().map_or(0, |a| a.sample_start),
                sample_count: None,
                freq_lower_edge: None,
                freq_upper_edge: None,
                label: format!(
                    "... and {unlisted} more annotations and captures, not listed (sigstream keeps {MAX_ANNOTATIONS})"
                ),
            });
        }
        Ok(Meta {
            dtype,
            endian,
            complex,
            channels,
            sample_rate: g.sample_rate,
            center_frequency: first.frequency,
            datetime,
            first_capture_start,
            offset,
            dataset: g.dataset,
            header_bytes: first.header_bytes,
            trailing_bytes: g.trailing_bytes.unwrap_or(0),
            captures: caps.count,
            annotations,
        })
    }

    /// Planes a frame holds: the channels, twice them for complex data.
    pub fn planes(&self) -> usize {
        self.channels * if self.complex { 2 } else { 1 }
    }

    /// Bytes of one frame (one sample of every channel).
    pub fn frame_bytes(&self) -> usize {
        self.planes() * self.dtype.size()
    }

    /// The data file of the meta `meta_path`: `core:dataset` in its
    /// directory, else the same base name with `.sigmf-data`.
    pub fn data_path(&self, meta_path: &Path) -> PathBuf {
        match &self.dataset {
            Some(name) => meta_path.with_file_name(name),
            None => meta_path.with_extension("sigmf-data"),
        }
    }

    /// When the data file's first sample was taken: the first capture's
    /// datetime, moved back by the samples before that capture at `rate`
    /// (`None` when that needs a rate and there is none).
    pub fn start_time(&self, rate: Option<f64>) -> Option<UtcTime> {
        let t = self.datetime?;
        if self.first_capture_start == 0 {
            return Some(t);
        }
        t.plus_seconds(-(self.first_capture_start as f64) / rate?)
    }

    /// Where the samples lie in a data file of `len` bytes (`data_path`
    /// names it in errors): their byte offset and length, whole frames.
    ///
    /// # Errors
    /// [`Error::Format`]: the header and trailing bytes do not fit, the
    /// rest is not a whole number of frames (for complex data with an odd
    /// number of values, the message says so), or there is nothing left.
    pub fn data_range(&self, data_path: &Path, len: u64) -> Result<(u64, u64)> {
        let skipped = self.header_bytes.checked_add(self.trailing_bytes);
        let Some(held) = skipped.and_then(|s| len.checked_sub(s)) else {
            return Err(Error::format(
                data_path,
                format!(
                    "{len} bytes, fewer than the {} header bytes (captures[0] core:header_bytes) and {} trailing bytes \
                     (core:trailing_bytes) its SigMF metadata skips",
                    self.header_bytes, self.trailing_bytes
                ),
            ));
        };
        if !held.is_multiple_of(self.frame_bytes() as u64) {
            let layout = self.layout(None, None);
            return Err(raw::partial_frame(data_path, &layout, held, "sample data"));
        }
        if held == 0 {
            return Err(Error::format(data_path, "empty: no samples"));
        }
        Ok((self.header_bytes, held))
    }

    /// The layout for the reader; `rate` (the option's, else the meta's)
    /// dates the first sample.
    fn header(&self, data_len: Option<u64>, rate: Option<f64>) -> Header {
        Header {
            annotations: self.annotations.clone(),
            ..self.layout(data_len, rate)
        }
    }

    /// [`Meta::header`] without the annotations (for messages).
    fn layout(&self, data_len: Option<u64>, rate: Option<f64>) -> Header {
        Header {
            format: Format::Sigmf,
            dtype: self.dtype,
            endian: self.endian,
            channels: self.planes(),
            complex: self.complex,
            center_frequency: self.center_frequency,
            annotations: Vec::new(),
            data_offset: self.header_bytes,
            data_len,
            sample_rate: self.sample_rate,
            start_time: self.start_time(rate),
            names: Vec::new(),
            gains: Vec::new(),
        }
    }
}

/// What a path names, as SigMF: `Some(meta)` when it is a recording's
/// `.sigmf-meta`, its `.sigmf-data` (unless `--dtype` says to read it as
/// raw) or its base name (`x` for `x.sigmf-meta`, when no file `x`
/// exists); `None` when it is not SigMF.
///
/// # Errors
/// [`Error::Format`] for a SigMF archive or collection (which must be
/// extracted or named by recording), and for a `.sigmf-data` without its
/// meta.
pub(super) fn locate(path: &Path, opts: &SourceOptions) -> Result<Option<PathBuf>> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    match extension(name) {
        Some(Kind::Meta) => return Ok(Some(path.to_path_buf())),
        Some(Kind::Data) if opts.dtype.is_none() => {
            let meta = path.with_extension("sigmf-meta");
            if meta.is_file() {
                return Ok(Some(meta));
            }
            if !path.exists() {
                return Ok(None);
            }
            return Err(Error::format(
                path,
                format!(
                    "a SigMF dataset without its metadata: {} not found (give --dtype to read the samples as raw)",
                    meta.display()
                ),
            ));
        }
        Some(Kind::Data) => return Ok(None),
        Some(other) if path.exists() => return Err(refused(path, other)),
        Some(_) => return Ok(None),
        None => {}
    }
    if path.symlink_metadata().is_err() {
        let mut meta = path.as_os_str().to_owned();
        meta.push(".sigmf-meta");
        let meta = PathBuf::from(meta);
        if meta.is_file() {
            return Ok(Some(meta));
        }
    }
    Ok(None)
}

/// Whether a file name says SigMF, and which file of a recording.
pub(super) fn extension(name: &str) -> Option<Kind> {
    let name = name.to_ascii_lowercase();
    let kind = if name.ends_with(".sigmf-meta") {
        Kind::Meta
    } else if name.ends_with(".sigmf-data") {
        Kind::Data
    } else if name.ends_with(".sigmf-collection") {
        Kind::Collection
    } else if [".sigmf", ".sigmf.gz", ".sigmf.xz", ".sigmf.zip"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        Kind::Archive
    } else {
        return None;
    };
    Some(kind)
}

/// Which file of SigMF a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `.sigmf-meta`.
    Meta,
    /// `.sigmf-data`.
    Data,
    /// `.sigmf` (a tar archive), maybe compressed.
    Archive,
    /// `.sigmf-collection`.
    Collection,
}

/// The error for SigMF files sigstream does not read as they are.
pub(super) fn refused(path: &Path, kind: Kind) -> Error {
    let why = match kind {
        Kind::Archive => format!(
            "a SigMF archive (tar): extract it first (tar xf {}) and name the .sigmf-meta it holds",
            path.display()
        ),
        Kind::Collection => {
            "a SigMF collection: name one of its recordings' .sigmf-meta files".to_string()
        }
        Kind::Meta | Kind::Data => {
            "SigMF is read from regular files (the .sigmf-meta and the data beside it), not from a pipe or standard input"
                .to_string()
        }
    };
    Error::format(path, why)
}

/// Opens the recording whose meta is `meta_path`: its data file is read
/// through the memory-mapped reader with the meta's layout.
pub(super) fn open(meta_path: &Path, opts: &SourceOptions) -> Result<FileSource> {
    opts.validate()?;
    if opts.dtype.is_some() {
        return Err(Error::usage(format!(
            "{}: --dtype: a SigMF recording's metadata gives its datatype (name the .sigmf-data with --dtype to read it as raw)",
            meta_path.display()
        )));
    }
    let meta = read_meta(meta_path)?;
    let data_path = meta.data_path(meta_path);
    let file = std::fs::File::open(&data_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::format(
                meta_path,
                format!(
                    "its data file {} is missing (core:metadata_only is not set)",
                    data_path.display()
                ),
            )
        } else {
            Error::open(&data_path, e)
        }
    })?;
    let stat = file.metadata().map_err(|e| Error::open(&data_path, e))?;
    if !stat.is_file() {
        return Err(Error::format(
            &data_path,
            "the SigMF data file is not a regular file",
        ));
    }
    let (_, data_len) = meta.data_range(&data_path, stat.len())?;
    let header = meta.header(Some(data_len), opts.sample_rate.or(meta.sample_rate));
    FileSource::from_header(&data_path, file, stat.len(), header, opts)
}

/// Reads and parses the meta at `path`, refusing one over
/// [`MAX_META_BYTES`] before reading it (and reading no more than that if
/// it grows meanwhile).
fn read_meta(path: &Path) -> Result<Meta> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::open(path, e))?;
    let size = file.metadata().map_err(|e| Error::open(path, e))?.len();
    let too_big = |size: u64| {
        Error::format(
            path,
            format!(
                "{size} bytes: larger than the {} MiB sigstream reads as SigMF metadata",
                MAX_META_BYTES >> 20
            ),
        )
    };
    if size > MAX_META_BYTES {
        return Err(too_big(size));
    }
    // At most MAX_META_BYTES + 1, so it fits a usize.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_META_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_META_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Meta::parse(path, &bytes)
}

/// The sample type a SigMF datatype names: (component type, byte order,
/// complex).
fn parse_datatype(text: &str) -> std::result::Result<(Dtype, Endian, bool), String> {
    let unknown = || format!("core:datatype {text:?} is not a SigMF datatype: {GRAMMAR}");
    let lower = text.to_ascii_lowercase();
    let (body, endian) = match lower.rsplit_once('_') {
        Some((b, "le")) => (b, Some(Endian::Little)),
        Some((b, "be")) => (b, Some(Endian::Big)),
        Some(_) => return Err(unknown()),
        None => (lower.as_str(), None),
    };
    let (complex, component) = match body.split_at_checked(1) {
        Some(("c", rest)) => (true, rest),
        Some(("r", rest)) => (false, rest),
        _ => return Err(unknown()),
    };
    let dtype = match component {
        "f32" => Dtype::F32,
        "f64" => Dtype::F64,
        "i32" => Dtype::I32,
        "i16" => Dtype::I16,
        "i8" => Dtype::I8,
        "u16" => Dtype::U16,
        "u8" => Dtype::U8,
        "u32" => {
            return Err(format!(
                "core:datatype {text:?}: unsigned 32-bit samples are not supported (sigstream reads f32, f64, i32, i16, i8, u16 and u8 components)"
            ));
        }
        _ => return Err(unknown()),
    };
    // One-byte types have no byte order; SigMF omits it.
    let endian = if dtype.size() == 1 {
        Endian::Little
    } else {
        endian.unwrap_or(Endian::Little)
    };
    Ok((dtype, endian, complex))
}

/// An ISO 8601 time, or what is wrong with it.
fn parse_time(text: &str) -> std::result::Result<UtcTime, String> {
    UtcTime::parse(text).map_err(|e| match e {
        Error::Usage { msg } => msg,
        other => other.to_string(),
    })
}

/// A `core:dataset` that names a file beside the meta, nothing else.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', ':', '\0'])
        && Path::new(name).file_name() == Some(std::ffi::OsStr::new(name))
}

/// `text` for a label: control characters (newlines in a comment) made
/// spaces, cut at [`MAX_LABEL_CHARS`] characters.
fn label_text(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .by_ref()
        .take(MAX_LABEL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// The parts of a meta that are read.
#[derive(Deserialize)]
struct Doc {
    global: Global,
    #[serde(default)]
    captures: Captures,
    #[serde(default)]
    annotations: Annotations,
}

/// The `global` fields that are read (others are skipped unread).
#[derive(Deserialize)]
struct Global {
    #[serde(rename = "core:datatype")]
    datatype: Option<String>,
    #[serde(rename = "core:sample_rate")]
    sample_rate: Option<f64>,
    #[serde(rename = "core:num_channels")]
    num_channels: Option<u64>,
    #[serde(rename = "core:offset")]
    offset: Option<u64>,
    #[serde(rename = "core:dataset")]
    dataset: Option<String>,
    #[serde(rename = "core:trailing_bytes")]
    trailing_bytes: Option<u64>,
    #[serde(rename = "core:metadata_only")]
    metadata_only: Option<bool>,
}

/// One capture segment's fields that are read.
#[derive(Deserialize, Default)]
struct Capture {
    #[serde(rename = "core:sample_start", default)]
    sample_start: u64,
    #[serde(rename = "core:frequency")]
    frequency: Option<f64>,
    #[serde(rename = "core:datetime")]
    datetime: Option<String>,
    #[serde(rename = "core:header_bytes", default)]
    header_bytes: u64,
}

/// A capture after the first, as listed.
struct LaterCapture {
    /// Its position in `captures`.
    index: u64,
    sample_start: u64,
    frequency: Option<f64>,
    datetime: Option<UtcTime>,
}

/// The captures: the first whole, the later ones checked and listed (up
/// to [`MAX_ANNOTATIONS`]).
#[derive(Default)]
struct Captures {
    first: Option<Capture>,
    later: Vec<LaterCapture>,
    count: u64,
    /// Later captures checked but not listed.
    unlisted: u64,
}

impl<'de> Deserialize<'de> for Captures {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Captures;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of capture segments")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Captures, A::Error> {
                let mut out = Captures::default();
                let mut previous = None;
                while let Some(c) = seq.next_element::<Capture>()? {
                    let i = out.count;
                    out.count += 1;
                    if let Some(p) = previous
                        && c.sample_start < p
                    {
                        return Err(de::Error::custom(format!(
                            "captures[{i}]: core:sample_start {} comes before the previous capture's {p} \
                             (SigMF captures are in sample order)",
                            c.sample_start
                        )));
                    }
                    previous = Some(c.sample_start);
                    if i == 0 {
                        out.first = Some(c);
                        continue;
                    }
                    if c.header_bytes > 0 {
                        return Err(de::Error::custom(format!(
                            "captures[{i}]: core:header_bytes {}: a header between captures interrupts the samples, \
                             which sigstream reads as one run (only the first capture may have header bytes)",
                            c.header_bytes
                        )));
                    }
                    let datetime =
                        c.datetime
                            .as_deref()
                            .map(parse_time)
                            .transpose()
                            .map_err(|m| {
                                de::Error::custom(format!("captures[{i}] core:datetime: {m}"))
                            })?;
                    if out.later.len() < MAX_ANNOTATIONS {
                        out.later.push(LaterCapture {
                            index: i,
                            sample_start: c.sample_start,
                            frequency: c.frequency,
                            datetime,
                        });
                    } else {
                        out.unlisted += 1;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

/// One annotation's fields that are read.
#[derive(Deserialize)]
struct RawAnnotation {
    #[serde(rename = "core:sample_start", default)]
    sample_start: u64,
    #[serde(rename = "core:sample_count")]
    sample_count: Option<u64>,
    #[serde(rename = "core:freq_lower_edge")]
    freq_lower_edge: Option<f64>,
    #[serde(rename = "core:freq_upper_edge")]
    freq_upper_edge: Option<f64>,
    #[serde(rename = "core:label")]
    label: Option<String>,
    #[serde(rename = "core:comment")]
    comment: Option<String>,
}

/// The annotations: the first [`MAX_ANNOTATIONS`] kept, the others counted.
#[derive(Default)]
struct Annotations {
    kept: Vec<Annotation>,
    unlisted: u64,
}

impl<'de> Deserialize<'de> for Annotations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Annotations;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of annotation segments")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Annotations, A::Error> {
                let mut out = Annotations::default();
                while out.kept.len() < MAX_ANNOTATIONS {
                    let Some(a) = seq.next_element::<RawAnnotation>()? else {
                        return Ok(out);
                    };
                    let text = a.label.or(a.comment).unwrap_or_default();
                    out.kept.push(Annotation {
                        sample_start: a.sample_start,
                        sample_count: a.sample_count,
                        freq_lower_edge: a.freq_lower_edge,
                        freq_upper_edge: a.freq_upper_edge,
                        label: label_text(&text),
                    });
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    out.unlisted += 1;
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(json: &str) -> Result<Meta> {
        Meta::parse(Path::new("t.sigmf-meta"), json.as_bytes())
    }

    #[test]
    fn datatypes_follow_the_grammar() {
        let ok = |t: &str| parse_datatype(t).unwrap();
        assert_eq!(ok("cf32_le"), (Dtype::F32, Endian::Little, true));
        assert_eq!(ok("ri16_be"), (Dtype::I16, Endian::Big, false));
        assert_eq!(ok("cu8"), (Dtype::U8, Endian::Little, true));
        assert_eq!(
            ok("ri8_be"),
            (Dtype::I8, Endian::Little, false),
            "bytes have no order"
        );
        assert_eq!(
            ok("rf64"),
            (Dtype::F64, Endian::Little, false),
            "sigmf-python's default"
        );
        assert_eq!(ok("CI16_LE"), (Dtype::I16, Endian::Little, true));
        for bad in [
            "cf16_le",
            "f32_le",
            "cf32_me",
            "cf32le",
            "",
            "c",
            "xf32",
            "cf32_le_be",
        ] {
            let e = parse_datatype(bad).unwrap_err();
            assert!(
                e.contains("not a SigMF datatype") && e.contains("(c|r)"),
                "{bad}: {e}"
            );
        }
        assert!(
            parse_datatype("ru32_le")
                .unwrap_err()
                .contains("unsigned 32-bit")
        );
    }

    #[test]
    fn a_capture_after_the_data_start_dates_the_first_sample_back() {
        let m = meta(
            r#"{"global":{"core:datatype":"ci8","core:sample_rate":1000,"core:offset":10},
                "captures":[{"core:sample_start":510,"core:datetime":"2024-01-01T00:00:01Z"}],
                "annotations":[{"core:sample_start":12,"core:comment":"two\nlines"}]}"#,
        )
        .unwrap();
        assert_eq!(m.first_capture_start, 500);
        let t0 = UtcTime::parse("2024-01-01T00:00:00.5Z").unwrap();
        assert_eq!(
            m.start_time(m.sample_rate),
            Some(t0),
            "500 samples at 1 kHz before it"
        );
        assert_eq!(m.start_time(None), None, "no rate: no way to date sample 0");
        assert_eq!(m.annotations[0].sample_start, 2, "core:offset subtracted");
        assert_eq!(m.annotations[0].label, "two lines");
        let e = meta(r#"{"global":{"core:datatype":"ci8","core:offset":10},"annotations":[{"core:sample_start":3}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("before core:offset 10"), "{e}");
    }

    #[test]
    fn annotations_beyond_the_cap_are_counted_not_kept() {
        let n = MAX_ANNOTATIONS + 5;
        let list: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"core:sample_start":{i},"core:label":"a{i}"}}"#))
            .collect();
        let json = format!(
            r#"{{"global":{{"core:datatype":"rf32_le"}},"captures":[],"annotations":[{}]}}"#,
            list.join(",")
        );
        let m = meta(&json).unwrap();
        assert_eq!(m.annotations.len(), MAX_ANNOTATIONS + 1);
        assert_eq!(
            m.annotations[MAX_ANNOTATIONS - 1].label,
            format!("a{}", MAX_ANNOTATIONS - 1)
        );
        assert!(m.annotations[MAX_ANNOTATIONS].label.contains("5 more"));
    }

    #[test]
    fn errors_say_where() {
        let e = meta("{\"global\": {\"core:datatype\": \"cf32_le\",}}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not valid JSON") && e.contains("line 1"), "{e}");
        let e = meta(r#"{"global":{"core:datatype":"cf32_le","core:sample_rate":"fast"}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bad SigMF metadata") && e.contains("column"),
            "{e}"
        );
        let e = meta(
            r#"{"global":{"core:datatype":"cu8"},"captures":[{"core:sample_start":0},{"core:sample_start":9,"core:header_bytes":4}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("captures[1]: core:header_bytes 4"), "{e}");
    }
}
