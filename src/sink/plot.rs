//! PNG figures: the spectrogram image and the PSD plot (plotters' bitmap
//! backend, encoded with `png`, written atomically).
//!
//! Why the image has its own accumulator ([`SpectrogramImage`]): a long
//! recording has far more frames than the picture has pixel columns, and
//! holding every frame would break the constant-memory rule. The image is
//! computed at its own resolution while the frames stream past: each frame's
//! dB values are max-pooled into the pixel column(s) it falls in, and bins
//! into pixel rows, so a short loud event still shows however long the
//! recording. The font (DejaVu Sans, `assets/`) is embedded so that the
//! figures have text on machines without any font installed.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Once;

use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::sink::AtomicFile;

/// The embedded font, registered as "sans-serif".
static FONT: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is ours and known to parse; a failure would only leave
        // the figure without text.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Space around the spectrogram's plot area, in pixels: what the axes, their
/// labels and the colour bar take. The accumulator sizes its grid from
/// these; the drawing maps the grid onto the plot area plotters lays out,
/// whatever its exact size.
const LEFT: u32 = 90;
const RIGHT: u32 = 120;
const TOP: u32 = 40;
const BOTTOM: u32 = 55;

/// Viridis, sampled at nine points (matplotlib's colour map).
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// The viridis colour of `t` in `[0, 1]` (clamped).
pub fn viridis(t: f64) -> RGBColor {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: u8, q: u8| (f64::from(p) + (f64::from(q) - f64::from(p)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Axes of a spectrogram: where frames and bins are.
#[derive(Debug, Clone)]
pub struct SpectrogramAxes {
    /// Samples per second; `None`: axes in samples and cycles/sample.
    pub sample_rate: Option<f64>,
    /// Samples between frames.
    pub hop: usize,
    /// Samples per frame.
    pub nfft: usize,
    /// The lowest and highest bins' frequencies (Hz, or cycles/sample
    /// without a rate): `0 .. fs/2` one-sided, `−fs/2 .. fs/2 − fs/nfft`
    /// (plus the centre frequency) two-sided.
    pub frequencies: (f64, f64),
    /// When the first sample was taken: with a sample rate, the time axis
    /// is labelled in UTC.
    pub start_time: Option<crate::time::UtcTime>,
    /// The channels' names (panel captions), or empty for their indices.
    pub channel_names: Vec<String>,
}

/// A spectrogram picture accumulated at its own resolution while frames
/// stream: `channels` panels stacked vertically, one grid of pixel columns
/// × pixel rows each, max-pooled dB.
#[derive(Debug)]
pub struct SpectrogramImage {
    width: u32,
    height: u32,
    channels: usize,
    bins: usize,
    cols: usize,
    rows: usize,
    /// Frames in the whole signal when known; else columns hold
    /// `per_col` frames each, doubling (pairs of columns merged) whenever
    /// the grid fills.
    total: Option<u64>,
    per_col: u64,
    frames: u64,
    /// `channels × cols × rows` dB values (−∞: nothing yet).
    grid: Vec<f32>,
}

impl SpectrogramImage {
    /// An image of `width × height` pixels for `channels` channels of
    /// `bins` bins, expecting `total` frames (`None` for a stream of unknown
    /// length).
    ///
    /// # Errors
    /// [`Error::Usage`] for an image too small to hold axes and a plot.
    pub fn new(
        width: u32,
        height: u32,
        channels: usize,
        bins: usize,
        total: Option<u64>,
    ) -> Result<Self> {
        check_size(width, height)?;
        let panel = height / channels.max(1) as u32;
        if width < LEFT + RIGHT + 50 || panel < TOP + BOTTOM + 30 {
            return Err(Error::usage(format!(
                "--width {width} --height {height}: too small for {channels} spectrogram panel(s) with axes (at least {}×{})",
                LEFT + RIGHT + 50,
                (TOP + BOTTOM + 30) * channels.max(1) as u32
            )));
        }
        let cols = (width - LEFT - RIGHT) as usize;
        let rows = ((panel - TOP - BOTTOM) as usize).min(bins).max(1);
        Ok(SpectrogramImage {
            width,
            height,
            channels,
            bins,
            cols,
            rows,
            total,
            per_col: 1,
            frames: 0,
            grid: vec![f32::NEG_INFINITY; channels * cols * rows],
        })
    }

    /// Adds frames `first .. first + count` (`count × channels × bins` dB
    /// values, frame-major), in order.
    pub fn add(&mut self, first: u64, count: usize, db: &[f32]) {
        let (bins, rows, cols) = (self.bins, self.rows, self.cols);
        for (j, frame) in db
            .chunks_exact(self.channels * bins)
            .take(count)
            .enumerate()
        {
            let k = first + j as u64;
            let (c0, c1) = match self.total {
                Some(total) => {
                    let total = total.max(1);
                    let c0 = (k * cols as u64 / total) as usize;
                    let c1 = ((k + 1) * cols as u64).div_ceil(total) as usize;
                    (c0.min(cols - 1), c1.clamp(c0 + 1, cols))
                }
                None => {
                    while k / self.per_col >= cols as u64 {
                        self.merge_columns();
                    }
                    let c = (k / self.per_col) as usize;
                    (c, c + 1)
                }
            };
            for (ch, spectrum) in frame.chunks_exact(bins).enumerate() {
                let panel = &mut self.grid[ch * cols * rows..(ch + 1) * cols * rows];
                for (b, &v) in spectrum.iter().enumerate() {
                    let r = b * rows / bins;
                    for c in c0..c1 {
                        let cell = &mut panel[c * rows + r];
                        if v > *cell {
                            *cell = v;
                        }
                    }
                }
            }
            self.frames = self.frames.max(k + 1);
        }
    }

    /// Halves the time resolution of a stream of unknown length.
    fn merge_columns(&mut self) {
        let (cols, rows) = (self.cols, self.rows);
        for panel in self.grid.chunks_exact_mut(cols * rows) {
            for c in 0..cols {
                for r in 0..rows {
                    let (a, b) = (2 * c, 2 * c + 1);
                    let v = [a, b]
                        .iter()
                        .filter(|&&x| x < cols)
                        .map(|&x| panel[x * rows + r])
                        .fold(f32::NEG_INFINITY, f32::max);
                    panel[c * rows + r] = v;
                }
            }
            // The upper half was merged into the lower: clear it.
            for c in cols.div_ceil(2)..cols {
                panel[c * rows..(c + 1) * rows].fill(f32::NEG_INFINITY);
            }
        }
        self.per_col *= 2;
    }

    /// Grid columns that hold frames.
    fn used_cols(&self) -> usize {
        match self.total {
            Some(_) => self.cols,
            None => (self.frames.div_ceil(self.per_col) as usize).clamp(1, self.cols),
        }
    }

    /// Draws the image to `path` (PNG): one panel per channel, time and
    /// frequency axes (s and Hz with a sample rate), a colour bar over the
    /// top `db_range` dB.
    ///
    /// # Errors
    /// [`Error::Open`]/[`Error::Io`] for the file, [`Error::Runtime`] when
    /// drawing fails.
    pub fn write_png(
        &self,
        path: &Path,
        axes: SpectrogramAxes,
        db_range: f64,
        title: &str,
    ) -> Result<()> {
        register_font();
        let (w, h) = (self.width, self.height);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        let hi = self
            .grid
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f32::NEG_INFINITY, f32::max);
        let hi = if hi.is_finite() { f64::from(hi) } else { 0.0 };
        let lo = hi - db_range;
        let fs = axes.sample_rate.unwrap_or(1.0);
        let (f_lo, f_hi) = axes.frequencies;
        // A single bin still gets an axis of some height.
        let f_hi = if f_hi > f_lo { f_hi } else { f_lo + fs / 2.0 };
        let fmag = f_lo.abs().max(f_hi.abs());
        let (tu, (funit, per_unit)) = match (axes.sample_rate, axes.start_time) {
            (Some(_), Some(t)) => (format!("time (UTC, from {t})"), frequency_unit(fmag)),
            (Some(_), None) => ("time (s)".to_owned(), frequency_unit(fmag)),
            _ => ("time (samples)".to_owned(), ("cycles/sample", 1.0)),
        };
        let fu = format!("frequency ({funit})");
        // Frame k is centred at (k hop + nfft/2) / fs; the image spans the
        // centres, half a hop either side.
        let frames = self.frames.max(1) as f64;
        let t0 = (axes.nfft as f64 / 2.0 - axes.hop as f64 / 2.0) / fs;
        let t1 = t0 + frames * axes.hop as f64 / fs;
        let utc = axes.start_time.filter(|_| axes.sample_rate.is_some());
        let time_label = |v: &f64| match utc {
            Some(start) => utc_tick(start, *v, t1 - t0),
            None => tick_label(v),
        };
        let used = self.used_cols();
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            let (main, bar) = root.split_horizontally(w - RIGHT + 20);
            let panels = main.split_evenly((self.channels, 1));
            for (ch, panel) in panels.iter().enumerate() {
                let caption = match axes.channel_names.get(ch) {
                    Some(name) => format!("{title} — {name}"),
                    None if self.channels > 1 => format!("{title} — channel {ch}"),
                    None => title.to_string(),
                };
                let mut chart = ChartBuilder::on(panel)
                    .margin(8)
                    .caption(caption, ("sans-serif", 18))
                    .x_label_area_size(BOTTOM - 10)
                    .y_label_area_size(LEFT - 10)
                    .build_cartesian_2d(t0..t1, f_lo / per_unit..f_hi / per_unit)
                    .map_err(draw_err)?;
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_desc(&tu)
                    .y_desc(&fu)
                    .x_label_formatter(&time_label)
                    .y_label_formatter(&tick_label)
                    .label_style(("sans-serif", 13))
                    .axis_desc_style(("sans-serif", 14))
                    .draw()
                    .map_err(draw_err)?;
                let (xr, yr) = chart.plotting_area().get_pixel_range();
                let (pw, ph) = ((xr.end - xr.start).max(1), (yr.end - yr.start).max(1));
                let grid = &self.grid[ch * self.cols * self.rows..(ch + 1) * self.cols * self.rows];
                for py in yr.clone() {
                    let r =
                        ((yr.end - 1 - py) as usize * self.rows / ph as usize).min(self.rows - 1);
                    for px in xr.clone() {
                        let c = ((px - xr.start) as usize * used / pw as usize).min(used - 1);
                        let v = f64::from(grid[c * self.rows + r]);
                        let color = if v.is_finite() {
                            viridis((v - lo) / (hi - lo))
                        } else {
                            viridis(0.0)
                        };
                        root.draw_pixel((px, py), &color).map_err(draw_err)?;
                    }
                }
            }
            let mut cb = ChartBuilder::on(&bar)
                .margin_top(TOP)
                .margin_bottom(BOTTOM)
                .margin_right(10)
                .right_y_label_area_size(60)
                .build_cartesian_2d(0.0..1.0, lo..hi)
                .map_err(draw_err)?;
            cb.configure_mesh()
                .disable_mesh()
                .disable_x_axis()
                .y_desc("power density (dB)")
                .y_label_formatter(&tick_label)
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 14))
                .draw()
                .map_err(draw_err)?;
            let (xr, yr) = cb.plotting_area().get_pixel_range();
            let ph = (yr.end - yr.start).max(1);
            for py in yr.clone() {
                let color = viridis(f64::from(yr.end - 1 - py) / f64::from((ph - 1).max(1)));
                for px in xr.clone() {
                    root.draw_pixel((px, py), &color).map_err(draw_err)?;
                }
            }
            root.present().map_err(draw_err)?;
        }
        write_rgb_png(path, w, h, &buf)
    }
}

