//! NumPy `.npy` headers (format versions 1, 2 and 3).
//!
//! Why our own wrapper around `npyz`: `npyz` parses the header dictionary,
//! but reading the data through it would copy sample by sample; we only take
//! the layout (dtype, shape, order, data offset) and read the data ourselves
//! through the same zero-copy path as raw files. The checks here turn every
//! way a header can be unusable for a signal into a message that says why.

use std::path::Path;

use npyz::{DType, Endianness, NpyHeader, Order, TypeChar};

use super::{Dtype, Endian, Format, Header, MAX_HEADER_BYTES, Parsed};
use crate::error::{Error, Result};

/// The first bytes of every `.npy` file.
pub(super) const MAGIC: &[u8] = b"\x93NUMPY";

/// The dtypes we read, as numpy spells them (for messages).
const SUPPORTED: &str = "<f4 >f4 <f8 >f8 |i1 <i2 >i2 <i4 >i4 |u1 <u2 >u2 <c8 >c8 <c16 >c16";

/// Where an npy header ends (the byte after its dictionary), from its
/// first 12 bytes: `None` for a prefix too short to say, or an error for an
/// unknown version. Checked before npyz reads a header, which allocates
/// whatever length the file declares (4 GiB for a 12-byte file).
pub(crate) fn header_end(prefix: &[u8]) -> std::result::Result<Option<u64>, String> {
    if prefix.len() < 10 {
        return Ok(None);
    }
    match (prefix[6], prefix[7]) {
        (1, 0) => Ok(Some(
            10 + u64::from(u16::from_le_bytes([prefix[8], prefix[9]])),
        )),
        (2 | 3, 0) if prefix.len() < 12 => Ok(None),
        (2 | 3, 0) => Ok(Some(
            12 + u64::from(u32::from_le_bytes([
                prefix[8], prefix[9], prefix[10], prefix[11],
            ])),
        )),
        (major, minor) => Err(format!("unsupported format version {major}.{minor}")),
    }
}

/// Parses the header at the start of `prefix`; `total` is the length of the
/// whole input when known.
pub(super) fn parse(path: &Path, prefix: &[u8], total: Option<u64>) -> Result<Parsed> {
    let invalid =
        |why: String| Error::format(path, format!("invalid or truncated npy header: {why}"));
    // Magic (6), version (2), then the header length: u16 in version 1,
    // u32 in versions 2 and 3.
    let need = |n: usize| -> Result<Option<Parsed>> {
        if prefix.len() >= n {
            return Ok(None);
        }
        match total {
            Some(t) if t < n as u64 => Err(invalid(format!(
                "the input ends at byte {t}, inside the {n}-byte header"
            ))),
            _ => Ok(Some(Parsed::NeedMore(n as u64))),
        }
    };
    if let Some(more) = need(10)? {
        return Ok(more);
    }
    let (len_bytes, header_len) = match (prefix[6], prefix[7]) {
        (1, 0) => (2, u64::from(u16::from_le_bytes([prefix[8], prefix[9]]))),
        (2 | 3, 0) => {
            if let Some(more) = need(12)? {
                return Ok(more);
            }
            let len = u32::from_le_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
            (4, u64::from(len))
        }
        (major, minor) => {
            return Err(invalid(format!(
                "unsupported format version {major}.{minor}"
            )));
        }
    };
    let end = 8 + len_bytes + header_len;
    if end > MAX_HEADER_BYTES {
        return Err(invalid(format!(
            "the header claims to be {end} bytes long (at most {MAX_HEADER_BYTES} accepted)"
        )));
    }
    // `end` is at most MAX_HEADER_BYTES, so it fits a usize.
    let end = end as usize;
    if let Some(more) = need(end)? {
        return Ok(more);
    }
    check_nesting(&prefix[8 + len_bytes as usize..end]).map_err(invalid)?;
    let mut rest = &prefix[..end];
    let header = NpyHeader::from_reader(&mut rest).map_err(|e| invalid(e.to_string()))?;
    let data_offset = (end - rest.len()) as u64;
    layout(path, &header, data_offset).map(Parsed::Header)
}

/// Deepest bracket nesting accepted in a header's dictionary. A plain
/// array's header nests 2 deep (the dict and the shape tuple), a structured
/// dtype a few more; npyz's parser takes time exponential in the depth
/// (20 levels took 5 s, each one more doubles it), so a crafted header is
/// refused here, in time linear in its length, before npyz sees it.
pub(crate) const MAX_HEADER_NESTING: usize = 8;

