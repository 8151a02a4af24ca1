//! `sigstream info`: what each input holds, and `--gpus`: the adapters.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::{InputArgs, out, report_failure};
use sigstream::error::Result;
use sigstream::report::{Report, describe_input};
use sigstream::source::mseed::Recording;
use sigstream::source::{self, Input, SignalInfo};

/// `sigstream info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Input files (`-` for standard input).
    #[arg(required_unless_present = "gpus", value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// How to read raw input.
    #[command(flatten)]
    pub input: InputArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// List the GPU adapters (names for --gpu-adapter) instead.
    #[arg(long)]
    pub gpus: bool,
}

/// `sigstream info`: returns the exit code.
pub fn run(args: &InfoArgs) -> Result<i32> {
    if args.gpus {
        return gpus(args.json);
    }
    let opts = args.input.source_options()?;
    let mut code = 0;
    let mut report = Report::new("info");
    let mut text = String::new();
    for input in &args.inputs {
        match source::open_input(input, &opts) {
            Ok(Input::Stream(src)) => {
                let info = src.info();
                let mut entry = describe_input(info, None);
                entry.insert("endian".into(), json!(info.endian));
                entry.insert("data_offset".into(), json!(info.data_offset));
                if !info.annotations.is_empty() {
                    entry.insert("annotations".into(), json!(info.annotations));
                }
                report.push(entry);
                text.push_str(&info_text(info));
            }
            Ok(Input::Segmented(rec)) => {
                let info = rec.span_info(0);
                let spans = rec.span_summaries();
                let mut entry = describe_input(&info, Some(spans.iter().map(|s| s.samples).sum()));
                let inventory = rec.inventory();
                entry.insert("mseed".into(), json!(inventory));
                entry.insert("spans".into(), json!(spans));
                report.push(entry);
                text.push_str(&mseed_text(&info, &rec));
            }
            Err(e) => {
                report_failure(&e, &mut code);
                report.push_error(input, &e);
            }
        }
    }
    if args.json {
        let value = json!({
            "sigstream": env!("CARGO_PKG_VERSION"),
            "command": "info",
            "inputs": report.inputs(),
        });
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ))?;
    } else {
        out(&text)?;
    }
    Ok(code)
}

/// The lower-case name serde gives a unit enum (`npy`, `i16`, `little`).
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn info_text(info: &SignalInfo) -> String {
    let samples = info.frames.map_or("unknown (stream)".into(), |n| {
        format!("{} per channel", super::group(n))
    });
    let rate = info
        .sample_rate
        .map_or("unknown".into(), |r| format!("{r} Hz"));
    let dur = match (info.frames, info.sample_rate) {
        (Some(n), Some(fs)) => format!("{:.3} s", n as f64 / fs),
        _ => "unknown".into(),
    };
    let start = info.start_time.map_or("unknown".into(), |t| t.to_string());
    let channels = info.signal_channels();
    let mut text = format!(
        "{}\n  format:      {}\n  dtype:       {}{} ({}-endian)\n  channels:    {}\n  samples:     {samples}\n  sample rate: {rate}\n  duration:    {dur}\n  start time:  {start}\n",
        info.path.display(),
        name(&info.format),
        info.sample_type(),
        if info.complex { " (complex I/Q)" } else { "" },
        name(&info.endian),
        if info.channel_names.is_empty() {
            channels.to_string()
        } else {
            format!("{channels} ({})", info.channel_names.join(", "))
        },
    );
    if info.complex {
        let centre = info
            .center_frequency
            .map_or("unknown".into(), |f| format!("{f} Hz"));
        text.push_str(&format!("  centre freq: {centre}\n"));
    }
    text.push_str(&format!("  data offset: {} bytes\n", info.data_offset));
    if !info.annotations.is_empty() {
        text.push_str(&format!("  annotations: {}\n", info.annotations.len()));
        for a in &info.annotations {
            let count = a.sample_count.map_or("to the end".into(), |n| {
                format!("{} samples", super::group(n))
            });
            let band = match (a.freq_lower_edge, a.freq_upper_edge) {
                (Some(lo), Some(hi)) => format!("  {lo} – {hi} Hz"),
                _ => String::new(),
            };
            text.push_str(&format!(
                "    sample {}  {count}{band}  {}\n",
                super::group(a.sample_start),
                a.label
            ));
        }
    }
    text
}

