//! Independent references for the noise tests: numpy's median and the MAD
//! by a full sort in `f64`, not the library's selection.

#![allow(dead_code, reason = "each test file uses a different subset")]

/// `Φ⁻¹(3/4)`: a normal distribution's MAD per unit of standard deviation
/// (SpikeInterface's constant; `scipy.stats.norm.ppf(0.75)`).
pub const MAD_SCALE: f64 = 0.674_489_750_196_081_7;

/// `np.median` by a full sort in `f64`: the middle value, or the mean of
/// the two middle ones for an even count.
pub fn median_by_sort(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `median(|v − median(v)|) / MAD_SCALE` of the finite values, in `f64`.
pub fn mad_by_sort(values: &[f32]) -> f64 {
    let v: Vec<f64> = values
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
        .collect();
    let m = median_by_sort(v.clone());
    median_by_sort(v.iter().map(|x| (x - m).abs()).collect()) / MAD_SCALE
}
