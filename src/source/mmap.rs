//! Regular files, read through a small memory map that moves along the file.
//!
//! Why a moving window rather than one map of the whole file: mapped file
//! pages count towards the process's resident set for as long as they stay
//! mapped, so mapping a 2 GB file whole makes a 2 GB process as it is read
//! (what `numpy.memmap` does). Here each [`ChunkSource::read_block`] maps
//! exactly the bytes of the frames it converts (`populate`d, with sequential
//! advice), converts them straight from the page cache into the block (no
//! intermediate copy) and unmaps them before returning, so the resident set
//! stays flat whatever the file's size. `memmap2` rounds the window's offset
//! down to a page boundary itself (querying the page size) and hands back a
//! slice that starts at the byte asked for.
//!
//! A file that another process truncates while it is read gives
//! [`Error::Shrank`] (exit code 1), never a SIGBUS: see `sigbus.rs`.
//!
//! When mapping fails (some filesystems, special files), the reader falls
//! back to positional reads into one buffer allocated on the first block and
//! reused afterwards. Either way the steady state allocates nothing.

use std::fs::File;
use std::path::Path;

#[cfg(unix)]
use memmap2::Advice;
use memmap2::{Mmap, MmapOptions};

use super::convert::Converter;
use super::{
    ChunkSource, Format, Header, MAX_HEADER_BYTES, Parsed, SignalInfo, SourceOptions, check_block,
    check_not_empty, detect, npy, parse_header, raw, sac, sigbus, wav,
};
use crate::error::{Error, Result};
use crate::io_at::PositionalIo;
use crate::pool::Block;

/// Bytes read from the start of a file to detect its format and parse its
/// header; more are read when a header is longer (up to
/// [`MAX_HEADER_BYTES`]).
const PREFIX_BYTES: u64 = 64 << 10;

/// A regular file of known size, read one block-sized window at a time.
#[derive(Debug)]
pub(super) struct FileSource {
    info: SignalInfo,
    file: File,
    conv: Converter,
    /// Absolute byte offset of the next frame to read.
    pos: u64,
    /// Absolute byte offset of the first frame.
    start: u64,
    /// Absolute byte offset of the end of the sample data.
    end: u64,
    /// Index of the next frame to read.
    next_frame: u64,
    /// Whether to map windows (false once mapping has failed).
    map: bool,
    /// The fallback's read buffer, sized on first use.
    buf: Vec<u8>,
    /// The file's size when it was opened.
    len: u64,
    /// Per-channel factors applied after conversion (empty: none).
    gains: Vec<f32>,
}

impl FileSource {
    /// Detects the format of `file` (`len` bytes, named `path`), parses and
    /// checks its header against its size.
    pub(super) fn open(path: &Path, file: File, len: u64, opts: &SourceOptions) -> Result<Self> {
        let header = read_header(path, &file, len, opts)?;
        FileSource::from_header(path, file, len, header, opts)
    }

    /// Reads `file` (`len` bytes, named `path`) with a layout described
    /// elsewhere (a SigMF meta), checked against its size.
    pub(super) fn from_header(
        path: &Path,
        file: File,
        len: u64,
        header: Header,
        opts: &SourceOptions,
    ) -> Result<Self> {
        let data_len = data_len(path, &header, len)?;
        let frames = data_len / header.frame_bytes() as u64;
        Ok(FileSource {
            info: header.info(path, Some(frames), opts),
            file,
            conv: Converter::new(
                header.dtype,
                header.endian,
                header.channels,
                opts.normalize && header.gains.is_empty(),
            ),
            gains: header.gains.clone(),
            pos: header.data_offset,
            start: header.data_offset,
            end: header.data_offset + data_len,
            next_frame: 0,
            map: true,
            buf: Vec::new(),
            len,
        })
    }

    /// Describes the frames as `like` does (a scratch file holding a
    /// processed copy of `like`'s input), keeping this file's layout.
    pub(super) fn describe_as(&mut self, like: &SignalInfo) {
        let frames = self.info.frames;
        self.info = SignalInfo {
            frames,
            dtype: self.info.dtype,
            endian: self.info.endian,
            format: self.info.format,
            data_offset: self.info.data_offset,
            ..like.clone()
        };
    }