/// A miniSEED file: every channel with its segments, then what the
/// options select and how many spans they make.
fn mseed_text(info: &SignalInfo, rec: &Recording) -> String {
    use std::fmt::Write as _;
    let inv = rec.inventory();
    let versions: Vec<String> = inv.versions.iter().map(u8::to_string).collect();
    let mut t = format!(
        "{}\n  format:      miniSEED {} ({} records)\n  channels:    {}\n",
        info.path.display(),
        versions.join(" and "),
        super::group(inv.records),
        inv.channels.len()
    );
    for ch in &inv.channels {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        let _ = writeln!(
            t,
            "    {}  {} – {}  {} Hz  {} samples  {}  {}  {}",
            ch.id,
            ch.start,
            ch.end,
            ch.sample_rate,
            super::group(ch.samples),
            plural(ch.gaps, "gap"),
            plural(ch.overlaps, "overlap"),
            ch.encoding
        );
        if ch.segments.len() > 1 {
            const SHOWN: usize = 20;
            for s in ch.segments.iter().take(SHOWN) {
                let _ = writeln!(
                    t,
                    "      segment {} – {}  {} samples",
                    s.start,
                    s.end,
                    super::group(s.samples)
                );
            }
            if ch.segments.len() > SHOWN {
                let _ = writeln!(
                    t,
                    "      ... {} more segments (info --json lists all)",
                    ch.segments.len() - SHOWN
                );
            }
        }
    }
    let spans = rec.spans();
    let _ = writeln!(
        t,
        "  selected:    {} at {} Hz: {} span{} to process",
        info.channel_names.join(", "),
        info.sample_rate.unwrap_or(0.0),
        spans,
        if spans == 1 { "" } else { "s" }
    );
    for (id, n) in rec.dropped() {
        let _ = writeln!(
            t,
            "  not processed: {} samples of {id} (overlaps, or where not every selected channel has data)",
            super::group(n)
        );
    }
    t
}

/// `sigstream info --gpus` in a build without the GPU backend: there are
/// none to list, and the text says why.
#[cfg(not(feature = "gpu"))]
fn gpus(json: bool) -> Result<i32> {
    if json {
        let value = json!({
            "sigstream": env!("CARGO_PKG_VERSION"),
            "command": "info",
            "gpus": [],
        });
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ))?;
    } else {
        out(
            "no GPU adapters: this sigstream was built without the GPU backend (cargo feature `gpu`)\n",
        )?;
    }
    Ok(0)
}

/// `sigstream info --gpus`: the adapters wgpu sees. The JSON form is what
/// [`sigstream::backend::adapters_in_child`] reads.
#[cfg(feature = "gpu")]
fn gpus(json: bool) -> Result<i32> {
    let adapters = sigstream::backend::gpu::context::adapters();
    if json {
        let list: Vec<serde_json::Value> = adapters
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "type": format!("{:?}", a.device_type),
                    "backend": format!("{:?}", a.backend),
                    "driver": a.driver,
                    "driver_info": a.driver_info,
                    "software": a.device_type == wgpu::DeviceType::Cpu,
                })
            })
            .collect();
        let value = json!({
            "sigstream": env!("CARGO_PKG_VERSION"),
            "command": "info",
            "gpus": list,
        });
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ))?;
    } else if adapters.is_empty() {
        out("no GPU adapters (is a Vulkan, Metal or DX12 driver installed?)\n")?;
    } else {
        for a in &adapters {
            let soft = if a.device_type == wgpu::DeviceType::Cpu {
                "  [software: used only with --backend gpu]"
            } else {
                ""
            };
            out(&format!(
                "{} ({:?}, {:?}, {} {}){soft}\n",
                a.name, a.device_type, a.backend, a.driver, a.driver_info
            ))?;
        }
    }
    Ok(0)
}
