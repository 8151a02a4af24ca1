//! Window functions, as `scipy.signal.get_window(name, n, fftbins=True)`.
//!
//! Why periodic windows: spectral analysis (STFT, Welch) wants the window
//! whose `n + 1`-point symmetric version has its last point dropped, so that
//! the overlapped windows add up evenly; that is scipy's default for
//! `get_window` and what `scipy.signal.welch`/`spectrogram` use. The
//! coefficients are computed in `f64` and rounded once where an `f32` copy
//! is needed.

use std::f64::consts::PI;

/// The windows the spectral commands offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// Hann: `0.5 − 0.5 cos(2πk/n)` (scipy's default for welch).
    #[default]
    Hann,
    /// Hamming: `0.54 − 0.46 cos(2πk/n)`.
    Hamming,
    /// Blackman: `0.42 − 0.5 cos(2πk/n) + 0.08 cos(4πk/n)`.
    Blackman,
    /// Rectangular (scipy's `boxcar`): all ones.
    Rect,
}

impl Window {
    /// The window's name, as in options and reports.
    pub fn name(self) -> &'static str {
        match self {
            Window::Hann => "hann",
            Window::Hamming => "hamming",
            Window::Blackman => "blackman",
            Window::Rect => "rect",
        }
    }

    /// The `n` periodic coefficients (`fftbins=True`), in `f64`. For `n ==
    /// 1` every window is `[1.0]`, as in scipy.
    pub fn coefficients(self, n: usize) -> Vec<f64> {
        if n == 1 {
            return vec![1.0];
        }
        // General cosine window sum_j a_j (-1)^j cos(j x), x = -π + 2πk/n:
        // the same points scipy evaluates (n + 1 symmetric points, last
        // dropped), written as cosines of 2πjk/n.
        let a: &[f64] = match self {
            Window::Hann => &[0.5, 0.5],
            Window::Hamming => &[0.54, 0.46],
            Window::Blackman => &[0.42, 0.5, 0.08],
            Window::Rect => return vec![1.0; n],
        };
        (0..n)
            .map(|k| {
                a.iter()
                    .enumerate()
                    .map(|(j, &aj)| {
                        let sign = if j % 2 == 0 { 1.0 } else { -1.0 };
                        sign * aj * (2.0 * PI * (j * k) as f64 / n as f64).cos()
                    })
                    .sum()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scipy_values() {
        // scipy.signal.get_window('hann', 4) -> [0, 0.5, 1, 0.5]
        let w = Window::Hann.coefficients(4);
        for (a, b) in w.iter().zip([0.0, 0.5, 1.0, 0.5]) {
            assert!((a - b).abs() < 1e-15, "{w:?}");
        }
        // get_window('hamming', 4) -> [0.08, 0.54, 1, 0.54]
        let w = Window::Hamming.coefficients(4);
        for (a, b) in w.iter().zip([0.08, 0.54, 1.0, 0.54]) {
            assert!((a - b).abs() < 1e-15, "{w:?}");
        }
        // get_window('blackman', 4) -> [~0, 0.34, 1, 0.34]
        let w = Window::Blackman.coefficients(4);
        for (a, b) in w.iter().zip([0.0, 0.34, 1.0, 0.34]) {
            assert!((a - b).abs() < 1e-15, "{w:?}");
        }
        assert_eq!(Window::Rect.coefficients(3), vec![1.0; 3]);
        assert_eq!(Window::Hann.coefficients(1), vec![1.0]);
    }
}
