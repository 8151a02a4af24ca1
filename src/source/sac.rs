//! SAC binary files (Seismic Analysis Code), either byte order.
//!
//! Why a parser of our own: the format is one fixed 632-byte header (70
//! floats, 40 integers, 24 eight-byte strings) followed by `npts` float32
//! samples, so there is nothing a crate would add; the samples then stream
//! through the same mapped-window reader as raw data.
//!
//! What is read, in the names of the SAC manual (and ObsPy's
//! `trace.stats.sac`): `DELTA` (the sample interval: rate = 1 / DELTA),
//! `NPTS`, `NVHDR` (6, or 7 with a footer of doubles after the data, which
//! is ignored), `IFTYPE` (only `ITIME`, evenly sampled time series: `LEVEN`
//! true), and the reference time `NZYEAR NZJDAY NZHOUR NZMIN NZSEC NZMSEC`
//! plus `B`, the first sample's offset from it: the recording's start time
//! is reference + B, as ObsPy's `trace.stats.starttime`. Station, network,
//! location and channel names (`KNETWK KSTNM KHOLE KCMPNM`) make the
//! channel's id, `NET.STA.LOC.CHA`.
//!
//! A file is SAC when it is named `*.sac` (any case), or when it is not
//! declared raw (`--dtype` or a dtype extension) and its header carries a
//! valid `NVHDR` in either byte order. Raw data never needs to be guessed
//! as SAC: it is read as raw only when declared.

use std::path::Path;

use super::{Dtype, Endian, Format, Header, Parsed};
use crate::error::{Error, Result};
use crate::time::UtcTime;

/// Bytes of the header; the samples follow.
pub(super) const HEADER_BYTES: usize = 632;

/// SAC's value for an undefined header field.
const UNDEFINED: i32 = -12345;
const UNDEFINED_F: f32 = -12345.0;

/// Word indices (4-byte words from the start of the file).
const DELTA: usize = 0;
const B: usize = 5;
const NZYEAR: usize = 70;
const NVHDR: usize = 76;
const NPTS: usize = 79;
const IFTYPE: usize = 85;
const LEVEN: usize = 105;
/// `IFTYPE` of an evenly or unevenly sampled time series.
const ITIME: i32 = 1;

/// Byte offsets of the name strings (8 bytes each).
const KSTNM: usize = 440;
const KHOLE: usize = 464;
const KCMPNM: usize = 600;
const KNETWK: usize = 608;

/// The byte order whose `NVHDR` is 6 or 7, if either.
fn byte_order(prefix: &[u8]) -> Option<Endian> {
    let word = prefix.get(NVHDR * 4..NVHDR * 4 + 4)?;
    let word: [u8; 4] = word.try_into().ok()?;
    [Endian::Little, Endian::Big]
        .into_iter()
        .find(|&e| matches!(int(word, e), 6 | 7))
}

fn int(b: [u8; 4], e: Endian) -> i32 {
    match e {
        Endian::Little => i32::from_le_bytes(b),
        Endian::Big => i32::from_be_bytes(b),
    }
}

/// Whether `prefix` starts like a SAC file (a valid `NVHDR` in either byte
/// order, and `NPTS` and `DELTA` that can be).
pub(super) fn looks_like(prefix: &[u8]) -> bool {
    let Some(e) = byte_order(prefix) else {
        return false;
    };
    if prefix.len() < HEADER_BYTES {
        return false;
    }
    let h = Words { b: prefix, e };
    h.int(NPTS) >= 0 && h.float(DELTA) > 0.0 && h.float(DELTA).is_finite()
}

/// The header's words in its byte order.
struct Words<'a> {
    b: &'a [u8],
    e: Endian,
}

impl Words<'_> {
    fn word(&self, i: usize) -> [u8; 4] {
        self.b[i * 4..i * 4 + 4].try_into().expect("4 bytes")
    }
    fn int(&self, i: usize) -> i32 {
        int(self.word(i), self.e)
    }
    fn float(&self, i: usize) -> f32 {
        f32::from_bits(int(self.word(i), self.e) as u32)
    }
    fn text(&self, at: usize) -> Option<String> {
        let s = String::from_utf8_lossy(&self.b[at..at + 8]);
        let s = s.trim_end_matches(['\0', ' ']).trim();
        (!s.is_empty() && s != "-12345").then(|| s.to_string())
    }
}

