//! Mahalanobis distance with a Ledoit–Wolf shrunk covariance (the estimator of
//! `sklearn.covariance.LedoitWolf`, `assume_centered=False`), in plain Rust.
//!
//! For `n` rows of `p` columns centred on their mean (`X`), the empirical covariance is
//! `S = XᵀX / n`, `μ = tr(S) / p`, and the shrunk covariance `(1 − s)·S + s·μ·I` with
//! `s = min(β, δ) / δ`, `δ = ‖S − μI‖²_F / p`, `β = (Σᵢ ‖xᵢ‖⁴ / n − ‖S‖²_F) / (p·n)`.
//! Shrinkage keeps the matrix positive definite even with few rows or collinear columns,
//! which the plain covariance would not be.

/// A fitted Mahalanobis distance.
#[derive(Debug, Clone, PartialEq)]
pub struct Mahalanobis {
    /// Column means of the fitting rows.
    pub mean: Vec<f64>,
    /// The shrunk covariance, row-major `p × p`.
    pub covariance: Vec<f64>,
    /// Ledoit–Wolf shrinkage coefficient in [0, 1].
    pub shrinkage: f64,
    /// The precision matrix `Σ⁻¹`, row-major, column `j` solved from `L Lᵀ w = e_j` once at
    /// fit time (`L` the covariance's lower Cholesky factor, not kept): a row's `Σ⁻¹ d` is then one matrix-vector product whose rows are
    /// independent, instead of two substitutions whose every step waits for the previous
    /// one (about a tenth of the analysis thread's time, issue 13). sklearn scores with
    /// its precision matrix too.
    precision: Vec<f64>,
    p: usize,
}

/// Why a distance could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Fewer than two rows, or no columns.
    #[error("{rows} rows of {columns} columns: need at least 2 rows and 1 column")]
    TooFew {
        /// Rows given.
        rows: usize,
        /// Columns given.
        columns: usize,
    },
    /// A row's length differs from the first row's.
    #[error("row {row} has {len} values, expected {expected}")]
    Ragged {
        /// Row index.
        row: usize,
        /// Its length.
        len: usize,
        /// The first row's length.
        expected: usize,
    },
    /// A value is NaN or infinite.
    #[error("row {row} column {column} is not finite")]
    NotFinite {
        /// Row index.
        row: usize,
        /// Column index.
        column: usize,
    },
    /// Every column is constant: there is no spread to measure distances with.
    #[error("the covariance is singular (every column is constant)")]
    Singular,
}

impl Mahalanobis {
    /// Fits on `rows` (each of the same length `p`).
    pub fn fit(rows: &[Vec<f64>]) -> Result<Mahalanobis, FitError> {
        let n = rows.len();
        let p = rows.first().map(Vec::len).unwrap_or(0);
        if n < 2 || p == 0 {
            return Err(FitError::TooFew {
                rows: n,
                columns: p,
            });
        }
        let mut mean = vec![0.0; p];
        for (i, r) in rows.iter().enumerate() {
            if r.len() != p {
                return Err(FitError::Ragged {
                    row: i,
                    len: r.len(),
                    expected: p,
                });
            }
            for (j, v) in r.iter().enumerate() {
                if !v.is_finite() {
                    return Err(FitError::NotFinite { row: i, column: j });
                }
                mean[j] += v;
            }
        }
        let nf = n as f64;
        mean.iter_mut().for_each(|m| *m /= nf);
        let mut s = vec![0.0; p * p];
        let mut beta_sum = 0.0;
        let mut x = vec![0.0; p];
        for r in rows {
            let mut sq = 0.0;
            for j in 0..p {
                x[j] = r[j] - mean[j];
                sq += x[j] * x[j];
            }
            beta_sum += sq * sq;
            for a in 0..p {
                let xa = x[a];
                for b in 0..=a {
                    s[a * p + b] += xa * x[b];
                }
            }
        }
        for a in 0..p {
            for b in 0..=a {
                let v = s[a * p + b] / nf;
                s[a * p + b] = v;
                s[b * p + a] = v;
            }
        }
        let pf = p as f64;
        let trace: f64 = (0..p).map(|j| s[j * p + j]).sum();
        let mu = trace / pf;
        let frob2: f64 = s.iter().map(|v| v * v).sum();
        let delta = (frob2 - 2.0 * mu * trace + pf * mu * mu) / pf;
        let beta = ((beta_sum / nf - frob2) / (pf * nf)).min(delta);
        let shrinkage = if beta <= 0.0 || delta <= 0.0 {
            0.0
        } else {
            beta / delta
        };
        let mut cov = s;
        for a in 0..p {
            for b in 0..p {
                cov[a * p + b] *= 1.0 - shrinkage;
            }
            cov[a * p + a] += shrinkage * mu;
        }
        let chol = cholesky(&cov, p).ok_or(FitError::Singular)?;
        let chol_t = transposed(&chol, p);
        let mut precision = vec![0.0; p * p];
        let (mut e, mut w) = (vec![0.0; p], Vec::with_capacity(p));
        for j in 0..p {
            e.iter_mut().for_each(|v| *v = 0.0);
            e[j] = 1.0;
            solve_into(&chol, &chol_t, p, &e, &mut w);
            for (i, &wi) in w.iter().enumerate() {
                precision[i * p + j] = wi;
            }
        }
        Ok(Mahalanobis {
            mean,
            covariance: cov,
            shrinkage,
            precision,
            p,
        })
    }

