//! RIFF/RF64/BW64 WAVE headers.
//!
//! Why our own parser rather than `hound`: we need the byte offset and
//! layout of the `data` chunk so the samples can be read zero-copy through
//! the same memory-mapped path as raw files; we need 24-bit packed samples;
//! and we need files over 4 GiB (RF64/BW64, whose sizes live in the `ds64`
//! chunk, and plain RIFF files whose `data` size is `0xFFFFFFFF` because a
//! streaming writer never went back to fill it in). Only the `fmt `, `ds64`
//! and `data` chunks matter; every other chunk (LIST, bext, ...) is skipped.

use std::path::Path;

use super::{Dtype, Endian, Format, Header, Parsed};
use crate::error::{Error, Result};

/// `WAVE_FORMAT_PCM`: integer samples.
const TAG_PCM: u16 = 1;
/// `WAVE_FORMAT_IEEE_FLOAT`: float samples.
const TAG_FLOAT: u16 = 3;
/// `WAVE_FORMAT_EXTENSIBLE`: the real format is the first two bytes of the
/// sub-format GUID.
const TAG_EXTENSIBLE: u16 = 0xFFFE;
/// A 32-bit chunk size meaning "see the ds64 chunk" (RF64/BW64) or "unknown,
/// up to the end of the file" (plain RIFF from a streaming writer).
const SIZE_UNKNOWN: u32 = u32::MAX;

/// Whether `prefix` starts like a WAVE file (`RIFF`, `RF64` or `BW64`, a
/// size, then `WAVE`).
pub(super) fn has_magic(prefix: &[u8]) -> bool {
    prefix.len() >= 12
        && matches!(&prefix[0..4], b"RIFF" | b"RF64" | b"BW64")
        && &prefix[8..12] == b"WAVE"
}

/// What the `fmt ` chunk says.
struct Fmt {
    dtype: Dtype,
    channels: usize,
    sample_rate: u32,
    block_align: u16,
}

/// Walks the chunks at the start of `prefix` up to the start of the `data`
/// chunk; `total` is the length of the whole input when known.
pub(super) fn parse(path: &Path, prefix: &[u8], total: Option<u64>) -> Result<Parsed> {
    if !has_magic(prefix) {
        return Err(Error::format(
            path,
            "missing or invalid WAV header: no RIFF/RF64/BW64 ... WAVE",
        ));
    }
    let sized_elsewhere = &prefix[0..4] != b"RIFF";
    let mut fmt: Option<Fmt> = None;
    let mut ds64_data_len: Option<u64> = None;
    let mut pos: u64 = 12;
    loop {
        let body = pos + 8;
        if total.is_some_and(|t| body > t) {
            let missing = if fmt.is_none() { "fmt " } else { "data" };
            return Err(Error::format(
                path,
                format!("invalid WAV file: no '{missing}' chunk"),
            ));
        }
        if body > prefix.len() as u64 {
            return Ok(Parsed::NeedMore(body));
        }
        let p = pos as usize;
        let id = &prefix[p..p + 4];
        let size = u32::from_le_bytes([prefix[p + 4], prefix[p + 5], prefix[p + 6], prefix[p + 7]]);
        let end = body + u64::from(size);
        match id {
            b"data" => {
                let Some(fmt) = fmt else {
                    return Err(Error::format(
                        path,
                        "invalid WAV file: no 'fmt ' chunk before the 'data' chunk",
                    ));
                };
                let data_len = match (size, sized_elsewhere) {
                    (SIZE_UNKNOWN, true) => Some(ds64_data_len.ok_or_else(|| {
                        Error::format(
                            path,
                            "invalid RF64/BW64 file: the data size is 0xFFFFFFFF but there is no 'ds64' chunk",
                        )
                    })?),
                    (SIZE_UNKNOWN, false) => None,
                    (size, _) => Some(u64::from(size)),
                };
                if let Some(len) = data_len
                    && !len.is_multiple_of(u64::from(fmt.block_align))
                {
                    return Err(Error::format(
                        path,
                        format!(
                            "WAV data chunk of {len} bytes is not a whole number of {}-byte frames (block_align)",
                            fmt.block_align
                        ),
                    ));
                }
                return Ok(Parsed::Header(Header {
                    format: Format::Wav,
                    dtype: fmt.dtype,
                    endian: Endian::Little,
                    channels: fmt.channels,
                    data_offset: body,
                    data_len,
                    sample_rate: (fmt.sample_rate > 0).then_some(f64::from(fmt.sample_rate)),
                    start_time: None,
                    names: Vec::new(),
                    gains: Vec::new(),
                    complex: false,
                    center_frequency: None,
                    annotations: Vec::new(),
                }));
            }
            b"fmt " | b"ds64" => {
                if let Some(t) = total
                    && end > t
                {
                    return Err(Error::format(
                        path,
                        format!(
                            "truncated WAV header: the input ends at byte {t}, inside the '{}' chunk that ends at byte {end}",
                            String::from_utf8_lossy(id)
                        ),
                    ));
                }
                if end > prefix.len() as u64 {
                    return Ok(Parsed::NeedMore(end));
                }
                let chunk = &prefix[body as usize..end as usize];
                if id == b"fmt " {
                    fmt = Some(parse_fmt(path, chunk)?);
                } else {
                    ds64_data_len = Some(parse_ds64(path, chunk)?);
                }
            }
            _ => {}
        }
        // Chunks are padded to an even length; some writers leave the pad
        // byte out. After an odd-sized chunk, take the padded position when
        // a chunk id is there, else the unpadded one when one is there (as
        // other readers do), else the padded one.
        pos = if size & 1 == 0 {
            end
        } else {
            let padded = end + 1;
            if total.is_none_or(|t| padded + 4 <= t) && ((padded + 4) as usize) > prefix.len() {
                return Ok(Parsed::NeedMore(padded + 4));
            }
            let id_at = |at: u64| {
                prefix
                    .get(at as usize..at as usize + 4)
                    .is_some_and(|b| b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b' '))
            };
            if !id_at(padded) && id_at(end) {
                end
            } else {
                padded
            }
        };
    }
}

