//! One miniSEED record's header, version 2 (SEED 2.4 fixed header and
//! blockettes) or 3 (FDSN miniSEED 3), and the decoding of its samples.
//!
//! Field names and offsets follow the SEED 2.4 manual (chapter 8, fixed
//! section of data header; blockettes 100, 1000, 1001) and the miniSEED 3
//! specification (FDSN, 2023). What libmseed does where the documents leave
//! room is followed too: the header's byte order is the one in which the
//! year and day are valid; a time correction is applied unless the
//! activity flags say it already was; blockette 100's actual sample rate
//! overrides the factor/multiplier; a version 3 record's CRC-32C is
//! checked.

use crate::time::UtcTime;

use super::steim;

/// Smallest and largest record length accepted, in bytes. Version 2
/// records are 2^7..2^23 bytes (blockette 1000's exponent); libmseed
/// accepts version 3 records up to 10 MiB, the same bound.
pub(super) const MIN_RECORD: usize = 40;
pub(super) const MAX_RECORD: usize = 1 << 23;

/// Bytes of the fixed header: 48 (version 2), 40 (version 3).
const V2_FIXED: usize = 48;
const V3_FIXED: usize = 40;

/// How the samples of a record are stored (SEED data encoding codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    /// 0: text (log records): no samples.
    Text,
    /// 1: 16-bit integers.
    Int16,
    /// 3: 32-bit integers.
    Int32,
    /// 4: IEEE 32-bit floats.
    Float32,
    /// 5: IEEE 64-bit floats.
    Float64,
    /// 10: Steim-1 compressed integers.
    Steim1,
    /// 11: Steim-2 compressed integers.
    Steim2,
}

impl Encoding {
    fn from_code(code: u8) -> Result<Encoding, String> {
        Ok(match code {
            0 => Encoding::Text,
            1 => Encoding::Int16,
            3 => Encoding::Int32,
            4 => Encoding::Float32,
            5 => Encoding::Float64,
            10 => Encoding::Steim1,
            11 => Encoding::Steim2,
            19 => return Err("Steim-3 (encoding 19) is not supported".into()),
            12..=14 => return Err(format!("GEOSCOPE (encoding {code}) is not supported")),
            16 | 17 => {
                return Err(format!(
                    "CDSN/Graefenberg (encoding {code}) is not supported"
                ));
            }
            30 | 32 | 33 => {
                return Err(format!(
                    "SRO/DWWSSN/RSTN (encoding {code}) is not supported"
                ));
            }
            _ => return Err(format!("unknown data encoding {code}")),
        })
    }

    /// The name `info` prints.
    pub(super) fn name(self) -> &'static str {
        match self {
            Encoding::Text => "text",
            Encoding::Int16 => "int16",
            Encoding::Int32 => "int32",
            Encoding::Float32 => "float32",
            Encoding::Float64 => "float64",
            Encoding::Steim1 => "steim1",
            Encoding::Steim2 => "steim2",
        }
    }
}

/// What a record's header says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Record {
    /// 2 or 3.
    pub version: u8,
    /// Bytes of the whole record.
    pub len: usize,
    /// `NET.STA.LOC.CHA`.
    pub id: String,
    /// Time of the first sample.
    pub start: UtcTime,
    /// Samples per second (0 when the record has no samples).
    pub rate: f64,
    /// Samples in the record.
    pub samples: usize,
    pub encoding: Encoding,
    /// Where the encoded samples are, from the record's start.
    pub data_at: usize,
    pub data_len: usize,
    /// Byte order of the encoded samples.
    pub data_big_endian: bool,
}

/// What parsing the bytes at a record's start gave.
#[derive(Debug)]
pub(super) enum Parsed {
    Record(Record),
    /// The header (or the record, for the CRC) goes past the bytes given:
    /// give at least this many from the record's start.
    NeedMore(usize),
}