    /// Number of columns.
    pub fn dim(&self) -> usize {
        self.p
    }

    /// Squared distance of `x` from the mean, and each column's share of it:
    /// `cᵢ = (xᵢ − meanᵢ)·(Σ⁻¹(x − mean))ᵢ`, which add up to the squared distance
    /// (a column can contribute negatively). `None` when `x` has the wrong length.
    pub fn distance2(&self, x: &[f64]) -> Option<(f64, Vec<f64>)> {
        let (mut contrib, mut w) = (Vec::new(), Vec::new());
        let d2 = self.distance2_into(x, &mut contrib, &mut w)?;
        Some((d2, contrib))
    }

    /// [`Mahalanobis::distance2`] into caller-kept buffers (the analysis thread scores every
    /// row, and reusing them spares two allocations per row): `contrib` receives the
    /// contributions, `w` is working memory.
    pub fn distance2_into(
        &self,
        x: &[f64],
        contrib: &mut Vec<f64>,
        w: &mut Vec<f64>,
    ) -> Option<f64> {
        if x.len() != self.p {
            return None;
        }
        contrib.clear();
        contrib.extend(x.iter().zip(&self.mean).map(|(v, m)| v - m));
        // w = Σ⁻¹ d.
        w.clear();
        w.extend(self.precision.chunks_exact(self.p).map(|row| {
            row.iter()
                .zip(contrib.iter())
                .map(|(a, b)| a * b)
                .sum::<f64>()
        }));
        // The contributions d_i w_i replace d in place.
        for (a, b) in contrib.iter_mut().zip(w.iter()) {
            *a *= b;
        }
        Some(contrib.iter().sum::<f64>().max(0.0))
    }
}

/// The transpose of a row-major `p × p` matrix: the back substitution of [`solve_into`]
/// reads a column of `L`, which is a contiguous row of `Lᵀ`.
fn transposed(m: &[f64], p: usize) -> Vec<f64> {
    let mut t = vec![0.0; p * p];
    for a in 0..p {
        for b in 0..p {
            t[b * p + a] = m[a * p + b];
        }
    }
    t
}

/// Lower Cholesky factor of a symmetric positive definite `p × p` matrix.
fn cholesky(a: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let mut sum = a[i * p + j];
            for k in 0..j {
                sum -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if sum.is_nan() || sum <= 0.0 || !sum.is_finite() {
                    return None;
                }
                l[i * p + i] = sum.sqrt();
            } else {
                l[i * p + j] = sum / l[j * p + j];
            }
        }
    }
    Some(l)
}