    /// The file's size now (0 when it cannot be had).
    fn len_now(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    /// The error for a file that is now `now` bytes long.
    fn shrank(&self, now: u64) -> Error {
        Error::Shrank {
            path: self.info.path.clone(),
            was: self.len,
            now,
        }
    }

    /// The error for a file that no longer holds the bytes it had when it
    /// was opened, or `None` when it still does (up to `needed`).
    fn shrunk(&self, needed: u64) -> Option<Error> {
        let now = self.len_now();
        (now < needed.min(self.len)).then(|| self.shrank(now))
    }

    /// Reads `len` bytes at the current position into the fallback buffer.
    fn read_at(&mut self, len: usize) -> Result<()> {
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        match self.file.read_exact_at(&mut self.buf[..len], self.pos) {
            Ok(()) => Ok(()),
            Err(e) => Err(self
                .shrunk(self.pos + len as u64)
                .unwrap_or_else(|| Error::io(&self.info.path, e))),
        }
    }

    /// Converts `len` bytes at the current position through a map of just
    /// them, guarded against the file shrinking meanwhile; `Ok(false)` when
    /// they cannot be mapped (or guarded) and must be read instead.
    fn read_mapped(&mut self, len: usize, block: &mut Block) -> Result<bool> {
        // A file already shorter than what is left to read: say so before
        // mapping pages that no longer exist.
        if let Some(e) = self.shrunk(self.pos + len as u64) {
            return Err(e);
        }
        let Ok(window) = map_window(&self.file, self.pos, len) else {
            self.map = false;
            return Ok(false);
        };
        // The guard turns a truncation between the check above and the
        // copy below into zeros and a mark instead of SIGBUS.
        let Some(guard) = sigbus::Guard::new(window.as_ptr(), window.len()) else {
            // No guard on this platform (or none free): read from now on.
            self.map = false;
            return Ok(false);
        };
        // Advice is a hint (memmap2 offers it on Unix only); a kernel that
        // refuses it reads the same bytes.
        #[cfg(unix)]
        let _ = window.advise(Advice::Sequential);
        self.conv.convert(&window, block);
        if guard.faulted() {
            // A page vanished: the file was shorter for a moment at least,
            // whatever its size is now.
            return Err(self.shrank(self.len_now()));
        }
        // The guard is dropped before `window` is unmapped.
        drop(guard);
        Ok(true)
    }
}

impl ChunkSource for FileSource {
    fn info(&self) -> &SignalInfo {
        &self.info
    }

    fn read_block(&mut self, block: &mut Block) -> Result<usize> {
        check_block(block, self.info.channels);
        block.start = self.next_frame;
        let frame_bytes = self.conv.frame_bytes();
        let left = (self.end - self.pos) / frame_bytes as u64;
        // At most the block's capacity, so it fits a usize.
        let frames = left.min(block.capacity() as u64) as usize;
        if frames == 0 {
            block.set_frames(0);
            return Ok(0);
        }
        let len = frames * frame_bytes;
        let done = self.map && self.read_mapped(len, block)?;
        if !done {
            self.read_at(len)?;
            self.conv.convert(&self.buf[..len], block);
        }
        super::apply_gains(&self.gains, block);
        self.pos += len as u64;
        self.next_frame += frames as u64;
        Ok(frames)
    }

    fn seekable(&self) -> bool {
        true
    }

    fn seek(&mut self, frame: u64) -> Result<()> {
        let frame_bytes = self.conv.frame_bytes() as u64;
        let frames = (self.end - self.start) / frame_bytes;
        if frame > frames {
            return Err(Error::usage(format!(
                "{}: frame {frame} is past the end ({frames} frames)",
                self.info.path.display()
            )));
        }
        self.pos = self.start + frame * frame_bytes;
        self.next_frame = frame;
        Ok(())
    }
}

/// Maps `len` bytes of `file` from byte `offset` (any offset: `memmap2`
/// aligns the mapping to a page and offsets the slice).
fn map_window(file: &File, offset: u64, len: usize) -> std::io::Result<Mmap> {
    // SAFETY: the map is read-only and private to this call's caller, which
    // drops it before the next window is mapped; nothing in this process
    // writes the file. Another process could still truncate the file while
    // it is mapped: the caller touches the map only under a
    // `sigbus::Guard`, which turns the SIGBUS of a vanished page into zeros
    // and a mark, and reports the shrunken file as an error.
    unsafe {
        MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)
    }
}

