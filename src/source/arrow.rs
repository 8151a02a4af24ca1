//! Arrow IPC files (Feather v2) as input: numeric columns are channels.
//!
//! Why a reader of our own around arrow-ipc rather than its `FileReader`:
//! `FileReader` reads each record batch into memory (a batch can be the
//! whole table), where sigstream promises flat memory whatever the file.
//! Here each record batch is memory-mapped on its own and decoded with
//! arrow-ipc's [`FileDecoder`] over a [`Buffer`] that points into the map
//! ([`Buffer::from_custom_allocation`], as arrow-rs's `zero_copy_ipc`
//! example does), so the arrays are views of the page cache, never copies:
//! decoding checks every length and offset against the batch and tells
//! where each column's values lie, touching only the metadata. That map is
//! then dropped, and each block maps exactly the bytes of its rows of each
//! column (as `mmap.rs` maps its windows: populated, then unmapped) and
//! converts them straight from the page cache into the block's planes,
//! through the same decoders as every other format (`convert.rs`, one
//! column at a time). Mapping exact windows rather than keeping the batch
//! mapped matters: the page cache holds large folios, and a fault in a
//! long-lived map maps a whole folio (up to 2 MiB) per column ahead of
//! what is read, which made a 512 MiB batch's peak 4 MiB higher than a
//! small batch's. Blocks are filled across batch boundaries, so the samples
//! do not depend on how the file was cut into batches, nor on the block
//! size.
//!
//! What is read: an Arrow IPC *file* (`ARROW1` at both ends, a footer that
//! indexes the record batches; Feather v2 is that format), little-endian,
//! uncompressed. The columns read are those `--columns` names, in its
//! order, or else every column. Each must be numeric: `int8` to `int64`,
//! `uint8` to `uint64`, `float16`, `float32`, `float64`, converted to `f32`
//! as the other formats convert them (integers keep their values; with
//! `--normalize` they are scaled as `convert.rs` says). The schema's
//! metadata may give the sample rate ([`SAMPLE_RATE_KEY`], in Hz, a decimal
//! string) and the start time ([`START_TIME_KEY`], ISO 8601 UTC);
//! `--sample-rate` and `--start-time` override them. Columns are named by
//! their field names, so events carry them. Columns may differ in type;
//! [`SignalInfo::dtype`] is the widest selected one (the memory planner
//! sizes the stored bytes of a frame by it).
//!
//! What is refused, with `sigstream: <path>: <what is wrong>` and exit
//! code 2, before the first sample is read (every batch's metadata is
//! decoded and checked when the file is opened): a file cut short or whose
//! footer lies (lengths and offsets are checked against the file's size
//! before anything is mapped or allocated), an Arrow IPC *stream* or
//! Feather v1, big-endian files, compressed batches (LZ4 or ZSTD buffers
//! cannot be read in place: write with `compression="uncompressed"`), a
//! selected column that is not numeric (strings, booleans, timestamps,
//! dictionaries, nested types: leave them out with `--columns`), a null in
//! a selected column, batches whose columns disagree on their length or
//! whose buffers are misaligned or out of bounds, no columns, no rows, and
//! more than [`MAX_BATCHES`] batches. A file that shrinks while it is read
//! gives [`Error::Shrank`] (exit 1), never a SIGBUS (see `sigbus.rs`).

use std::fs::File;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_array::Array;
use arrow_buffer::Buffer;
use arrow_ipc::reader::FileDecoder;
use arrow_schema::{DataType, Schema};
use memmap2::{Mmap, MmapOptions};

use super::convert::{PlaneFn, plane};
use super::{
    ChunkSource, Dtype, Endian, Format, SignalInfo, SourceOptions, check_block, check_not_empty,
    sigbus,
};
use crate::error::{Error, Result};
use crate::io_at::PositionalIo;
use crate::pool::Block;
use crate::time::UtcTime;

