//! Headerless ("raw") data: the layout comes from the options alone.
//!
//! Why a module: raw data is the one format whose layout the user states,
//! so it is the one place where options are validated against the input
//! (a size that is not a whole number of frames usually means a wrong
//! `--dtype` or `--channels`, and the message says so in those terms).

use std::path::Path;

use super::{Format, Header, SourceOptions};
use crate::error::{Error, Result};

/// The layout of raw data, as the options describe it.
pub(super) fn header(opts: &SourceOptions) -> Result<Header> {
    if opts.channels == 0 {
        return Err(Error::usage("--channels must be at least 1"));
    }
    Ok(Header {
        format: Format::Raw,
        dtype: opts.dtype,
        endian: opts.endian,
        channels: opts.channels,
        data_offset: opts.offset,
        data_len: None,
        sample_rate: None,
    })
}

/// The error for raw data of `len` bytes (after `header.data_offset`) that is
/// not a whole number of frames.
pub(super) fn partial_frame(path: &Path, header: &Header, len: u64, what: &str) -> Error {
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