/// Whether `b` starts like a miniSEED record, version 2 or 3 (what libmseed
/// checks before parsing: version 3's `MS3`; version 2's sequence number,
/// quality indicator and a valid time in either byte order).
pub(crate) fn looks_like(b: &[u8]) -> bool {
    looks_like_v3(b) || looks_like_v2(b)
}

fn looks_like_v3(b: &[u8]) -> bool {
    b.len() >= V3_FIXED && &b[..3] == b"MS\x03"
}

fn looks_like_v2(b: &[u8]) -> bool {
    if b.len() < V2_FIXED {
        return false;
    }
    let seq_ok = b[..6]
        .iter()
        .all(|&c| c.is_ascii_digit() || c == b' ' || c == 0);
    let quality_ok = matches!(b[6], b'D' | b'R' | b'Q' | b'M');
    let reserved_ok = matches!(b[7], b' ' | 0);
    seq_ok
        && quality_ok
        && reserved_ok
        && v2_big_endian(b).is_some()
        && b[24] <= 23
        && b[25] <= 59
        && b[26] <= 60
}

/// The byte order of a version 2 header: the one in which the start
/// year (1900–2100) and day (1–366) are valid (`None`: neither).
fn v2_big_endian(b: &[u8]) -> Option<bool> {
    let valid = |big: bool| {
        let y = u16_at(b, 20, big);
        let d = u16_at(b, 22, big);
        (1900..=2100).contains(&y) && (1..=366).contains(&d)
    };
    if valid(true) {
        Some(true)
    } else if valid(false) {
        Some(false)
    } else {
        None
    }
}

fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    let w = [b[at], b[at + 1]];
    if big {
        u16::from_be_bytes(w)
    } else {
        u16::from_le_bytes(w)
    }
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// Parses the record that starts at `b[0]`; `left` is how many bytes the
/// file holds from there (a record may not claim more).
///
/// # Errors
/// What is wrong with the record, as a phrase.
pub(super) fn parse(b: &[u8], left: u64) -> Result<Parsed, String> {
    if looks_like_v3(b) {
        parse_v3(b, left)
    } else if b.len() < V2_FIXED.max(V3_FIXED) && (left as usize) > b.len() {
        Ok(Parsed::NeedMore(V2_FIXED))
    } else if looks_like_v2(b) {
        parse_v2(b, left)
    } else {
        Err("not a miniSEED record (neither a version 2 fixed header nor MS3)".into())
    }
}

/// Sample rates accepted, in Hz: a sample per 30 years to a gigasample per
/// second. Times and grid positions stay far inside 64 bits within them.
const RATES: std::ops::RangeInclusive<f64> = 1e-9..=1e9;

fn check_rate(samples: usize, rate: f64, what: impl std::fmt::Display) -> Result<(), String> {
    if samples > 0 && !RATES.contains(&rate) {
        return Err(format!(
            "{samples} samples but sample rate {what} is not within 1e-9..=1e9 Hz"
        ));
    }
    Ok(())
}

fn check_len(len: usize, left: u64) -> Result<(), String> {
    if !(MIN_RECORD..=MAX_RECORD).contains(&len) {
        return Err(format!(
            "record length {len} is outside {MIN_RECORD}..={MAX_RECORD} bytes"
        ));
    }
    if len as u64 > left {
        return Err(format!(
            "the record declares {len} bytes but the file holds only {left} from its start (a lying record length, or a truncated file)"
        ));
    }
    Ok(())
}