/// Checks the nesting of `(`, `[` and `{` in a header dictionary against
/// [`MAX_HEADER_NESTING`] (brackets inside quoted strings count too: no
/// legitimate header has them).
///
/// # Errors
/// What is wrong, for the caller's message.
pub(crate) fn check_nesting(dict: &[u8]) -> std::result::Result<(), String> {
    let mut depth = 0usize;
    for &b in dict {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err(format!(
                        "the header's brackets nest deeper than {MAX_HEADER_NESTING} levels"
                    ));
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a parsed header and turns it into our layout.
fn layout(path: &Path, header: &NpyHeader, data_offset: u64) -> Result<Header> {
    let (dtype, endian, complex) = dtype(path, &header.dtype())?;
    let shape = header.shape();
    let (frames, channels) = match *shape {
        [n] => (n, 1),
        [n, c] => {
            if header.order() == Order::Fortran {
                return Err(Error::format(
                    path,
                    format!(
                        "npy array of shape ({n}, {c}) is stored in Fortran order (each channel \
                         contiguous, not interleaved frames); save it in C order, e.g. \
                         np.save(path, np.ascontiguousarray(a))"
                    ),
                ));
            }
            (n, c)
        }
        [] => {
            return Err(Error::format(
                path,
                "npy array is 0-dimensional (a scalar); expected shape (samples,) or (samples, channels)",
            ));
        }
        _ => {
            return Err(Error::format(
                path,
                format!(
                    "npy array is {}-dimensional (shape {shape:?}); expected shape (samples,) or (samples, channels)",
                    shape.len()
                ),
            ));
        }
    };
    if channels == 0 {
        return Err(Error::format(
            path,
            format!("npy array of shape ({frames}, 0) has zero channels"),
        ));
    }
    let too_large = || Error::format(path, format!("npy array shape {shape:?} is too large"));
    // A complex channel is two planes (I, Q), interleaved as numpy stores
    // complex numbers.
    let channels = usize::try_from(channels)
        .ok()
        .and_then(|c| c.checked_mul(if complex { 2 } else { 1 }))
        .ok_or_else(too_large)?;
    let data_len = (channels as u64)
        .checked_mul(dtype.size() as u64)
        .and_then(|b| b.checked_mul(frames))
        .ok_or_else(too_large)?;
    Ok(Header {
        format: Format::Npy,
        dtype,
        endian,
        channels,
        complex,
        center_frequency: None,
        annotations: Vec::new(),
        data_offset,
        data_len: Some(data_len),
        sample_rate: None,
        start_time: None,
        names: Vec::new(),
        gains: Vec::new(),
    })
}

/// Our sample type for a numpy dtype (the component type and `true` for
/// complex64/complex128), or an error naming the ones we read.
fn dtype(path: &Path, dtype: &DType) -> Result<(Dtype, Endian, bool)> {
    let unsupported = |name: String| {
        Error::format(
            path,
            format!("unsupported dtype {name} (supported: {SUPPORTED})"),
        )
    };
    let DType::Plain(ty) = dtype else {
        return Err(unsupported(format!(
            "{} (structured arrays are not signals)",
            dtype.descr()
        )));
    };
    let (ours, complex) = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Float, 4) => (Dtype::F32, false),
        (TypeChar::Float, 8) => (Dtype::F64, false),
        (TypeChar::Int, 1) => (Dtype::I8, false),
        (TypeChar::Int, 2) => (Dtype::I16, false),
        (TypeChar::Int, 4) => (Dtype::I32, false),
        (TypeChar::Uint, 1) => (Dtype::U8, false),
        (TypeChar::Uint, 2) => (Dtype::U16, false),
        (TypeChar::Complex, 8) => (Dtype::F32, true),
        (TypeChar::Complex, 16) => (Dtype::F64, true),
        _ => return Err(unsupported(format!("'{ty}'"))),
    };
    // Byte order means nothing for one-byte samples (numpy writes `|`).
    let endian = match ty.endianness() {
        Endianness::Big if ours.size() > 1 => Endian::Big,
        _ => Endian::Little,
    };
    Ok((ours, endian, complex))
}

/// The error for a file or stream that holds less data than the header
/// declares (`held` bytes after the header).
pub(super) fn short_data(path: &Path, header: &Header, held: u64, what: &str) -> Error {
    let frame = header.frame_bytes() as u64;
    let declared = header.data_len.unwrap_or(0);
    Error::format(
        path,
        format!(
            "npy header declares {} samples × {} channel{} ({declared} bytes) but the {what} holds only {held} bytes of data",
            declared / frame.max(1),
            header.channels,
            if header.channels == 1 { "" } else { "s" },
        ),
    )
}