/// Parses the header at the start of `prefix`; `total` is the input's
/// length when known.
pub(super) fn parse(path: &Path, prefix: &[u8], total: Option<u64>) -> Result<Parsed> {
    if prefix.len() < HEADER_BYTES {
        return match total {
            Some(t) if t < HEADER_BYTES as u64 => Err(Error::format(
                path,
                format!("SAC file of {t} bytes: the header alone takes {HEADER_BYTES}"),
            )),
            _ => Ok(Parsed::NeedMore(HEADER_BYTES as u64)),
        };
    }
    let bad = |why: String| Error::format(path, format!("invalid SAC header: {why}"));
    let e = byte_order(prefix).ok_or_else(|| {
        bad("NVHDR (header version, word 76) is neither 6 nor 7 in either byte order".into())
    })?;
    let h = Words { b: prefix, e };
    let iftype = h.int(IFTYPE);
    if iftype != ITIME && iftype != UNDEFINED {
        return Err(bad(format!(
            "IFTYPE {iftype} is not a time series (ITIME = 1): spectral and x-y files are not signals"
        )));
    }
    if h.int(LEVEN) == 0 {
        return Err(bad("LEVEN is false: unevenly sampled data".into()));
    }
    let npts = h.int(NPTS);
    if npts < 0 {
        return Err(bad(format!("NPTS {npts} is negative")));
    }
    let delta = h.float(DELTA);
    if !(delta > 0.0 && delta.is_finite()) {
        return Err(bad(format!(
            "DELTA {delta} is not a positive sample interval"
        )));
    }
    let start_time = reference_time(&h).map_err(bad)?;
    Ok(Parsed::Header(Header {
        format: Format::Sac,
        dtype: Dtype::F32,
        endian: e,
        channels: 1,
        data_offset: HEADER_BYTES as u64,
        data_len: Some(npts as u64 * 4),
        sample_rate: Some(rate(delta)),
        start_time,
        names: vec![id(&h)],
        gains: Vec::new(),
        complex: false,
        center_frequency: None,
        annotations: Vec::new(),
    }))
}

/// The sample rate of a `DELTA` stored in f32, as ObsPy reads it:
/// `1 / round(DELTA, 6)` (the interval rounded to the microsecond, so that
/// 0.01 stored as 0.0099999998 gives 100 Hz, not 100.0000022 Hz; ObsPy's
/// `round_sampling_interval`, on by default).
fn rate(delta: f32) -> f64 {
    let rounded = (f64::from(delta) * 1e6).round() / 1e6;
    if rounded > 0.0 {
        1.0 / rounded
    } else {
        1.0 / f64::from(delta)
    }
}

/// `NET.STA.LOC.CHA`, empty parts where the header leaves them undefined.
fn id(h: &Words<'_>) -> String {
    [KNETWK, KSTNM, KHOLE, KCMPNM]
        .map(|at| h.text(at).unwrap_or_default())
        .join(".")
}

/// Reference time + `B`: `None` when the reference time is undefined.
fn reference_time(h: &Words<'_>) -> std::result::Result<Option<UtcTime>, String> {
    let f: Vec<i32> = (0..6).map(|i| h.int(NZYEAR + i)).collect();
    if f.contains(&UNDEFINED) {
        return Ok(None);
    }
    let (year, jday, hour, min, sec, msec) = (f[0], f[1], f[2], f[3], f[4], f[5]);
    let field = |v: i32, below: i32| u32::try_from(v).ok().filter(|&u| u < below as u32);
    let reference = match (
        field(jday, 367),
        field(hour, 24),
        field(min, 60),
        field(sec, 60),
        field(msec, 1000),
    ) {
        (Some(d), Some(h), Some(m), Some(s), Some(ms)) => {
            UtcTime::from_ordinal(i64::from(year), d, h, m, s, ms * 1_000_000)
        }
        _ => None,
    };
    let Some(reference) = reference else {
        return Err(format!(
            "reference time NZYEAR {year} NZJDAY {jday} {hour}:{min}:{sec}.{msec:03} is not a time"
        ));
    };
    let b = h.float(B);
    // B is the first sample's time relative to the reference (undefined:
    // 0, as ObsPy takes it).
    let b = if b == UNDEFINED_F || !b.is_finite() {
        0.0
    } else {
        f64::from(b)
    };
    let t = reference
        .plus_seconds(b)
        .ok_or_else(|| "the reference time plus B is outside 1678–2261".to_string())?;
    Ok(Some(t))
}

/// The error for a file shorter than its header's `NPTS` says.
pub(super) fn short_data(path: &Path, header: &Header, held: u64) -> Error {
    let npts = header.data_len.unwrap_or(0) / 4;
    Error::format(
        path,
        format!(
            "truncated SAC file: NPTS says {npts} samples ({} bytes), but only {held} bytes follow the header",
            npts * 4
        ),
    )
}