/// The data size from a `ds64` chunk (riffSize u64, dataSize u64,
/// sampleCount u64, table...).
fn parse_ds64(path: &Path, chunk: &[u8]) -> Result<u64> {
    let Some(bytes) = chunk.get(8..16) else {
        return Err(Error::format(
            path,
            format!(
                "invalid RF64/BW64 file: 'ds64' chunk of {} bytes is too short (needs 16)",
                chunk.len()
            ),
        ));
    };
    let mut le = [0u8; 8];
    le.copy_from_slice(bytes);
    Ok(u64::from_le_bytes(le))
}

/// Reads a little-endian u16 at `at` (the caller checked the length).
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Checks a `fmt ` chunk and finds our sample type in it.
fn parse_fmt(path: &Path, chunk: &[u8]) -> Result<Fmt> {
    let bad = |msg: String| Error::format(path, msg);
    if chunk.len() < 16 {
        return Err(bad(format!(
            "invalid WAV 'fmt ' chunk: {} bytes, needs at least 16",
            chunk.len()
        )));
    }
    let tag = u16_at(chunk, 0);
    let channels = u16_at(chunk, 2);
    let sample_rate = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
    let block_align = u16_at(chunk, 12);
    let bits = u16_at(chunk, 14);
    // The container size decides the sample type. WAVE_FORMAT_EXTENSIBLE
    // states it in wBitsPerSample (wValidBitsPerSample only says how many
    // of those bits carry signal); plain PCM writers that store, say,
    // 12-bit samples put the real bit count there and round the container
    // up to whole bytes.
    let (tag, container) = if tag == TAG_EXTENSIBLE {
        if chunk.len() < 40 {
            return Err(bad(format!(
                "invalid WAV 'fmt ' chunk: WAVE_FORMAT_EXTENSIBLE needs 40 bytes, got {}",
                chunk.len()
            )));
        }
        (u16_at(chunk, 24), u32::from(bits))
    } else {
        (tag, u32::from(bits).div_ceil(8) * 8)
    };
    if channels == 0 {
        return Err(bad("invalid WAV 'fmt ' chunk: zero channels".to_string()));
    }
    let dtype = match (tag, container) {
        (TAG_PCM, 8) => Dtype::U8,
        (TAG_PCM, 16) => Dtype::I16,
        (TAG_PCM, 24) => Dtype::I24,
        (TAG_PCM, 32) => Dtype::I32,
        (TAG_FLOAT, 32) => Dtype::F32,
        (TAG_FLOAT, 64) => Dtype::F64,
        (TAG_PCM, _) => {
            return Err(bad(format!(
                "unsupported WAV bit depth: {container}-bit PCM samples (supported: 8, 16, 24, 32)"
            )));
        }
        (TAG_FLOAT, _) => {
            return Err(bad(format!(
                "unsupported WAV bit depth: {container}-bit float samples (supported: 32, 64)"
            )));
        }
        (other, _) => {
            return Err(bad(format!(
                "unsupported WAV format tag 0x{other:04X}{} (supported: PCM, IEEE float, and WAVE_FORMAT_EXTENSIBLE with either)",
                tag_name(other)
            )));
        }
    };
    let expected = usize::from(channels) * dtype.size();
    if usize::from(block_align) != expected {
        return Err(bad(format!(
            "invalid WAV 'fmt ' chunk: block_align is {block_align} but {channels} channel{} × {}-byte samples make {expected}",
            if channels == 1 { "" } else { "s" },
            dtype.size()
        )));
    }
    Ok(Fmt {
        dtype,
        channels: usize::from(channels),
        sample_rate,
        block_align,
    })
}

/// A name for the compressed formats people most often meet, for messages.
fn tag_name(tag: u16) -> &'static str {
    match tag {
        0x0002 => " (MS ADPCM)",
        0x0006 => " (A-law)",
        0x0007 => " (µ-law)",
        0x0011 => " (IMA ADPCM)",
        0x0055 => " (MP3)",
        _ => "",
    }
}

/// The error for a file or stream that holds less sample data than the
/// `data` chunk declares (`held` bytes after the chunk header).
pub(super) fn short_data(path: &Path, header: &Header, held: u64, what: &str) -> Error {
    Error::format(
        path,
        format!(
            "truncated WAV: the data chunk declares {} bytes but the {what} holds only {held} bytes after its header",
            header.data_len.unwrap_or(0)
        ),
    )
}