/// Reads enough of the file's start to detect its format and parse its header.
fn read_header(path: &Path, file: &File, len: u64, opts: &SourceOptions) -> Result<Header> {
    let mut want = len.min(PREFIX_BYTES);
    loop {
        // At most MAX_HEADER_BYTES, so it fits a usize.
        let mut prefix = vec![0u8; want as usize];
        file.read_exact_at(&mut prefix, 0)
            .map_err(|e| Error::io(path, e))?;
        let format = detect(path, &prefix, opts)?;
        match parse_header(path, format, &prefix, Some(len), opts)? {
            Parsed::Header(header) => return Ok(header),
            Parsed::NeedMore(n) if n > MAX_HEADER_BYTES => {
                return Err(Error::format(
                    path,
                    format!(
                        "the header (or the chunks before the sample data) takes more than {} MiB",
                        MAX_HEADER_BYTES >> 20
                    ),
                ));
            }
            Parsed::NeedMore(n) => {
                let next = n.max(want * 2).min(len);
                assert!(next > want, "header parser asked for bytes it already had");
                want = next;
            }
        }
    }
}

/// The bytes of sample data, checked against the file's size: whole frames,
/// no less than the header declares, not empty.
fn data_len(path: &Path, header: &Header, file_len: u64) -> Result<u64> {
    let offset = header.data_offset;
    if offset > file_len {
        return Err(Error::format(
            path,
            format!("offset {offset} is beyond the end of the file ({file_len} bytes)"),
        ));
    }
    let held = file_len - offset;
    let frame = header.frame_bytes() as u64;
    let len = match header.data_len {
        None if !held.is_multiple_of(frame) => {
            return Err(match header.format {
                Format::Raw | Format::SpikeGlx => {
                    raw::partial_frame(path, header, held, "file size")
                }
                _ => Error::format(
                    path,
                    format!(
                        "WAV data chunk of unknown size (0xFFFFFFFF) runs to the end of the file, \
                         {held} bytes, which is not a whole number of {frame}-byte frames"
                    ),
                ),
            });
        }
        None => held,
        Some(n) if n > held => {
            return Err(match header.format {
                Format::Npy => npy::short_data(path, header, held, "file"),
                Format::Sac => sac::short_data(path, header, held),
                _ => wav::short_data(path, header, held, "file"),
            });
        }
        Some(n) => n,
    };
    check_not_empty(path, len)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::source::{Dtype, Endian};

    /// All frames of `source`, channel by channel, read `capacity` at a time.
    fn read_all(mut source: FileSource, capacity: usize) -> Vec<Vec<f32>> {
        let channels = source.info().channels;
        let mut out = vec![Vec::new(); channels];
        let mut block = Block::new(channels, capacity);
        let mut expected_start = 0;
        loop {
            let n = source.read_block(&mut block).unwrap();
            assert_eq!(block.start, expected_start);
            if n == 0 {
                break;
            }
            assert!(n <= capacity);
            expected_start += n as u64;
            for (c, v) in out.iter_mut().enumerate() {
                v.extend_from_slice(block.channel(c));
            }
        }
        out
    }

    #[test]
    fn block_capacity_does_not_change_the_samples() {
        // 1001 stereo big-endian i16 frames behind a 5-byte header: odd
        // offset and an odd frame count, so windows start off page and the
        // last block is short.
        let frames = 1001usize;
        let mut bytes = vec![0xAB; 5];
        let mut expected = vec![Vec::new(), Vec::new()];
        for i in 0..frames {
            for (c, ch) in expected.iter_mut().enumerate() {
                let v = (i as i16).wrapping_mul(37).wrapping_sub(c as i16 * 1000);
                bytes.extend_from_slice(&v.to_be_bytes());
                ch.push(f32::from(v));
            }
        }
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&bytes).unwrap();
        let opts = SourceOptions {
            dtype: Some(Dtype::I16),
            endian: Endian::Big,
            offset: 5,
            channels: 2,
            ..SourceOptions::default()
        };
        let open = || {
            let file = File::open(tmp.path()).unwrap();
            FileSource::open(tmp.path(), file, bytes.len() as u64, &opts).unwrap()
        };
        assert_eq!(open().info().frames, Some(frames as u64));
        for capacity in [1, 3, 1000, frames] {
            assert_eq!(
                read_all(open(), capacity),
                expected,
                "mapped, capacity {capacity}"
            );
            let mut unmapped = open();
            unmapped.map = false;
            assert_eq!(
                read_all(unmapped, capacity),
                expected,
                "read(), capacity {capacity}"
            );
        }
    }
}
