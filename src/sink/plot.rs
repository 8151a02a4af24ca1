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
#[derive(Debug, Clone, Copy)]
pub struct SpectrogramAxes {
    /// Samples per second; `None`: axes in samples and cycles/sample.
    pub sample_rate: Option<f64>,
    /// Samples between frames.
    pub hop: usize,
    /// Samples per frame.
    pub nfft: usize,
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
        let (tu, fu) = if axes.sample_rate.is_some() {
            ("time (s)", "frequency (Hz)")
        } else {
            ("time (samples)", "frequency (cycles/sample)")
        };
        // Frame k is centred at (k hop + nfft/2) / fs; the image spans the
        // centres, half a hop either side.
        let frames = self.frames.max(1) as f64;
        let t0 = (axes.nfft as f64 / 2.0 - axes.hop as f64 / 2.0) / fs;
        let t1 = t0 + frames * axes.hop as f64 / fs;
        let fmax = fs / 2.0 * (2 * (self.bins - 1)).max(1) as f64 / axes.nfft as f64;
        let used = self.used_cols();
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            let (main, bar) = root.split_horizontally(w - RIGHT + 20);
            let panels = main.split_evenly((self.channels, 1));
            for (ch, panel) in panels.iter().enumerate() {
                let caption = if self.channels > 1 {
                    format!("{title} — channel {ch}")
                } else {
                    title.to_string()
                };
                let mut chart = ChartBuilder::on(panel)
                    .margin(8)
                    .caption(caption, ("sans-serif", 18))
                    .x_label_area_size(BOTTOM - 10)
                    .y_label_area_size(LEFT - 10)
                    .build_cartesian_2d(t0..t1, 0.0..fmax)
                    .map_err(draw_err)?;
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_desc(tu)
                    .y_desc(fu)
                    .x_label_formatter(&tick_label)
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

/// Draws a PSD (one line per channel) against frequency with a log-scale
/// y axis, to `path` (PNG).
///
/// # Errors
/// As [`SpectrogramImage::write_png`]; [`Error::Usage`] for a size too small.
pub fn psd_png(
    path: &Path,
    frequencies: &[f64],
    values: &[Vec<f64>],
    sample_rate_known: bool,
    density: bool,
    size: (u32, u32),
    title: &str,
) -> Result<()> {
    register_font();
    let (w, h) = size;
    if w < 200 || h < 150 {
        return Err(Error::usage(format!(
            "--width {w} --height {h}: too small for a plot with axes (at least 200×150)"
        )));
    }
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let hi = values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let hi = if hi > 0.0 { hi } else { 1.0 };
    // Twelve decades below the peak at most: a detrended DC bin is ~0.
    let min_pos = values
        .iter()
        .flatten()
        .copied()
        .filter(|&v| v > 0.0)
        .fold(hi, f64::min);
    let lo = min_pos.max(hi * 1e-12) * 0.5;
    let hi = hi * 2.0;
    let fmax = frequencies
        .last()
        .copied()
        .unwrap_or(1.0)
        .max(f64::MIN_POSITIVE);
    let (fu, yu) = match (sample_rate_known, density) {
        (true, true) => ("frequency (Hz)", "PSD (units²/Hz)"),
        (true, false) => ("frequency (Hz)", "power spectrum (units²)"),
        (false, true) => ("frequency (cycles/sample)", "PSD (units²/(cycle/sample))"),
        (false, false) => ("frequency (cycles/sample)", "power spectrum (units²)"),
    };
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .caption(title, ("sans-serif", 18))
            .x_label_area_size(45)
            .y_label_area_size(85)
            .build_cartesian_2d(0.0..fmax, (lo..hi).log_scale())
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
            let color = Palette99::pick(c).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    frequencies
                        .iter()
                        .zip(series)
                        .map(|(&f, &v)| (f, v.clamp(lo, hi))),
                    color.stroke_width(1),
                ))
                .map_err(draw_err)?
                .label(format!("channel {c}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        if values.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    write_rgb_png(path, w, h, &buf)
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
