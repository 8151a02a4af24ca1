//! SpikeGLX recordings: a `.bin` of interleaved little-endian int16
//! beside its `.meta` (`key=value` lines).
//!
//! Why a parser of our own: the `.meta` is a flat text file, and the
//! samples are plain interleaved int16 that stream through the raw reader;
//! what is format-specific is which keys mean what, following the
//! SpikeGLX documentation (`Metadata_30.md`) and what SpikeInterface's
//! reader (neo's `SpikeGLXRawIO`) does with them:
//! - `nSavedChans`: channels; `imSampRate` (imec probes) or `niSampRate`
//!   (NI-DAQ): the rate.
//! - `~snsChanMap=(…)(AP0;0:0)(AP1;1:1)…(SY0;384:384)`: the saved channels'
//!   names (`AP0`, `LF3`, `SY0`, `MN0`, `XA2`, …), used as channel names.
//! - With `--normalize`, samples become microvolts: count × Vmax / Imax /
//!   gain × 10^6, with, for imec, Vmax = `imAiRangeMax` (0.6 V if absent),
//!   Imax = `imMaxInt` (512 if absent; 8192 for Neuropixels 2.0) and the
//!   gain from `~imroTbl`: a Neuropixels 1.0 entry
//!   `(chan bank ref apGain lfGain hpFilt)` gives `apGain` to `APn` and
//!   `lfGain` to `LFn`; 2.0 probes (4-field entries) have a fixed gain of
//!   80. For NI-DAQ, Vmax = `niAiRangeMax`, Imax = `niMaxInt` (32768 if
//!   absent), gain `niMNGain` for `MN` channels, `niMAGain` for `MA`, 1 for
//!   `XA`. Digital words (`SY`, `XD`) are left as they are.
//!
//! A `.bin` is taken for SpikeGLX when it is not declared raw and a `.meta`
//! of the same stem lies beside it. `fileCreateTime` is local time without
//! a zone, so it is not used as a start time (give `--start-time`).

use std::path::{Path, PathBuf};

use super::{Dtype, Endian, Format, Header, SourceOptions};
use crate::error::{Error, Result};

/// Largest `.meta` read (real ones are a few kilobytes; an imro table of
/// thousands of channels some tens).
const MAX_META_BYTES: u64 = 4 << 20;

/// The `.meta` beside `bin`.
pub(super) fn meta_path(bin: &Path) -> PathBuf {
    bin.with_extension("meta")
}

/// The value of `key` in the meta's lines (`~` keys included as written).
fn value<'a>(meta: &'a str, key: &str) -> Option<&'a str> {
    meta.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// The header of the recording `bin`, from its `.meta`.
pub(super) fn parse(bin: &Path, opts: &SourceOptions) -> Result<Header> {
    let meta_file = meta_path(bin);
    let bad = |why: String| Error::format(&meta_file, why);
    let size = std::fs::metadata(&meta_file)
        .map_err(|e| Error::open(&meta_file, e))?
        .len();
    if size > MAX_META_BYTES {
        return Err(bad(format!(
            "{size} bytes: not a SpikeGLX .meta (those are kilobytes)"
        )));
    }
    let bytes = std::fs::read(&meta_file).map_err(|e| Error::open(&meta_file, e))?;
    let meta = String::from_utf8_lossy(&bytes);
    let number = |key: &str| -> Result<Option<f64>> {
        value(&meta, key)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| bad(format!("{key}={v} is not a number")))
            })
            .transpose()
    };
    let channels = match number("nSavedChans")? {
        Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= 1e6 => n as usize,
        Some(n) => return Err(bad(format!("nSavedChans={n}: not a channel count"))),
        None => return Err(bad("no nSavedChans: not a SpikeGLX .meta".into())),
    };
    let imec = value(&meta, "typeThis").is_none_or(|t| t != "nidq");
    let rate_key = if imec { "imSampRate" } else { "niSampRate" };
    let rate = match number(rate_key)? {
        Some(r) if r > 0.0 => r,
        _ => return Err(bad(format!("no positive {rate_key}"))),
    };
    let names = channel_names(&meta, channels);
    let gains = if opts.normalize {
        microvolts_per_count(&meta, &names, imec).map_err(bad)?
    } else {
        Vec::new()
    };
    Ok(Header {
        format: Format::SpikeGlx,
        dtype: Dtype::I16,
        endian: Endian::Little,
        channels,
        data_offset: 0,
        data_len: None,
        sample_rate: Some(rate),
        start_time: None,
        names,
        gains,
        complex: false,
        center_frequency: None,
        annotations: Vec::new(),
    })
}