/// Solves `L Lᵀ w = d` into `w`, `lt` being `Lᵀ` row-major (`L`'s columns as rows).
///
/// Each step subtracts the products in the same order as the textbook loops
/// (`k` ascending, then descending rows with `k` ascending), so the result is bit for bit
/// theirs; iterating over row slices instead of indexing spares the bounds checks and the
/// strided reads of `L`'s columns (the analysis thread solves once per scored row).
fn solve_into(l: &[f64], lt: &[f64], p: usize, d: &[f64], w: &mut Vec<f64>) {
    w.clear();
    w.resize(p, 0.0);
    // Forward substitution: y_i = (d_i − Σ_{k<i} L_ik y_k) / L_ii.
    for (i, (row, &di)) in l.chunks_exact(p).zip(d).enumerate() {
        let (done, rest) = w.split_at_mut(i);
        let mut s = di;
        for (lk, yk) in row.iter().zip(done.iter()) {
            s -= lk * yk;
        }
        if let (Some(slot), Some(diag)) = (rest.first_mut(), row.get(i)) {
            *slot = s / diag;
        }
    }
    // Back substitution in place: w_i = (y_i − Σ_{k>i} L_ki w_k) / L_ii, and L_ki = Lᵀ_ik.
    for (i, row) in lt.chunks_exact(p).enumerate().rev() {
        let (head, after) = w.split_at_mut(i + 1);
        let Some(slot) = head.last_mut() else {
            continue;
        };
        let mut s = *slot;
        for (lk, wk) in row[i + 1..].iter().zip(after.iter()) {
            s -= lk * wk;
        }
        if let Some(diag) = row.get(i) {
            *slot = s / diag;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_like_data_gives_euclidean_distance() {
        // Four points at (±1, ±1): mean 0, S = I, no shrinkage needed (S = μI).
        let rows = vec![
            vec![1.0, 1.0],
            vec![-1.0, 1.0],
            vec![1.0, -1.0],
            vec![-1.0, -1.0],
        ];
        let m = Mahalanobis::fit(&rows).unwrap();
        let (d2, c) = m.distance2(&[3.0, 4.0]).unwrap();
        assert!((d2 - 25.0).abs() < 1e-12);
        assert!((c[0] - 9.0).abs() < 1e-12 && (c[1] - 16.0).abs() < 1e-12);
    }

    /// Uniform numbers in [-0.5, 0.5) from a 64-bit LCG: the same points every run.
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut x = seed;
        move || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        }
    }

    /// The textbook substitutions the slice-based [`solve_into`] replaced.
    fn solve_indexed(l: &[f64], p: usize, d: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; p];
        for i in 0..p {
            let mut s = d[i];
            for k in 0..i {
                s -= l[i * p + k] * y[k];
            }
            y[i] = s / l[i * p + i];
        }
        for i in (0..p).rev() {
            let mut s = y[i];
            for k in i + 1..p {
                s -= l[k * p + i] * y[k];
            }
            y[i] = s / l[i * p + i];
        }
        y
    }

    #[test]
    fn solve_matches_the_indexed_substitutions_bit_for_bit() {
        let mut next = uniform(12_345);
        for p in [1, 2, 3, 7, 10] {
            let rows: Vec<Vec<f64>> = (0..50)
                .map(|_| {
                    let common = next();
                    (0..p).map(|j| common + next() * (j + 1) as f64).collect()
                })
                .collect();
            let m = Mahalanobis::fit(&rows).unwrap();
            // The factor the fit solved its precision matrix with.
            let chol = cholesky(&m.covariance, p).unwrap();
            for _ in 0..20 {
                let d: Vec<f64> = (0..p).map(|_| 3.0 * next()).collect();
                let mut w = Vec::new();
                solve_into(&chol, &transposed(&chol, p), p, &d, &mut w);
                let want = solve_indexed(&chol, p, &d);
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&w), bits(&want), "p = {p}");
            }
        }
    }

    /// The precision matrix's product gives the distance and contributions the two
    /// substitutions gave (which the sklearn fixtures check to 1e-8), to rounding: on
    /// independent, correlated and nearly collinear columns.
    #[test]
    fn precision_product_equals_the_substitutions() {
        let mut next = uniform(987_654);
        let mut worst = 0.0_f64;
        for (p, coupling) in [(1, 0.0), (3, 0.0), (10, 1.0), (10, 50.0), (25, 1e3)] {
            let rows: Vec<Vec<f64>> = (0..200)
                .map(|_| {
                    let common = next();
                    (0..p)
                        .map(|j| coupling * common + next() * (j + 1) as f64)
                        .collect()
                })
                .collect();
            let m = Mahalanobis::fit(&rows).unwrap();
            // The factor the fit solved its precision matrix with.
            let chol = cholesky(&m.covariance, p).unwrap();
            for _ in 0..50 {
                let point: Vec<f64> = (0..p).map(|_| 4.0 * next()).collect();
                let (d2, contrib) = m.distance2(&point).unwrap();
                let d: Vec<f64> = point.iter().zip(&m.mean).map(|(a, b)| a - b).collect();
                let w = solve_indexed(&chol, p, &d);
                let want: Vec<f64> = d.iter().zip(&w).map(|(a, b)| a * b).collect();
                let want_d2 = want.iter().sum::<f64>().max(0.0);
                let scale = want.iter().map(|c| c.abs()).sum::<f64>().max(1e-300);
                worst = worst.max((d2 - want_d2).abs() / scale);
                for (a, b) in contrib.iter().zip(&want) {
                    worst = worst.max((a - b).abs() / scale);
                }
            }
        }
        assert!(worst < 1e-13, "largest relative difference {worst:e}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            Mahalanobis::fit(&[vec![1.0]]),
            Err(FitError::TooFew { .. })
        ));
        assert!(matches!(
            Mahalanobis::fit(&[vec![1.0, 2.0], vec![1.0]]),
            Err(FitError::Ragged { row: 1, .. })
        ));
        assert!(matches!(
            Mahalanobis::fit(&[vec![1.0], vec![f64::NAN]]),
            Err(FitError::NotFinite { row: 1, column: 0 })
        ));
        assert_eq!(
            Mahalanobis::fit(&[vec![1.0, 2.0], vec![1.0, 2.0]]),
            Err(FitError::Singular)
        );
        let m = Mahalanobis::fit(&[vec![1.0], vec![2.0]]).unwrap();
        assert!(m.distance2(&[1.0, 2.0]).is_none());
    }
}