/// How the PSD figure shows power on its y axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PsdScale {
    /// `10·log10` of the values (dB re 1 unit²/Hz for a density), on a
    /// linear axis.
    #[default]
    Db,
    /// The values themselves (units²/Hz), on a logarithmic axis.
    Log,
}

/// What the PSD figure shows, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct PsdPlot {
    /// Width and height in pixels (at least 200 × 150).
    pub size: (u32, u32),
    /// The caption.
    pub title: String,
    /// Whether frequencies are in Hz (else cycles/sample).
    pub sample_rate_known: bool,
    /// Whether the values are a density (per Hz) rather than a power
    /// spectrum.
    pub density: bool,
    /// The y axis.
    pub scale: PsdScale,
}

/// How far below the highest value the PSD figure's y axis reaches at
/// most, in dB: enough for any float data (f64 spans ~600 dB of power, f32
/// data ~150 dB of dynamic range), so no real value is cut, while a zero
/// (a detrended DC bin, −∞ dB) is drawn at this floor instead of stretching
/// the axis without end.
pub const DB_FLOOR_BELOW_MAX: f64 = 300.0;

/// Space above and below the data on the PSD's y axis, as a fraction of
/// the data's span in dB (at least [`MIN_MARGIN_DB`]), so that the highest
/// and lowest values do not sit on the frame.
const MARGIN_FRACTION: f64 = 0.05;

