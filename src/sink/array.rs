//! A streaming `.npy` writer for `float32` (or `complex64`) arrays whose
//! first dimension is known only at the end (spectrogram frames, snippets).
//!
//! Why: the rows arrive while the input streams, so the header (which holds
//! the shape) is reserved as 128 bytes up front and patched when the writer
//! finishes, like the signal writer does; the file appears under its name
//! only then ([`AtomicFile`]).

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::sink::AtomicFile;

/// Bytes reserved for the header (magic, version 1.0, length, dict).
const HEADER: usize = 128;

/// Writes a C-order little-endian `float32` (or `complex64`) array of
/// shape `(rows, *tail)`.
pub struct NpyArrayWriter {
    out: BufWriter<AtomicFile>,
    path: PathBuf,
    /// `'<f4'`, or `'<c8'` (each element two `f32` values, re then im).
    descr: &'static str,
    tail: Vec<usize>,
    row: usize,
    values: u64,
}

impl std::fmt::Debug for NpyArrayWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpyArrayWriter")
            .field("path", &self.path)
            .field("tail", &self.tail)
            .finish_non_exhaustive()
    }
}

impl NpyArrayWriter {
    /// Starts `path` for rows of shape `tail`.
    ///
    /// # Errors
    /// [`Error::Open`] when the file cannot be created.
    pub fn create(path: &Path, tail: &[usize]) -> Result<Self> {
        Self::create_typed(path, tail, false)
    }

    /// As [`NpyArrayWriter::create`]; a `complex` array is `complex64`
    /// (`'<c8'`), written as `f32` pairs (re, im).
    ///
    /// # Errors
    /// [`Error::Open`] when the file cannot be created.
    pub fn create_typed(path: &Path, tail: &[usize], complex: bool) -> Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, AtomicFile::create(path)?);
        out.write_all(&[0u8; HEADER])
            .map_err(|e| Error::io(path, e))?;
        Ok(NpyArrayWriter {
            out,
            path: path.to_path_buf(),
            descr: if complex { "<c8" } else { "<f4" },
            tail: tail.to_vec(),
            row: tail.iter().product::<usize>() * if complex { 2 } else { 1 },
            values: 0,
        })
    }

    /// Appends values (whole rows, in C order).
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn write(&mut self, values: &[f32]) -> Result<()> {
        debug_assert!(values.len().is_multiple_of(self.row.max(1)));
        let mut bytes = [0u8; 4096];
        for chunk in values.chunks(1024) {
            for (b, v) in bytes.chunks_exact_mut(4).zip(chunk) {
                b.copy_from_slice(&v.to_le_bytes());
            }
            self.out
                .write_all(&bytes[..chunk.len() * 4])
                .map_err(|e| Error::io(&self.path, e))?;
        }
        self.values += values.len() as u64;
        Ok(())
    }

    /// Patches the header with the row count and renames the file into
    /// place.
    ///
    /// # Errors
    /// [`Error::Io`] when writing fails.
    pub fn finish(self) -> Result<()> {
        let path = self.path;
        let rows = self.values / self.row.max(1) as u64;
        let mut shape = rows.to_string();
        for d in &self.tail {
            shape.push_str(&format!(", {d}"));
        }
        if self.tail.is_empty() {
            shape.push(',');
        }
        let descr = self.descr;
        let mut dict =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({shape}), }}");
        let pad = HEADER - 10 - 1;
        if dict.len() > pad {
            return Err(Error::Runtime {
                msg: format!(
                    "{}: npy header too long for shape ({shape})",
                    path.display()
                ),
            });
        }
        while dict.len() < pad {
            dict.push(' ');
        }
        dict.push('\n');
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(b"\x93NUMPY\x01\x00");
        header.extend_from_slice(&((HEADER - 10) as u16).to_le_bytes());
        header.extend_from_slice(dict.as_bytes());
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.file()
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.file().write_all(&header))
            .map_err(|e| Error::io(&path, e))?;
        file.commit()
    }
}
