//! Sample quantiles (numpy's default `'linear'` method, Hyndman & Fan type 7) and summary
//! statistics (count, mean, population standard deviation, min, max).

/// The `q`-quantile (`0 ≤ q ≤ 1`) of an ascending sample, numpy's default `'linear'`
/// definition: with `h = (n − 1)·q`, the value `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`
/// (same interpolation arithmetic as numpy, so results agree to the last bit or two).
///
/// `None` for an empty slice or a `q` that is NaN or outside `[0, 1]`. The slice must be
/// sorted ascending and free of NaN (see [`super::sorted_finite`]); otherwise the answer is
/// meaningless but there is no panic.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    if virtual_index >= (n - 1) as f64 {
        return Some(sorted[n - 1]);
    }
    let prev = virtual_index.floor();
    let lo = prev as usize;
    let gamma = virtual_index - prev;
    let (a, b) = (sorted[lo], sorted[lo + 1]);
    let diff = b - a;
    // numpy's _lerp: a + diff·t, or b − diff·(1 − t) when t ≥ 0.5 (monotone, exact at ends).
    Some(if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    })
}

/// Several quantiles of an ascending sample; `None` when the sample is empty or any `q` is
/// outside `[0, 1]`.
pub fn quantiles_sorted(sorted: &[f64], qs: &[f64]) -> Option<Vec<f64>> {
    qs.iter().map(|&q| quantile_sorted(sorted, q)).collect()
}

/// Quantiles of an unsorted sample (copies, drops non-finite values, sorts: `O(n log n)`).
/// `None` when no finite value remains or any `q` is outside `[0, 1]`.
///
/// For latency windows: `quantiles(&latencies, &[0.5, 0.95, 0.99])`.
pub fn quantiles(values: &[f64], qs: &[f64]) -> Option<Vec<f64>> {
    let sorted = super::sorted_finite(values);
    quantiles_sorted(&sorted, qs)
}

/// Summary statistics of a sample, over its finite values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of finite values summarised.
    pub count: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation (`ddof = 0`, numpy's `np.std` default): the square root
    /// of the mean squared deviation from the mean.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Count, mean, population standard deviation (`ddof = 0`), min and max of the finite
/// values of `values` (NaN and `±inf` are skipped; callers count them as missing /
/// out-of-range). `None` when no finite value remains.
///
/// Two passes with compensated (Neumaier) summation, so large offsets (e.g. timestamps)
/// do not lose the variance.
pub fn summary(values: &[f64]) -> Option<Summary> {
    let mut count = 0_usize;
    let mut sum = NeumaierSum::default();
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    for &v in values.iter().filter(|v| v.is_finite()) {
        count += 1;
        sum.add(v);
        min = min.min(v);
        max = max.max(v);
    }
    if count == 0 {
        return None;
    }
    let n = count as f64;
    let mut mean = sum.total() / n;
    if !mean.is_finite() {
        // Overflow of the running sum (values near f64::MAX): average scaled values instead.
        let mut scaled = NeumaierSum::default();
        for &v in values.iter().filter(|v| v.is_finite()) {
            scaled.add(v / n);
        }
        mean = scaled.total();
    }
    let mut ss = NeumaierSum::default();
    for &v in values.iter().filter(|v| v.is_finite()) {
        let d = v - mean;
        ss.add(d * d);
    }
    let std = (ss.total() / n).sqrt();
    Some(Summary {
        count,
        mean,
        std,
        min,
        max,
    })
}

/// Neumaier's compensated summation (an improved Kahan–Babuška sum).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NeumaierSum {
    sum: f64,
    compensation: f64,
}

impl NeumaierSum {
    /// Adds one term.
    pub(crate) fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// The compensated total.
    pub(crate) fn total(&self) -> f64 {
        self.sum + self.compensation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_edge_cases() {
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[1.0], 1.5), None);
        assert_eq!(quantile_sorted(&[1.0], f64::NAN), None);
        assert_eq!(quantile_sorted(&[7.0], 0.99), Some(7.0));
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 1.0), Some(4.0));
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.5), Some(2.5));
    }

    #[test]
    fn quantiles_skip_non_finite() {
        let v = [f64::NAN, 3.0, 1.0, f64::INFINITY, 2.0];
        assert_eq!(quantiles(&v, &[0.5]), Some(vec![2.0]));
        assert_eq!(quantiles(&[f64::NAN], &[0.5]), None);
    }

    #[test]
    fn summary_of_empty_or_all_nan_is_none() {
        assert_eq!(summary(&[]), None);
        assert_eq!(summary(&[f64::NAN, f64::NEG_INFINITY]), None);
    }

    #[test]
    fn summary_is_population_std_and_survives_large_offsets() {
        let s = summary(&[1e12 + 1.0, 1e12 + 2.0, 1e12 + 3.0, 1e12 + 4.0]).unwrap();
        assert_eq!(s.count, 4);
        assert!((s.std - 1.25f64.sqrt()).abs() < 1e-9, "{}", s.std);
        assert_eq!(s.min, 1e12 + 1.0);
        assert_eq!(s.max, 1e12 + 4.0);
        let big = summary(&[f64::MAX, f64::MAX]).unwrap();
        assert_eq!(big.mean, f64::MAX);
        assert_eq!(big.std, 0.0);
    }
}