/// The least margin, in dB: a flat spectrum still gets a visible axis.
const MIN_MARGIN_DB: f64 = 1.0;

/// `10·log10(v)` in dB, no lower than `floor` (a zero or a negative value,
/// or NaN, is drawn at the floor).
pub fn power_db(v: f64, floor: f64) -> f64 {
    let db = 10.0 * v.log10();
    if db.is_nan() || db < floor { floor } else { db }
}

/// The y range in dB that shows every channel whole: from the lowest value
/// (no lower than [`DB_FLOOR_BELOW_MAX`] below the highest) to the highest,
/// with a margin. Infinite and NaN values are ignored; with no finite
/// positive value the range is the floor below 0 dB.
pub fn psd_db_range(values: &[Vec<f64>]) -> (f64, f64) {
    let db = || {
        values
            .iter()
            .flatten()
            .filter(|v| v.is_finite() && **v > 0.0)
            .map(|&v| 10.0 * v.log10())
    };
    let hi = db().fold(f64::NEG_INFINITY, f64::max);
    let hi = if hi.is_finite() { hi } else { 0.0 };
    let floor = hi - DB_FLOOR_BELOW_MAX;
    // A zero, a negative value or NaN is drawn at the floor.
    let any_at_floor = values
        .iter()
        .flatten()
        .any(|v| !v.is_nan() && !v.is_infinite() && *v <= 0.0);
    let lo = if any_at_floor {
        floor
    } else {
        db().fold(hi, f64::min).max(floor)
    };
    let margin = ((hi - lo) * MARGIN_FRACTION).max(MIN_MARGIN_DB);
    (lo - margin, hi + margin)
}

