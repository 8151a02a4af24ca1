//! Positional file reads and writes on every OS.
//!
//! Why a trait of our own: the readers and the out-of-core FFT read and
//! write at byte offsets without moving a shared cursor. Unix has that in
//! `std::os::unix::fs::FileExt` (`pread`/`pwrite`, whole buffers);
//! Windows has `seek_read`/`seek_write`, which may transfer less than asked
//! and move the file cursor. [`PositionalIo`] gives both the Unix names and
//! semantics, so callers import it instead of the Unix trait.

use std::fs::File;
use std::io;

/// Reads and writes of whole buffers at byte offsets.
pub(crate) trait PositionalIo {
    /// Fills `buf` from byte `offset` (an error if the file ends first).
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `buf` at byte `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
}

#[cfg(unix)]
impl PositionalIo for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, buf, offset)
    }
}

#[cfg(windows)]
impl PositionalIo for File {
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.seek_read(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "failed to fill whole buffer",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.seek_write(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "failed to write whole buffer",
                    ));
                }
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_and_writes_whole_buffers_at_offsets() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(b"0123456789").unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(tmp.path())
            .unwrap();
        file.write_all_at(b"ab", 3).unwrap();
        file.write_all_at(b"xyz", 12).unwrap();
        let mut buf = [0u8; 6];
        file.read_exact_at(&mut buf, 1).unwrap();
        assert_eq!(&buf, b"12ab56");
        let mut tail = [0u8; 5];
        file.read_exact_at(&mut tail, 10).unwrap();
        // Writing past the end leaves a hole of zeros.
        assert_eq!(&tail, b"\0\0xyz");
        let err = file.read_exact_at(&mut buf, 12).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