fn parse_v2(b: &[u8], left: u64) -> Result<Parsed, String> {
    let big = v2_big_endian(b).ok_or("invalid start year/day")?;
    let text = |r: std::ops::Range<usize>| {
        String::from_utf8_lossy(&b[r])
            .trim_matches(|c: char| c == ' ' || c == '\0')
            .to_string()
    };
    let (sta, loc, cha, net) = (text(8..13), text(13..15), text(15..18), text(18..20));
    let year = u16_at(b, 20, big);
    let day = u16_at(b, 22, big);
    let (hour, minute, second) = (b[24], b[25], b[26]);
    let fract = u16_at(b, 28, big);
    if fract > 9999 {
        return Err(format!(
            "start time fraction {fract} is above 9999 (0.0001 s units)"
        ));
    }
    let samples = usize::from(u16_at(b, 30, big));
    let factor = u16_at(b, 32, big) as i16;
    let mult = u16_at(b, 34, big) as i16;
    let activity = b[36];
    let blockettes = b[39];
    let correction = u32_at(b, 40, big) as i32;
    let data_at = usize::from(u16_at(b, 44, big));
    let mut next = usize::from(u16_at(b, 46, big));

    let mut len = None;
    let mut encoding = None;
    let mut data_big = big;
    let mut micros: i8 = 0;
    let mut b100_rate = None;
    let mut seen = 0u32;
    let mut last = 0usize;
    while next != 0 {
        // A chain must move forward, past the fixed header: a loop or a
        // pointer into the fixed header is a corrupt record.
        if next < V2_FIXED || next <= last || seen > u32::from(blockettes).max(1) + 16 {
            return Err(format!("corrupt blockette chain (offset {next})"));
        }
        if let Some(l) = len
            && next + 4 > l
        {
            return Err(format!(
                "blockette at offset {next} is past the record's end ({l} bytes)"
            ));
        }
        if next + 8 > b.len() {
            if (next + 8) as u64 > left {
                return Err(format!(
                    "blockette at offset {next} is past the end of the file"
                ));
            }
            return Ok(Parsed::NeedMore(next + 16));
        }
        let kind = u16_at(b, next, big);
        let following = usize::from(u16_at(b, next + 2, big));
        match kind {
            1000 => {
                encoding = Some(b[next + 4]);
                data_big = b[next + 5] == 1;
                let exp = b[next + 6];
                if !(7..=23).contains(&exp) {
                    return Err(format!(
                        "blockette 1000 record length 2^{exp} is outside 2^7..=2^23 bytes"
                    ));
                }
                len = Some(1usize << exp);
            }
            1001 => micros = b[next + 5] as i8,
            100 => {
                if next + 12 > b.len() {
                    return Ok(Parsed::NeedMore(next + 16));
                }
                let r = f32::from_bits(u32_at(b, next + 4, big));
                b100_rate = Some(f64::from(r));
            }
            _ => {}
        }
        last = next;
        next = following;
        seen += 1;
    }
    let len = len.ok_or(
        "no blockette 1000 (encoding, byte order, record length): SEED 2.4 miniSEED needs one",
    )?;
    check_len(len, left)?;
    let encoding = Encoding::from_code(encoding.unwrap_or(0))?;
    let rate = match b100_rate {
        Some(r) if r.is_finite() && r > 0.0 => r,
        _ => nominal_rate(factor, mult),
    };
    check_rate(
        samples,
        rate,
        format_args!("{rate} (factor {factor}, multiplier {mult})"),
    )?;
    if samples > 0 && (data_at < V2_FIXED || data_at >= len) {
        return Err(format!(
            "beginning of data {data_at} is outside the record ({len} bytes)"
        ));
    }
    let mut start = UtcTime::from_ordinal(
        i64::from(year),
        u32::from(day),
        u32::from(hour),
        u32::from(minute),
        u32::from(second),
        u32::from(fract) * 100_000,
    )
    .ok_or_else(|| format!("start time {year},{day:03} {hour}:{minute}:{second} is not a time"))?;
    // Microseconds of blockette 1001, and the time correction (0.0001 s)
    // unless activity flag bit 1 says it is already applied.
    let mut offset_ns = i64::from(micros) * 1000;
    if activity & 0x02 == 0 {
        offset_ns += i64::from(correction) * 100_000;
    }
    start = UtcTime::from_ns(start.ns() + offset_ns);
    Ok(Parsed::Record(Record {
        version: 2,
        len,
        id: format!("{net}.{sta}.{loc}.{cha}"),
        start,
        rate: if samples > 0 { rate } else { 0.0 },
        samples,
        encoding,
        data_at,
        data_len: if samples > 0 { len - data_at } else { 0 },
        data_big_endian: data_big,
    }))
}