/// An SI unit for an axis of frequencies up to `max_hz`: its name and its
/// size in Hz (Hz below 1 kHz, then kHz, MHz, GHz), so that ticks read
/// `24 kHz` rather than `24000`.
pub fn frequency_unit(max_hz: f64) -> (&'static str, f64) {
    let m = max_hz.abs();
    if m >= 1e9 {
        ("GHz", 1e9)
    } else if m >= 1e6 {
        ("MHz", 1e6)
    } else if m >= 1e3 {
        ("kHz", 1e3)
    } else {
        ("Hz", 1.0)
    }
}

/// Line colours of the PSD figure, one per channel in turn: matplotlib's
/// "tab10", chosen to stay apart for colour-blind readers too.
pub const CHANNEL_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Dash patterns of the PSD figure, one per channel in turn, as (dash,
/// gap) in pixels; `None` is a solid line. With the colours they make 20
/// distinct styles, and a line drawn over an identical one leaves the one
/// below visible in its gaps.
const CHANNEL_DASHES: [Option<(u32, u32)>; 4] = [None, Some((10, 6)), Some((3, 4)), Some((18, 6))];

/// Width of the PSD lines in pixels.
const LINE_WIDTH: u32 = 2;

/// The colour and dash pattern of channel `c`'s line.
pub fn channel_style(c: usize) -> (RGBColor, Option<(u32, u32)>) {
    (
        CHANNEL_COLOURS[c % CHANNEL_COLOURS.len()],
        CHANNEL_DASHES[c % CHANNEL_DASHES.len()],
    )
}

/// Largest picture side, in pixels: 16384 × 16384 RGB is 768 MiB, already
/// far past any screen; a larger request (`--width 100000`) is refused
/// before its buffer is allocated.
pub const MAX_PNG_SIDE: u32 = 16_384;

/// Checks a picture's size against [`MAX_PNG_SIDE`].
///
/// # Errors
/// [`Error::Usage`] naming `--width`/`--height` and the limit.
pub fn check_size(width: u32, height: u32) -> Result<()> {
    if width > MAX_PNG_SIDE || height > MAX_PNG_SIDE {
        return Err(Error::usage(format!(
            "--width {width} --height {height}: a picture side is at most {MAX_PNG_SIDE} pixels"
        )));
    }
    Ok(())
}

/// Draws a PSD (one line per channel, each its own colour and dash, with a
/// legend `ch0`, `ch1`, … when there are several) against frequency (Hz,
/// kHz, MHz or GHz from the largest magnitude; cycles/sample without a
/// sample rate), from the first to the last of `frequencies` (increasing:
/// `0 .. fs/2` one-sided, `−fs/2 .. fs/2` two-sided, offset by a centre
/// frequency), to `path` (PNG). The y axis shows every value: in dB by
/// default ([`PsdScale`]), from the lowest to the highest of all channels
/// ([`psd_db_range`]).
///
/// # Errors
/// As [`SpectrogramImage::write_png`]; [`Error::Usage`] for a size too
/// small or too large ([`MAX_PNG_SIDE`]).
pub fn psd_png(
    path: &Path,
    frequencies: &[f64],
    values: &[Vec<f64>],
    plot: &PsdPlot,
) -> Result<()> {
    register_font();
    let (w, h) = plot.size;
    check_size(w, h)?;
    if w < 200 || h < 150 {
        return Err(Error::usage(format!(
            "--width {w} --height {h}: too small for a plot with axes (at least 200×150)"
        )));
    }
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let (lo_db, hi_db) = psd_db_range(values);
    let floor = lo_db;
    let f_lo = frequencies.first().copied().unwrap_or(0.0);
    let f_hi = frequencies.last().copied().unwrap_or(1.0);
    // A single bin still gets an axis of some width.
    let f_hi = if f_hi > f_lo {
        f_hi
    } else {
        f_lo + f_lo.abs().max(1.0)
    };
    let (unit, per_unit) = if plot.sample_rate_known {
        frequency_unit(f_lo.abs().max(f_hi.abs()))
    } else {
        ("cycles/sample", 1.0)
    };
    let fu = format!("frequency ({unit})");
    let per = if plot.sample_rate_known {
        "Hz"
    } else {
        "(cycle/sample)"
    };
    let yu = match (plot.scale, plot.density) {
        (PsdScale::Db, true) => format!("PSD (dB re 1 unit²/{per})"),
        (PsdScale::Db, false) => "power spectrum (dB re 1 unit²)".to_owned(),
        (PsdScale::Log, true) => format!("PSD (units²/{per})"),
        (PsdScale::Log, false) => "power spectrum (units²)".to_owned(),
    };
    let xs: Vec<f64> = frequencies.iter().map(|f| f / per_unit).collect();
    let x_range = (f_lo / per_unit)..(f_hi / per_unit);
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let builder = |root| {
            let mut b = ChartBuilder::on(root);
            b.margin(12)
                .caption(&plot.title, ("sans-serif", 18))
                .x_label_area_size(45)
                .y_label_area_size(85);
            b
        };
        match plot.scale {
            PsdScale::Db => {
                let mut chart = builder(&root)
                    .build_cartesian_2d(x_range, lo_db..hi_db)
                    .map_err(draw_err)?;
                chart
                    .configure_mesh()
                    .x_desc(fu)
                    .y_desc(yu)
                    .x_label_formatter(&tick_label)
                    .y_label_formatter(&tick_label)
                    .label_style(("sans-serif", 13))
                    .axis_desc_style(("sans-serif", 14))
                    .draw()
                    .map_err(draw_err)?;
                for (c, series) in values.iter().enumerate() {
                    let points = xs
                        .iter()
                        .zip(series)
                        .map(|(&f, &v)| (f, power_db(v, floor).min(hi_db)))
                        .collect();
                    draw_channel(&mut chart, c, points)?;
                }
                draw_legend(&mut chart, values.len())?;
            }
            PsdScale::Log => {
                let (lo, hi) = (10f64.powf(lo_db / 10.0), 10f64.powf(hi_db / 10.0));
                let mut chart = builder(&root)
                    .build_cartesian_2d(x_range, (lo..hi).log_scale())
                    .map_err(draw_err)?;
                chart
                    .configure_mesh()
                    .x_desc(fu)
                    .y_desc(yu)
                    .x_label_formatter(&tick_label)
                    .y_label_formatter(&|v| format!("{v:.0e}"))
                    .label_style(("sans-serif", 13))
                    .axis_desc_style(("sans-serif", 14))
                    .draw()
                    .map_err(draw_err)?;
                for (c, series) in values.iter().enumerate() {
                    let points = xs
                        .iter()
                        .zip(series)
                        .map(|(&f, &v)| {
                            let v = if v.is_nan() { lo } else { v };
                            (f, v.clamp(lo, hi))
                        })
                        .collect();
                    draw_channel(&mut chart, c, points)?;
                }
                draw_legend(&mut chart, values.len())?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    write_rgb_png(path, w, h, &buf)
}

/// Draws channel `c`'s line in its style ([`channel_style`]) and registers
/// its legend entry.
fn draw_channel<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    c: usize,
    points: Vec<(f64, f64)>,
) -> Result<()>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let (colour, dash) = channel_style(c);
    let style = colour.stroke_width(LINE_WIDTH);
    let anno = match dash {
        None => chart.draw_series(LineSeries::new(points, style)),
        Some((on, off)) => chart.draw_series(DashedLineSeries::new(points, on, off, style)),
    }
    .map_err(draw_err)?;
    anno.label(format!("ch{c}")).legend(move |(x, y)| {
        let key: Vec<(i32, i32)> = vec![(x, y), (x + 30, y)];
        match dash {
            None => PathElement::new(key, style).into_dyn(),
            Some((on, off)) => DashedPathElement::new(key, on, off, style).into_dyn(),
        }
    });
    Ok(())
}

/// The legend, in the upper right corner, when there are several channels.
fn draw_legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    channels: usize,
) -> Result<()> {
    if channels > 1 {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(draw_err)?;
    }
    Ok(())
}