/// The schema metadata key that gives the sample rate, in Hz, as a decimal
/// string (`pa.schema(..., metadata={"sample_rate": "250"})`).
pub const SAMPLE_RATE_KEY: &str = "sample_rate";

/// The schema metadata key that gives when the first row was taken, ISO
/// 8601 UTC (`"2024-03-01T12:00:00.25Z"`).
pub const START_TIME_KEY: &str = "start_time";

/// Most record batches a file may hold. The index keeps 32 bytes per batch
/// (32 MiB at this cap): pyarrow's default of 64 Ki rows a batch reaches it
/// only past 2^36 rows; a file of smaller batches than that must be
/// rewritten with larger ones.
pub const MAX_BATCHES: usize = 1 << 20;

/// Largest footer read, in bytes: 24 bytes per batch plus the schema.
pub const MAX_FOOTER_BYTES: u64 = 64 << 20;

/// A file's first and last bytes.
const MAGIC: &[u8; 6] = b"ARROW1";

/// Bytes before the first message: the magic padded to 8.
const HEAD: u64 = 8;

/// Bytes after the footer: its length (i32) and the magic.
const TAIL: u64 = 10;

/// Sample rates outside this range (Hz) are not rates (as SigMF's).
const RATE_RANGE: std::ops::RangeInclusive<f64> = 1e-9..=1e12;

/// Whether `prefix` starts like an Arrow IPC file.
pub(super) fn has_magic(prefix: &[u8]) -> bool {
    prefix.starts_with(MAGIC)
}

/// Refuses `--columns` for an input that is not an Arrow file (it would be
/// ignored).
pub(super) fn check_no_columns(path: &Path, opts: &SourceOptions) -> Result<()> {
    if opts.columns.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--columns {}: {} is not an Arrow IPC (Feather v2) file; only those have named columns to select",
        opts.columns.join(","),
        path.display()
    )))
}

/// One record batch, as the footer places it.
#[derive(Debug, Clone, Copy)]
struct Batch {
    /// Byte offset of its message (metadata then body).
    offset: u64,
    /// Bytes of its body.
    body: u64,
    /// Index of its first row in the whole file.
    first_row: u64,
    /// Bytes of its metadata (prefix and flatbuffer, padded).
    meta: u32,
}

impl Batch {
    fn len(&self) -> u64 {
        u64::from(self.meta) + self.body
    }
}

/// The batch being read: where each channel's values start.
#[derive(Debug)]
struct Loaded {
    index: usize,
    /// Byte offset in the file of each channel's first value.
    columns: Vec<u64>,
}

/// A selected column.
#[derive(Debug, Clone, Copy)]
struct Channel {
    dtype: Dtype,
    convert: PlaneFn,
}

/// An Arrow IPC file read batch by batch through memory maps.
#[derive(Debug)]
pub(super) struct ArrowSource {
    info: SignalInfo,
    file: File,
    /// The file's size when it was opened.
    len: u64,
    decoder: FileDecoder,
    channels: Vec<Channel>,
    batches: Vec<Batch>,
    /// Rows in the file.
    frames: u64,
    /// The next frame to read, and the batch that holds it.
    next_frame: u64,
    batch: usize,
    current: Option<Loaded>,
    /// Whether to map windows (false once mapping or guarding has failed:
    /// then positioned reads).
    map: bool,
    /// The positioned reads' buffer, sized on first use.
    buf: Vec<u8>,
}

