//! The windows of windowed-sinc designs, as `scipy.signal.get_window(...,
//! fftbins=False)` gives them.
//!
//! Why a module of its own: the designed filters (`--lowpass`, ...) and the
//! decimator's anti-aliasing filter (`--decimate`, scipy's `resample_poly`)
//! are both `scipy.signal.firwin` designs, with a Hamming or a Kaiser
//! window; the windows, and the Bessel function the Kaiser window needs,
//! live here once.

/// `scipy.signal.windows.hamming(n, sym=True)`: `0.54 − 0.46·cos(2πi/(n−1))`
/// (one tap: `[1]`).
pub fn hamming(n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    (0..n)
        .map(|i| 0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / (n - 1) as f64).cos())
        .collect()
}

/// `scipy.signal.windows.kaiser(n, beta, sym=True)`:
/// `I0(β·√(1 − ((i − α)/α)²)) / I0(β)` with `α = (n − 1)/2`, in scipy's
/// order of operations (one tap: `[1]`).
///
/// `β` up to a few hundred (`I0` overflows `f64` near 713): a design's β
/// is [`kaiser_beta`] of at most `MAX_ATTENUATION_DB`
/// ([`crate::filter::MAX_ATTENUATION_DB`]), about 32.
pub fn kaiser(n: usize, beta: f64) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    let alpha = (n - 1) as f64 / 2.0;
    let i0_beta = bessel_i0(beta);
    (0..n)
        .map(|i| {
            let r = (i as f64 - alpha) / alpha;
            bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / i0_beta
        })
        .collect()
}

/// `scipy.signal.kaiser_beta(a)`: the Kaiser window's β for a stop band
/// `a` dB down (Oppenheim & Schafer eq. 7.62): `0.1102(a − 8.7)` above
/// 50 dB, `0.5842(a − 21)^0.4 + 0.07886(a − 21)` above 21 dB, else 0 (a
/// rectangular window).
pub fn kaiser_beta(a: f64) -> f64 {
    if a > 50.0 {
        0.1102 * (a - 8.7)
    } else if a > 21.0 {
        0.5842 * (a - 21.0).powf(0.4) + 0.07886 * (a - 21.0)
    } else {
        0.0
    }
}

/// The modified Bessel function of the first kind, order 0, by its power
/// series `Σ ((x/2)^k / k!)²`: every term is positive, so the sum is
/// accurate to the last bits; for the arguments a Kaiser window takes
/// (β ≤ 33 for the designs here, 5 for the decimator) it converges in
/// under 100 terms.
fn bessel_i0(x: f64) -> f64 {
    let q = x * x / 4.0;
    let (mut sum, mut term) = (1.0f64, 1.0f64);
    let mut k = 1.0f64;
    while term > sum * 1e-17 {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f64 against scipy's printed f64 values: the same formulas, within a
    /// few ulps of values up to 1 (scipy's `i0` is Cephes' Chebyshev
    /// expansion, ours the power series).
    const ULPS: f64 = 1e-15;

    #[test]
    fn windows_match_scipy() {
        // scipy.signal.windows.kaiser(7, 5.65326) (1.17.1)
        let want = [
            0.020388000239333876,
            0.2773527130048801,
            0.7466517788883148,
            1.0,
            0.7466517788883148,
            0.2773527130048801,
            0.020388000239333876,
        ];
        for (i, (g, w)) in kaiser(7, 5.65326).iter().zip(want).enumerate() {
            assert!((g - w).abs() < ULPS, "kaiser tap {i}: {g} vs {w}");
        }
        // scipy.signal.windows.hamming(5)
        let want = [0.08, 0.54, 1.0, 0.54, 0.08];
        for (i, (g, w)) in hamming(5).iter().zip(want).enumerate() {
            assert!((g - w).abs() < ULPS, "hamming tap {i}: {g} vs {w}");
        }
        assert_eq!(kaiser(1, 8.0), [1.0]);
        assert_eq!(hamming(1), [1.0]);
    }

    #[test]
    fn kaiser_beta_matches_scipy() {
        // scipy.signal.kaiser_beta(a) for a = 60, 40, 21, 10, 65, 300
        for (a, want) in [
            (60.0, 5.65326),
            (40.0, 3.3953210522614574),
            (21.0, 0.0),
            (10.0, 0.0),
            (65.0, 6.20426),
            (300.0, 32.10126),
        ] {
            let got = kaiser_beta(a);
            assert!(
                (got - want).abs() < ULPS * want.max(1.0),
                "kaiser_beta({a}) = {got} vs {want}"
            );
        }
    }
}