fn draw_err(e: impl std::fmt::Display) -> Error {
    Error::Runtime {
        msg: format!("cannot draw the figure: {e}"),
    }
}

/// Encodes `rgb` (`w × h × 3` bytes) as a PNG at `path`, atomically.
fn write_rgb_png(path: &Path, w: u32, h: u32, rgb: &[u8]) -> Result<()> {
    let mut out = BufWriter::new(AtomicFile::create(path)?);
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder
            .write_header()
            .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
        writer
            .write_image_data(rgb)
            .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    }
    out.flush().map_err(|e| Error::io(path, e))?;
    let file = out
        .into_inner()
        .map_err(|e| Error::io(path, e.into_error()))?;
    file.commit()
}

/// A time-axis tick `seconds` after `start`, in UTC: `HH:MM:SS` on a
/// plot `span` seconds wide (more than a minute), with as many decimals as
/// a narrower one needs; the date when the plot spans days.
fn utc_tick(start: crate::time::UtcTime, seconds: f64, span: f64) -> String {
    let Some(t) = start.plus_seconds(seconds) else {
        return tick_label(&seconds);
    };
    // "2024-03-01T12:00:07.250000Z": date, time, microseconds.
    let text = t.to_string();
    let (date, rest) = text.split_once('T').unwrap_or((&text, ""));
    let hms = &rest[..8.min(rest.len())];
    let decimals = if span > 60.0 {
        0
    } else if span > 1.0 {
        2
    } else {
        6
    };
    let frac = rest
        .get(8..9 + decimals)
        .filter(|_| decimals > 0)
        .unwrap_or("");
    if span > 86_400.0 {
        format!("{date} {hms}")
    } else {
        format!("{hms}{frac}")
    }
}