/// Opens the Arrow IPC file `file` (`len` bytes, named `path`): reads and
/// checks its footer, schema and every batch's metadata.
///
/// # Errors
/// [`Error::Format`] for anything the module docs list as refused;
/// [`Error::Usage`] for `--columns` naming no column or one twice;
/// [`Error::Io`] when the file cannot be read or mapped.
pub(super) fn open(path: &Path, file: File, len: u64, opts: &SourceOptions) -> Result<ArrowSource> {
    let bad = |msg: String| Error::format(path, msg);
    if len < HEAD + TAIL {
        return Err(bad(format!(
            "truncated Arrow IPC file: {len} bytes, fewer than its magic at both ends takes"
        )));
    }
    let mut tail = [0u8; TAIL as usize];
    file.read_exact_at(&mut tail, len - TAIL)
        .map_err(|e| Error::io(path, e))?;
    if &tail[4..] != MAGIC {
        return Err(bad(
            "truncated or not an Arrow IPC file: it starts with ARROW1 but does not end with it \
             (a file cut short, or still being written)"
                .into(),
        ));
    }
    let footer_len = i32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let room = len - HEAD - TAIL;
    let footer_len = match u64::try_from(footer_len) {
        Ok(n) if n > 0 && n <= room && n <= MAX_FOOTER_BYTES => n,
        _ => {
            return Err(bad(format!(
                "corrupt Arrow IPC file: the footer claims {footer_len} bytes, but {room} lie between the magic numbers{}",
                if footer_len > 0 && footer_len as u64 > MAX_FOOTER_BYTES {
                    format!(" (and at most {} MiB are read)", MAX_FOOTER_BYTES >> 20)
                } else {
                    String::new()
                }
            )));
        }
    };
    let footer_start = len - TAIL - footer_len;
    // At most MAX_FOOTER_BYTES, inside the file.
    let mut footer_bytes = vec![0u8; footer_len as usize];
    file.read_exact_at(&mut footer_bytes, footer_start)
        .map_err(|e| Error::io(path, e))?;
    let footer = arrow_ipc::root_as_footer(&footer_bytes)
        .map_err(|e| bad(format!("corrupt Arrow IPC footer: {}", first_line(&e))))?;
    let fb_schema = footer
        .schema()
        .ok_or_else(|| bad("corrupt Arrow IPC footer: no schema".into()))?;
    if fb_schema.endianness() != arrow_ipc::Endianness::Little {
        return Err(bad(
            "a big-endian Arrow file: sigstream reads little-endian Arrow (what every common writer produces)"
                .into(),
        ));
    }
    let schema = arrow_ipc::convert::try_fb_to_schema(fb_schema)
        .map_err(|e| bad(format!("invalid Arrow schema: {}", first_line(&e))))?;
    let (projection, channels, names) = select(path, &schema, opts)?;
    let (sample_rate, start_time) = metadata(path, &schema)?;

    let blocks = footer
        .recordBatches()
        .ok_or_else(|| bad("corrupt Arrow IPC footer: no list of record batches".into()))?;
    if blocks.len() > MAX_BATCHES {
        return Err(bad(format!(
            "{} record batches, more than the {MAX_BATCHES} sigstream indexes: rewrite the file with larger batches",
            blocks.len()
        )));
    }
    let mut batches = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let (offset, meta, body) = (b.offset(), b.metaDataLength(), b.bodyLength());
        let placed = u64::try_from(offset)
            .ok()
            .zip(u32::try_from(meta).ok())
            .zip(u64::try_from(body).ok());
        let Some(((offset, meta), body)) = placed.filter(|((o, m), b)| {
            *o >= HEAD
                && *m >= 8
                && o.checked_add(u64::from(*m))
                    .and_then(|e| e.checked_add(*b))
                    .is_some_and(|end| end <= footer_start)
        }) else {
            return Err(bad(format!(
                "corrupt Arrow IPC footer: record batch {i} claims bytes {offset} + {meta} + {body}, outside the file's {footer_start} bytes of messages"
            )));
        };
        batches.push(Batch {
            offset,
            body,
            first_row: 0,
            meta,
        });
    }
    let version = footer.version();
    drop(footer_bytes);

    let decoder = FileDecoder::new(Arc::new(schema), version)
        .with_projection(projection)
        .with_require_alignment(true);
    let widest = channels
        .iter()
        .map(|c| c.dtype)
        .max_by_key(|d| d.size())
        .unwrap_or(Dtype::F32);
    let data_offset = batches
        .first()
        .map_or(HEAD, |b| b.offset + u64::from(b.meta));
    let mut source = ArrowSource {
        info: SignalInfo {
            path: path.to_path_buf(),
            format: Format::Arrow,
            dtype: widest,
            endian: Endian::Little,
            channels: channels.len(),
            complex: false,
            center_frequency: None,
            annotations: Vec::new(),
            frames: None,
            sample_rate: opts.sample_rate.or(sample_rate),
            data_offset,
            start_time: opts.start_time.or(start_time),
            channel_names: names,
            segment: None,
        },
        file,
        len,
        decoder,
        channels,
        batches,
        frames: 0,
        next_frame: 0,
        batch: 0,
        current: None,
        map: true,
        buf: Vec::new(),
    };
    // Every batch's metadata is decoded and checked now, so that a bad
    // batch is refused before anything is processed; each map is dropped
    // (its pages with it) before the next is made.
    let mut rows = 0u64;
    for i in 0..source.batches.len() {
        source.batches[i].first_row = rows;
        let (loaded, n) = source.load(i)?;
        drop(loaded);
        rows = rows
            .checked_add(n)
            .ok_or_else(|| bad("the record batches hold more than 2^64 rows".into()))?;
    }
    check_not_empty(path, rows)?;
    source.frames = rows;
    source.info.frames = Some(rows);
    Ok(source)
}

