//! Inputs that can only be read front to back: standard input, pipes, FIFOs,
//! or any [`Read`].
//!
//! Why a separate reader: a stream has no size and cannot be mapped or
//! re-read, so the header is parsed from the bytes read so far (as many as
//! the parser asks for, no more, so a live stream starts flowing at once),
//! and the checks that a file does up front (whole frames, no shorter than
//! the header says) happen when the stream ends. Samples are read into one
//! byte buffer, sized on the first block and reused, then converted.

use std::io::{self, Chain, Cursor, Read};
use std::path::{Path, PathBuf};

use super::convert::Converter;
use super::{
    ChunkSource, DETECT_BYTES, Format, Header, MAX_HEADER_BYTES, Parsed, SignalInfo, SourceOptions,
    check_block, check_not_empty, detect, npy, parse_header, sac, wav,
};
use crate::error::{Error, Result};
use crate::pool::Block;

/// Opens any reader as a source, exactly as [`super::open`] opens standard
/// input: the format is detected from the first bytes (and `name`'s
/// extension), the header parsed, and samples read front to back.
///
/// `name` is what [`SignalInfo::path`] and error messages show (`-` for
/// standard input). [`SignalInfo::frames`] is known for npy and WAV streams
/// (from the header) and `None` for raw ones.
pub fn from_reader<R: Read + Send + Sync + 'static>(
    name: impl Into<PathBuf>,
    mut reader: R,
    opts: &SourceOptions,
) -> Result<Box<dyn ChunkSource>> {
    let path = name.into();
    // Columns are selected in Arrow files, which are never streams.
    super::arrow::check_no_columns(&path, opts)?;
    // FLAC is decoded, not read by layout: hand it the stream whole.
    let mut magic = Vec::new();
    fill(
        &path,
        &mut reader,
        &mut magic,
        super::flac::MAGIC.len() as u64,
    )?;
    let reader = Cursor::new(magic).chain(reader);
    if reader.get_ref().0.get_ref() == super::flac::MAGIC && opts.dtype.is_none() {
        return Ok(Box::new(super::flac::open_stream(path, reader, opts)?));
    }
    Ok(Box::new(StreamSource::open(path, reader, opts)?))
}

/// A source read front to back from a [`Read`].
struct StreamSource<R> {
    info: SignalInfo,
    header: Header,
    /// The header bytes already read (positioned at the first sample), then
    /// the rest of the stream.
    reader: Chain<Cursor<Vec<u8>>, R>,
    conv: Converter,
    /// Sample bytes still to come according to the header; `None` when the
    /// data runs to the end of the stream.
    left: Option<u64>,
    /// Sample bytes read so far.
    read: u64,
    next_frame: u64,
    /// Set once the end of the data has been reached (or an error returned).
    done: bool,
    /// Read buffer, sized on first use.
    buf: Vec<u8>,
}

impl<R: Read + Send> StreamSource<R> {
    fn open(path: PathBuf, mut reader: R, opts: &SourceOptions) -> Result<Self> {
        let mut prefix = Vec::new();
        let mut ended = fill(&path, &mut reader, &mut prefix, DETECT_BYTES as u64)?;
        let format = detect(&path, &prefix, opts)?;
        let header = loop {
            let total = ended.then_some(prefix.len() as u64);
            match parse_header(&path, format, &prefix, total, opts)? {
                Parsed::Header(header) => break header,
                Parsed::NeedMore(n) if n > MAX_HEADER_BYTES || ended => {
                    return Err(Error::format(
                        &path,
                        format!(
                            "the header (or the chunks before the sample data) takes more than {} MiB",
                            MAX_HEADER_BYTES >> 20
                        ),
                    ));
                }
                Parsed::NeedMore(n) => ended = fill(&path, &mut reader, &mut prefix, n)?,
            }
        };
        let offset = header.data_offset;
        let mut reader = Cursor::new(prefix).chain(reader);
        let skipped = io::copy(&mut (&mut reader).take(offset), &mut io::sink())
            .map_err(|e| Error::io(&path, e))?;
        if skipped < offset {
            return Err(Error::format(
                &path,
                format!("offset {offset} is beyond the end of the input ({skipped} bytes)"),
            ));
        }
        let frame_bytes = header.frame_bytes() as u64;
        if let Some(len) = header.data_len {
            check_not_empty(&path, len)?;
        }
        Ok(StreamSource {
            info: header.info(&path, header.data_len.map(|n| n / frame_bytes), opts),
            conv: Converter::new(
                header.dtype,
                header.endian,
                header.channels,
                opts.normalize && header.gains.is_empty(),
            ),
            left: header.data_len,
            header,
            reader,
            read: 0,
            next_frame: 0,
            done: false,
            buf: Vec::new(),
        })
    }

    /// The error for a stream that ended early or mid-frame, if it did.
    fn check_end(&self, got: usize) -> Result<()> {
        let path = &self.info.path;
        if self.left.is_some_and(|n| n > 0) {
            return Err(match self.header.format {
                Format::Npy => npy::short_data(path, &self.header, self.read, "stream"),
                Format::Sac => sac::short_data(path, &self.header, self.read),
                _ => wav::short_data(path, &self.header, self.read, "stream"),
            });
        }
        let frame_bytes = self.conv.frame_bytes();
        if !got.is_multiple_of(frame_bytes) {
            return Err(Error::format(
                path,
                format!(
                    "stream ended in the middle of a sample: {} bytes of data are not a whole number of {frame_bytes}-byte frames",
                    self.read
                ),
            ));
        }
        check_not_empty(path, self.read)
    }
}

impl<R: Read + Send> ChunkSource for StreamSource<R> {
    fn info(&self) -> &SignalInfo {
        &self.info
    }

    fn read_block(&mut self, block: &mut Block) -> Result<usize> {
        check_block(block, self.info.channels);
        block.start = self.next_frame;
        if self.done {
            block.set_frames(0);
            return Ok(0);
        }
        let frame_bytes = self.conv.frame_bytes();
        let mut want = block.capacity() * frame_bytes;
        if let Some(left) = self.left {
            want = want.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let got = read_full(&mut self.reader, &mut self.buf[..want])
            .map_err(|e| Error::io(&self.info.path, e))?;
        self.read += got as u64;
        if let Some(left) = &mut self.left {
            *left -= got as u64;
        }
        if got < want || self.left == Some(0) {
            self.done = true;
        }
        if got < want {
            self.check_end(got)?;
        }
        let frames = self.conv.convert(&self.buf[..got], block);
        super::apply_gains(&self.header.gains, block);
        self.next_frame += frames as u64;
        Ok(frames)
    }
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads from `reader` until `prefix` holds `n` bytes; returns whether the
/// stream ended first.
fn fill(path: &Path, reader: &mut impl Read, prefix: &mut Vec<u8>, n: u64) -> Result<bool> {
    let have = prefix.len() as u64;
    if have < n {
        reader
            .take(n - have)
            .read_to_end(prefix)
            .map_err(|e| Error::io(path, e))?;
    }
    Ok((prefix.len() as u64) < n)
}