/// An axis tick as a person writes it: `500`, not `500.0`; at most six
/// decimals, trailing zeros dropped.
fn tick_label(v: &f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_ticks_show_what_the_span_needs() {
        let t0 = crate::time::UtcTime::parse("2024-03-01T23:59:58.5Z").unwrap();
        assert_eq!(utc_tick(t0, 2.25, 3600.0), "00:00:00");
        assert_eq!(utc_tick(t0, 2.25, 10.0), "00:00:00.75");
        assert_eq!(utc_tick(t0, 0.000123, 0.5), "23:59:58.500123");
        assert_eq!(utc_tick(t0, 2.0, 3.0 * 86_400.0), "2024-03-02 00:00:00");
    }

    #[test]
    fn frequency_units_follow_si_prefixes() {
        assert_eq!(frequency_unit(999.0), ("Hz", 1.0));
        assert_eq!(frequency_unit(1000.0), ("kHz", 1e3));
        assert_eq!(frequency_unit(30e3), ("kHz", 1e3));
        assert_eq!(frequency_unit(999_999.0), ("kHz", 1e3));
        assert_eq!(frequency_unit(1e6), ("MHz", 1e6));
        assert_eq!(frequency_unit(2.4e9), ("GHz", 1e9));
        assert_eq!(frequency_unit(0.5), ("Hz", 1.0));
    }

    #[test]
    fn db_conversion_floors_zeros_and_negatives() {
        assert_eq!(power_db(1.0, -300.0), 0.0);
        assert!((power_db(1e-3, -300.0) + 30.0).abs() < 1e-12);
        assert_eq!(power_db(0.0, -120.0), -120.0);
        assert_eq!(power_db(-1.0, -120.0), -120.0);
        assert_eq!(power_db(f64::NAN, -120.0), -120.0);
        assert_eq!(power_db(1e-20, -120.0), -120.0);
    }

    #[test]
    fn db_range_spans_every_channel_with_a_margin() {
        // 3e-2 .. 2e-6: -15.2 .. -57.0 dB, margin 5 % of 41.8 dB.
        let (lo, hi) = psd_db_range(&[vec![3e-2, 1e-3], vec![2e-6, 1e-4]]);
        let (top, bottom) = (10.0 * 3e-2f64.log10(), 10.0 * 2e-6f64.log10());
        let margin = (top - bottom) * MARGIN_FRACTION;
        assert!((hi - (top + margin)).abs() < 1e-9, "{hi}");
        assert!((lo - (bottom - margin)).abs() < 1e-9, "{lo}");
        // A zero goes to the floor, 300 dB below the top, not to -inf.
        let (lo, hi) = psd_db_range(&[vec![1.0, 0.0]]);
        let margin = DB_FLOOR_BELOW_MAX * MARGIN_FRACTION;
        assert_eq!((lo, hi), (-DB_FLOOR_BELOW_MAX - margin, margin));
        // A value further down than the floor is cut there.
        let (lo, _) = psd_db_range(&[vec![1.0, 1e-40]]);
        assert_eq!(lo, -DB_FLOOR_BELOW_MAX - margin);
        // A flat line and an all-zero spectrum still give an axis.
        assert_eq!(psd_db_range(&[vec![1.0, 1.0]]), (-1.0, 1.0));
        let (lo, hi) = psd_db_range(&[vec![0.0; 4]]);
        assert!(lo < hi && hi.is_finite() && lo.is_finite());
    }
}