/// The schema indices to read (the projection, in channel order), each
/// column's conversion, and their names.
fn select(
    path: &Path,
    schema: &Schema,
    opts: &SourceOptions,
) -> Result<(Vec<usize>, Vec<Channel>, Vec<String>)> {
    let fields = schema.fields();
    if fields.is_empty() {
        return Err(Error::format(path, "the Arrow schema has no columns"));
    }
    let projection: Vec<usize> = if opts.columns.is_empty() {
        (0..fields.len()).collect()
    } else {
        let mut picked = Vec::with_capacity(opts.columns.len());
        for name in &opts.columns {
            let mut matches = fields.iter().enumerate().filter(|(_, f)| f.name() == name);
            let Some((i, _)) = matches.next() else {
                return Err(Error::usage(format!(
                    "--columns {name}: {} has no such column (it has {})",
                    path.display(),
                    list_names(schema)
                )));
            };
            if matches.next().is_some() {
                return Err(Error::format(
                    path,
                    format!("--columns {name}: several columns have that name"),
                ));
            }
            if picked.contains(&i) {
                return Err(Error::usage(format!(
                    "--columns names {name} twice: each column is one channel"
                )));
            }
            picked.push(i);
        }
        picked
    };
    let mut channels = Vec::with_capacity(projection.len());
    let mut names = Vec::with_capacity(projection.len());
    for &i in &projection {
        let field = &fields[i];
        let Some(dtype) = dtype_of(field.data_type()) else {
            let why = match field.data_type() {
                DataType::Dictionary(..) => "dictionary-encoded".to_string(),
                t => format!("of type {t}"),
            };
            let hint = if opts.columns.is_empty() {
                "; pick the numeric columns with --columns"
            } else {
                ""
            };
            return Err(Error::format(
                path,
                format!(
                    "column '{}' is {why}, not numeric: channels are integer or float columns (int8..int64, uint8..uint64, float16/32/64){hint}",
                    field.name()
                ),
            ));
        };
        channels.push(Channel {
            dtype,
            convert: plane(dtype, Endian::Little, opts.normalize),
        });
        names.push(field.name().clone());
    }
    Ok((projection, channels, names))
}