/// The saved channels' names from `~snsChanMap` (`(AP0;0:0)` → `AP0`),
/// when it lists exactly `channels` of them; else empty.
fn channel_names(meta: &str, channels: usize) -> Vec<String> {
    let Some(map) = value(meta, "~snsChanMap") else {
        return Vec::new();
    };
    let names: Vec<String> = map
        .split('(')
        .skip(2) // "" and the "(counts)" header
        .filter_map(|e| e.split(';').next())
        .map(|n| n.trim().to_string())
        .collect();
    if names.len() == channels {
        names
    } else {
        Vec::new()
    }
}

/// µV per count of each channel (see the module doc).
fn microvolts_per_count(
    meta: &str,
    names: &[String],
    imec: bool,
) -> std::result::Result<Vec<f32>, String> {
    if names.is_empty() {
        return Err(
            "--normalize needs the channel map (~snsChanMap) to know each channel's gain".into(),
        );
    }
    let num = |key: &str, default: f64| -> std::result::Result<f64, String> {
        match value(meta, key) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| format!("{key}={v} is not a positive number")),
        }
    };
    // (kind, index) of a name: "AP12" → ("AP", 12).
    let split = |n: &str| -> (String, usize) {
        let k: String = n.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let i = n[k.len()..].parse().unwrap_or(0);
        (k, i)
    };
    let mut out = Vec::with_capacity(names.len());
    if imec {
        let table =
            value(meta, "~imroTbl").ok_or("--normalize needs ~imroTbl (the probe's gains)")?;
        let entries: Vec<Vec<f64>> = table
            .split('(')
            .skip(2)
            .map(|e| {
                e.trim_end_matches(')')
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .collect();
        let np2 = entries.first().is_some_and(|e| e.len() == 4);
        let vmax = num("imAiRangeMax", 0.6)?;
        let imax = num("imMaxInt", if np2 { 8192.0 } else { 512.0 })?;
        for n in names {
            let (kind, i) = split(n);
            let gain = match kind.as_str() {
                "SY" => None,
                _ if np2 => Some(80.0),
                "AP" | "LF" => {
                    let e = entries
                        .get(i)
                        .ok_or_else(|| format!("~imroTbl has no entry for {n}"))?;
                    let g = e
                        .get(if kind == "AP" { 3 } else { 4 })
                        .copied()
                        .filter(|g| *g > 0.0)
                        .ok_or_else(|| format!("~imroTbl entry {i} has no {kind} gain"))?;
                    Some(g)
                }
                _ => return Err(format!("unknown imec channel {n}")),
            };
            out.push(gain.map_or(1.0, |g| (vmax / imax / g * 1e6) as f32));
        }
    } else {
        let vmax = num("niAiRangeMax", 5.0)?;
        let imax = num("niMaxInt", 32768.0)?;
        for n in names {
            let (kind, _) = split(n);
            let gain = match kind.as_str() {
                "MN" => Some(num("niMNGain", 1.0)?),
                "MA" => Some(num("niMAGain", 1.0)?),
                "XA" => Some(1.0),
                "XD" => None,
                _ => return Err(format!("unknown NI-DAQ channel {n}")),
            };
            out.push(gain.map_or(1.0, |g| (vmax / imax / g * 1e6) as f32));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_channel_map() {
        let meta = "nSavedChans=3\n~snsChanMap=(2,0,1)(AP0;0:0)(AP1;1:1)(SY0;384:384)\n";
        assert_eq!(channel_names(meta, 3), ["AP0", "AP1", "SY0"]);
        assert!(channel_names(meta, 4).is_empty(), "a map that does not fit");
    }
}