/// The rate a version 2 header's factor and multiplier give (SEED 2.4,
/// fixed header fields 10 and 11), as libmseed's `ms_nomsamprate`.
fn nominal_rate(factor: i16, mult: i16) -> f64 {
    let (f, m) = (f64::from(factor), f64::from(mult));
    match (factor, mult) {
        (0, _) | (_, 0) => 0.0,
        (f1, m1) if f1 > 0 && m1 > 0 => f * m,
        (f1, _) if f1 > 0 => -f / m,
        (_, m1) if m1 > 0 => -m / f,
        _ => 1.0 / (f * m),
    }
}

fn parse_v3(b: &[u8], left: u64) -> Result<Parsed, String> {
    let u16le = |at: usize| u16_at(b, at, false);
    let u32le = |at: usize| u32_at(b, at, false);
    let nanos = u32le(4);
    let year = u16le(8);
    let day = u16le(10);
    let (hour, minute, second) = (b[12], b[13], b[14]);
    let code = b[15];
    let rate_field = f64::from_bits(u64::from(u32le(16)) | (u64::from(u32le(20)) << 32));
    let samples = u32le(24) as usize;
    let crc = u32le(28);
    let sid_len = usize::from(b[33]);
    let extra_len = usize::from(u16le(34));
    let data_len = u32le(36) as usize;
    let len = V3_FIXED + sid_len + extra_len + data_len;
    check_len(len, left)?;
    if b.len() < len {
        return Ok(Parsed::NeedMore(len));
    }
    let mut hasher = crc32c::crc32c(&b[..28]);
    hasher = crc32c::crc32c_append(hasher, &[0; 4]);
    hasher = crc32c::crc32c_append(hasher, &b[32..len]);
    if hasher != crc {
        return Err(format!(
            "CRC-32C mismatch (header {crc:#010x}, computed {hasher:#010x}): the record is corrupt"
        ));
    }
    let sid = String::from_utf8_lossy(&b[V3_FIXED..V3_FIXED + sid_len]).into_owned();
    let encoding = Encoding::from_code(code)?;
    let rate = if rate_field > 0.0 {
        rate_field
    } else if rate_field < 0.0 {
        -1.0 / rate_field
    } else {
        0.0
    };
    if samples > 0 && !(rate.is_finite() && rate > 0.0) {
        return Err(format!(
            "{samples} samples but no sample rate ({rate_field})"
        ));
    }
    if nanos > 999_999_999 {
        return Err(format!("nanosecond field {nanos} is above 999999999"));
    }
    let start = UtcTime::from_ordinal(
        i64::from(year),
        u32::from(day),
        u32::from(hour),
        u32::from(minute),
        u32::from(second),
        nanos,
    )
    .ok_or_else(|| format!("start time {year},{day:03} {hour}:{minute}:{second} is not a time"))?;
    Ok(Parsed::Record(Record {
        version: 3,
        len,
        id: sid_to_nslc(&sid),
        start,
        rate: if samples > 0 { rate } else { 0.0 },
        samples,
        encoding,
        data_at: V3_FIXED + sid_len + extra_len,
        data_len,
        // miniSEED 3: Steim frames are big-endian, everything else little.
        data_big_endian: matches!(encoding, Encoding::Steim1 | Encoding::Steim2),
    }))
}