/// The first line of an error's text: the flatbuffers verifier appends the
/// path it took, one line per step, and our messages are one line.
fn first_line(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// The first columns' names, for messages.
fn list_names(schema: &Schema) -> String {
    const SHOWN: usize = 20;
    let fields = schema.fields();
    let mut list: Vec<&str> = fields
        .iter()
        .take(SHOWN)
        .map(|f| f.name().as_str())
        .collect();
    if fields.len() > SHOWN {
        list.push("...");
    }
    list.join(", ")
}

/// The stored type of a numeric column; `None` for anything else.
fn dtype_of(t: &DataType) -> Option<Dtype> {
    Some(match t {
        DataType::Int8 => Dtype::I8,
        DataType::Int16 => Dtype::I16,
        DataType::Int32 => Dtype::I32,
        DataType::Int64 => Dtype::I64,
        DataType::UInt8 => Dtype::U8,
        DataType::UInt16 => Dtype::U16,
        DataType::UInt32 => Dtype::U32,
        DataType::UInt64 => Dtype::U64,
        DataType::Float16 => Dtype::F16,
        DataType::Float32 => Dtype::F32,
        DataType::Float64 => Dtype::F64,
        _ => return None,
    })
}

/// The sample rate and start time the schema's metadata gives.
fn metadata(path: &Path, schema: &Schema) -> Result<(Option<f64>, Option<UtcTime>)> {
    let meta = schema.metadata();
    let rate = match meta.get(SAMPLE_RATE_KEY) {
        None => None,
        Some(text) => match text.trim().parse::<f64>() {
            Ok(r) if RATE_RANGE.contains(&r) => Some(r),
            _ => {
                return Err(Error::format(
                    path,
                    format!(
                        "schema metadata {SAMPLE_RATE_KEY} = {text:?}: not a sample rate in Hz (a number from 1e-9 to 1e12)"
                    ),
                ));
            }
        },
    };
    let start =
        match meta.get(START_TIME_KEY) {
            None => None,
            Some(text) => Some(UtcTime::parse(text.trim()).map_err(|e| {
                Error::format(path, format!("schema metadata {START_TIME_KEY}: {e}"))
            })?),
        };
    Ok((rate, start))
}

impl ArrowSource {
    fn bad(&self, msg: String) -> Error {
        Error::format(&self.info.path, msg)
    }

    /// The file's size now (0 when it cannot be had).
    fn len_now(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    /// The error for a file that no longer holds its bytes.
    fn shrank(&self) -> Error {
        Error::Shrank {
            path: self.info.path.clone(),
            was: self.len,
            now: self.len_now(),
        }
    }

    /// Rows of batch `i` (known once the file is open).
    fn rows(&self, i: usize) -> u64 {
        let next = self.batches.get(i + 1).map_or(self.frames, |b| b.first_row);
        next - self.batches[i].first_row
    }

    /// Maps batch `i` and decodes it: where each channel's values lie in
    /// the map, and its row count. Checks its message (a record batch,
    /// uncompressed) and its columns (lengths, bounds, alignment, nulls).
    fn load(&self, i: usize) -> Result<(Loaded, u64)> {
        let b = self.batches[i];
        if self.len_now() < b.offset + b.len() {
            return Err(self.shrank());
        }
        // Checked against the file's size when it was opened.
        let len = b.len() as usize;
        let map = map_range(&self.file, b.offset, len).map_err(|e| {
            Error::io(
                &self.info.path,
                std::io::Error::new(e.kind(), format!("cannot map record batch {i}: {e}")),
            )
        })?;
        let map = Arc::new(map);
        let guard = sigbus::Guard::new(map.as_ptr(), map.len());
        let decoded = self.decode(i, &b, &map);
        if guard.as_ref().is_some_and(sigbus::Guard::faulted) {
            return Err(self.shrank());
        }
        drop(guard);
        let (columns, rows) = decoded?;
        let columns = columns.into_iter().map(|c| b.offset + c as u64).collect();
        Ok((Loaded { index: i, columns }, rows))
    }

    /// The decoding part of [`ArrowSource::load`], over the mapped bytes.
    fn decode(&self, i: usize, b: &Batch, map: &Arc<Mmap>) -> Result<(Vec<usize>, u64)> {
        let at =
            |what: String| self.bad(format!("record batch {i} (at byte {}): {what}", b.offset));
        let meta = &map[..b.meta as usize];
        // The encapsulated message: a continuation marker and a length,
        // or (before format 0.15) a length alone, then the flatbuffer.
        let flat = if meta[..4] == [0xFF; 4] {
            &meta[8..]
        } else {
            &meta[4..]
        };
        let message = arrow_ipc::root_as_message(flat)
            .map_err(|e| at(format!("corrupt message metadata: {}", first_line(&e))))?;
        let Some(header) = message.header_as_record_batch() else {
            return Err(at(format!(
                "the footer points at a {:?} message, not a record batch",
                message.header_type()
            )));
        };
        if let Some(c) = header.compression() {
            return Err(at(format!(
                "its buffers are {:?}-compressed, which cannot be read in place: write the file uncompressed \
                 (pyarrow.feather.write_feather(..., compression=\"uncompressed\"))",
                c.codec()
            )));
        }
        let ptr = NonNull::new(map.as_ptr().cast_mut()).ok_or_else(|| at("an empty map".into()))?;
        let owner: Arc<dyn arrow_buffer::alloc::Allocation> = map.clone();
        // SAFETY: `ptr` and `map.len()` are the live, read-only mapping
        // that `owner` keeps alive for as long as any Buffer (or array)
        // made from it exists; nothing in this process writes to it. Another
        // process truncating the file is caught by the guards (`sigbus.rs`).
        let buffer = unsafe { Buffer::from_custom_allocation(ptr, map.len(), owner) };
        let block = arrow_ipc::Block::new(0, b.meta as i32, b.body as i64);
        let batch = self
            .decoder
            .read_record_batch(&block, &buffer)
            .map_err(|e| at(first_line(&e)))?
            .ok_or_else(|| at("an empty message, not a record batch".into()))?;
        let rows = batch.num_rows();
        let mut columns = Vec::with_capacity(self.channels.len());
        let base = map.as_ptr() as usize;
        for ((c, column), ch) in batch.columns().iter().enumerate().zip(&self.channels) {
            let name = &self.info.channel_names[c];
            if column.null_count() > 0 {
                let nulls = column.null_count();
                return Err(at(format!(
                    "column '{name}' holds {nulls} null{}: every sample must be a number (fill them first, e.g. pyarrow.compute.fill_null)",
                    if nulls == 1 { "" } else { "s" }
                )));
            }
            let data = column.to_data();
            let size = ch.dtype.size();
            let start = data
                .buffers()
                .first()
                .map(|v| (v.as_ptr() as usize).wrapping_sub(base))
                .and_then(|off| off.checked_add(data.offset().checked_mul(size)?));
            let end = start.and_then(|s| s.checked_add(rows.checked_mul(size)?));
            match (start, end) {
                (Some(s), Some(e)) if e <= map.len() && s <= e => columns.push(s),
                _ => {
                    return Err(at(format!(
                        "column '{name}': its values do not lie inside the batch's {} bytes",
                        map.len()
                    )));
                }
            }
        }
        Ok((columns, rows as u64))
    }

    /// Converts `take` rows from `row` of the loaded batch into the block's
    /// planes at `at`, one column at a time.
    fn convert(
        &mut self,
        loaded: &Loaded,
        row: u64,
        take: usize,
        at: usize,
        block: &mut Block,
    ) -> Result<()> {
        for (c, &start) in loaded.columns.iter().enumerate() {
            let ch = self.channels[c];
            let size = ch.dtype.size();
            // Inside the batch (checked when it was decoded), so inside
            // the file as it was opened.
            let pos = start + row * size as u64;
            let len = take * size;
            let dst = &mut block.channel_capacity_mut(c)[at..at + take];
            if self.len_now() < pos + len as u64 {
                return Err(self.shrank());
            }
            if self.map && self.convert_mapped(ch, pos, len, dst)? {
                continue;
            }
            if self.buf.len() < len {
                self.buf.resize(len, 0);
            }
            if let Err(e) = self.file.read_exact_at(&mut self.buf[..len], pos) {
                return Err(if self.len_now() < self.len {
                    self.shrank()
                } else {
                    Error::io(&self.info.path, e)
                });
            }
            (ch.convert)(&self.buf[..len], dst);
        }
        Ok(())
    }

    /// Converts `len` bytes at `pos` through a map of just them, guarded
    /// against the file shrinking meanwhile; `Ok(false)` when they cannot
    /// be mapped (or guarded) and must be read instead.
    fn convert_mapped(
        &mut self,
        ch: Channel,
        pos: u64,
        len: usize,
        dst: &mut [f32],
    ) -> Result<bool> {
        let Ok(window) = map_window(&self.file, pos, len) else {
            self.map = false;
            return Ok(false);
        };
        let Some(guard) = sigbus::Guard::new(window.as_ptr(), window.len()) else {
            self.map = false;
            return Ok(false);
        };
        (ch.convert)(&window, dst);
        if guard.faulted() {
            return Err(self.shrank());
        }
        // The guard is dropped before the window is unmapped.
        drop(guard);
        Ok(true)
    }
}

impl ChunkSource for ArrowSource {
    fn info(&self) -> &SignalInfo {
        &self.info
    }

    fn read_block(&mut self, block: &mut Block) -> Result<usize> {
        check_block(block, self.info.channels);
        block.start = self.next_frame;
        // At most the block's capacity, so it fits a usize.
        let want = (self.frames - self.next_frame).min(block.capacity() as u64) as usize;
        let mut n = 0;
        while n < want {
            let frame = self.next_frame + n as u64;
            while frame >= self.batches[self.batch].first_row + self.rows(self.batch) {
                self.batch += 1;
            }
            if self.current.as_ref().is_none_or(|l| l.index != self.batch) {
                // The previous batch's map goes first.
                self.current = None;
                let (loaded, rows) = self.load(self.batch)?;
                if rows != self.rows(self.batch) {
                    return Err(self.bad(format!(
                        "record batch {} now holds {rows} rows, not the {} it held when the file was opened (rewritten meanwhile?)",
                        self.batch,
                        self.rows(self.batch)
                    )));
                }
                self.current = Some(loaded);
            }
            let row = frame - self.batches[self.batch].first_row;
            // At most `want - n`, so it fits a usize.
            let take = (self.rows(self.batch) - row).min((want - n) as u64) as usize;
            let loaded = self.current.take().expect("loaded above");
            let done = self.convert(&loaded, row, take, n, block);
            self.current = Some(loaded);
            done?;
            n += take;
        }
        block.set_frames(n);
        self.next_frame += n as u64;
        Ok(n)
    }

    fn seekable(&self) -> bool {
        true
    }

    fn seek(&mut self, frame: u64) -> Result<()> {
        if frame > self.frames {
            return Err(Error::usage(format!(
                "{}: frame {frame} is past the end ({} frames)",
                self.info.path.display(),
                self.frames
            )));
        }
        self.next_frame = frame;
        // The last batch that starts at or before `frame` (empty batches
        // are stepped over when read).
        self.batch = self
            .batches
            .partition_point(|b| b.first_row <= frame)
            .saturating_sub(1);
        Ok(())
    }
}

/// Maps `len` bytes of `file` from byte `offset` (any offset: `memmap2`
/// aligns the mapping to a page and offsets the slice): a record batch, to
/// decode its metadata.
fn map_range(file: &File, offset: u64, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: the map is read-only and nothing in this process writes the
    // file. Another process could truncate the file while it is mapped:
    // the decoder reads the map under a `sigbus::Guard` (where one can be
    // had), which turns the SIGBUS of a vanished page into zeros and a
    // mark, reported as `Error::Shrank`, and the file's size is checked
    // just before.
    unsafe { MmapOptions::new().offset(offset).len(len).map(file) }
}

/// Maps the `len` bytes of one column's rows for a block, populated (the
/// caller reads them all at once and unmaps them).
fn map_window(file: &File, offset: u64, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: as in `map_range`; the caller touches the window only under
    // a `sigbus::Guard` and drops it before mapping the next.
    unsafe {
        MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)
    }
}
