//! Headerless ("raw") data: the layout comes from the options alone.
//!
//! Why a module: raw data is the one format whose layout the user states,
//! so it is the one place where options are validated against the input
//! (a size that is not a whole number of frames usually means a wrong
//! `--dtype` or `--channels`, and the message says so in those terms).

use std::path::Path;

use super::{Dtype, Format, Header, SourceOptions};
use crate::error::{Error, Result};

/// The layout of raw data, as the options describe it: the sample type is
/// `--dtype`, or the one the file's extension names (`.f32`, `.i16`, ...).
/// Without either, the input is refused: reading an unknown format as raw
/// float32 would process garbage and exit 0.
pub(super) fn header(path: &Path, opts: &SourceOptions) -> Result<Header> {
    opts.validate()?;
    let given = opts.dtype.map(|d| (d, opts.complex));
    let (dtype, complex) = match given.or_else(|| Dtype::from_extension_any(path)) {
        Some(d) => d,
        None => {
            return Err(Error::format(
                path,
                format!(
                    "unrecognised format (not npy or WAV); for headerless samples give --dtype ({}, or complex I/Q: {}) or name the file with that extension (e.g. .f32, .cf32)",
                    Dtype::RAW_NAMES.join(", "),
                    Dtype::COMPLEX_NAMES.join(", ")
                ),
            ));
        }
    };
    // A frame's size must be a number: `--channels 2^62` of i32 would wrap
    // to a few bytes and open an 8-byte file as 4.6e18 channels.
    let planes = opts.channels.checked_mul(if complex { 2 } else { 1 });
    if planes.and_then(|p| p.checked_mul(dtype.size())).is_none() {
        return Err(Error::usage(format!(
            "--channels {}: frames of that many {} samples do not fit in memory's address space",
            opts.channels,
            dtype.sample_name(complex)
        )));
    }
    Ok(Header {
        format: Format::Raw,
        dtype,
        endian: opts.endian,
        channels: planes.unwrap_or(usize::MAX),
        complex,
        center_frequency: None,
        annotations: Vec::new(),
        data_offset: opts.offset,
        data_len: None,
        sample_rate: None,
        start_time: None,
        names: Vec::new(),
        gains: Vec::new(),
    })
}

/// The error for raw data of `len` bytes (after `header.data_offset`) that is
/// not a whole number of frames.
pub(super) fn partial_frame(path: &Path, header: &Header, len: u64, what: &str) -> Error {
    if header.complex {
        let channels = header.channels / 2;
        let values = len / header.dtype.size() as u64;
        let odd = if len.is_multiple_of(header.dtype.size() as u64) && values % 2 == 1 {
            format!(" ({values} values: an odd count, so the last I has no Q)")
        } else {
            String::new()
        };
        return Error::format(
            path,
            format!(
                "{what} {len} bytes (after a {}-byte offset) is not a whole number of complex {} samples (I/Q pairs of {}-byte {}) × {channels} channel{}{odd}",
                header.data_offset,
                header.dtype.sample_name(true),
                header.dtype.size(),
                header.dtype.name(),
                if channels == 1 { "" } else { "s" },
            ),
        );
    }
    let channels = header.channels;
    Error::format(
        path,
        format!(
            "{what} {len} bytes (after a {}-byte offset) is not a whole number of {}-byte {} samples × {channels} channel{}",
            header.data_offset,
            header.dtype.size(),
            header.dtype.name(),
            if channels == 1 { "" } else { "s" },
        ),
    )
}