/// An FDSN source identifier (`FDSN:NET_STA_LOC_B_S_SS`) as
/// `NET.STA.LOC.CHA`, the channel being band, source and subsource joined
/// (with `_` unless all three are one character), as libmseed's
/// `ms_sid2nslc`; anything else as it is.
fn sid_to_nslc(sid: &str) -> String {
    let Some(rest) = sid.strip_prefix("FDSN:") else {
        return sid.to_string();
    };
    let parts: Vec<&str> = rest.split('_').collect();
    if parts.len() < 6 {
        return sid.to_string();
    }
    let (net, sta, loc) = (parts[0], parts[1], parts[2]);
    let chan = &parts[3..];
    let cha = if chan.iter().all(|p| p.chars().count() == 1) {
        chan.concat()
    } else {
        chan.join("_")
    };
    format!("{net}.{sta}.{loc}.{cha}")
}

/// Decodes the samples of `rec`, whose bytes are `b` (the whole record),
/// into `out` (cleared first); `scratch` holds Steim differences.
///
/// # Errors
/// What is wrong with the encoded data, as a phrase.
pub(super) fn decode(
    rec: &Record,
    b: &[u8],
    out: &mut Vec<f32>,
    scratch: &mut Vec<i32>,
) -> Result<(), String> {
    out.clear();
    let n = rec.samples;
    let data = &b[rec.data_at..rec.data_at + rec.data_len];
    let big = rec.data_big_endian;
    let fixed = |size: usize| -> Result<(), String> {
        if data.len() < n * size {
            return Err(format!(
                "{n} samples of {size} bytes do not fit the record's {} bytes of data",
                data.len()
            ));
        }
        Ok(())
    };
    match rec.encoding {
        Encoding::Text => {}
        Encoding::Int16 => {
            fixed(2)?;
            out.extend(data[..2 * n].chunks_exact(2).map(|c| {
                let w = [c[0], c[1]];
                f32::from(if big {
                    i16::from_be_bytes(w)
                } else {
                    i16::from_le_bytes(w)
                })
            }));
        }
        Encoding::Int32 => {
            fixed(4)?;
            out.extend(data[..4 * n].chunks_exact(4).map(|c| {
                let w = [c[0], c[1], c[2], c[3]];
                (if big {
                    i32::from_be_bytes(w)
                } else {
                    i32::from_le_bytes(w)
                }) as f32
            }));
        }
        Encoding::Float32 => {
            fixed(4)?;
            out.extend(data[..4 * n].chunks_exact(4).map(|c| {
                let w = [c[0], c[1], c[2], c[3]];
                if big {
                    f32::from_be_bytes(w)
                } else {
                    f32::from_le_bytes(w)
                }
            }));
        }
        Encoding::Float64 => {
            fixed(8)?;
            out.extend(data[..8 * n].chunks_exact(8).map(|c| {
                let w: [u8; 8] = c.try_into().expect("8 bytes");
                (if big {
                    f64::from_be_bytes(w)
                } else {
                    f64::from_le_bytes(w)
                }) as f32
            }));
        }
        Encoding::Steim1 => steim::decode(steim::Kind::One, data, n, big, out, scratch)?,
        Encoding::Steim2 => steim::decode(steim::Kind::Two, data, n, big, out, scratch)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ids_become_net_sta_loc_cha_as_libmseed_makes_them() {
        assert_eq!(sid_to_nslc("FDSN:IU_ANMO_00_B_H_Z"), "IU.ANMO.00.BHZ");
        assert_eq!(sid_to_nslc("FDSN:XX_TEST__L_H_Z"), "XX.TEST..LHZ");
        assert_eq!(sid_to_nslc("FDSN:XX_TEST_00_BB_H_Z"), "XX.TEST.00.BB_H_Z");
        assert_eq!(sid_to_nslc("not-fdsn"), "not-fdsn");
    }

    #[test]
    fn nominal_rates_follow_the_seed_manual() {
        // SEED 2.4, fixed header notes: factor/multiplier sign conventions.
        assert_eq!(nominal_rate(100, 1), 100.0);
        assert_eq!(nominal_rate(1, -10), 0.1);
        assert_eq!(nominal_rate(-10, 1), 0.1);
        assert_eq!(nominal_rate(-10, -2), 1.0 / 20.0);
        assert_eq!(nominal_rate(0, 1), 0.0);
    }
}
