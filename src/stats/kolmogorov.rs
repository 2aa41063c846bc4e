//! Distribution of the two-sided one-sample Kolmogorov–Smirnov statistic `D_n`
//! (scipy's `kstwo`) and of the one-sided statistic `D_n+` (scipy's `smirnov`).
//!
//! `ks_2samp(..., method='asymp')` in scipy reports `kstwo.sf(D, round(n1*n2/(n1+n2)))`,
//! the *exact* finite-`n` distribution, not the limiting Kolmogorov distribution
//! (`kstwobign`). The two differ by up to ~0.1 in p-value for small samples, so this
//! module reproduces scipy's algorithm selection (Simard & L'Ecuyer 2011, as implemented
//! in `scipy/stats/_ksstats.py`):
//!
//! | region | method |
//! |---|---|
//! | `n·d ≤ 1` or `n·d ≥ n−1` | Ruben–Gambino closed forms |
//! | `d ≥ 0.5` | `2·smirnov(n, d)` (exact: the two one-sided events are disjoint) |
//! | `n ≤ 140`, `n·d² ≤ 0.754693` | Durbin matrix (Marsaglia–Tsang–Wang) |
//! | `n ≤ 140`, `n·d² ≤ 4` | Pomeranz recursion |
//! | `n ≤ 140`, otherwise | `2·smirnov(n, d)` |
//! | `n > 140`, `n·d² ≥ 370` | 0 |
//! | `n > 140`, `n·d² ≥ 2.2` | `2·smirnov(n, d)` |
//! | `n ≤ 100000`, `n·d^1.5 ≤ 1.4` | Durbin matrix |
//! | otherwise | Pelz–Good asymptotic series |
//!
//! `smirnov(n, d)` is Birnbaum & Tingey's finite sum (all terms positive, summed in log
//! space), with Smirnov's `exp(-(6nd+1)²/(18n))` approximation above `n = 10⁶` as in scipy.
//!
//! References: Durbin (1968); Pomeranz (1974); Marsaglia, Tsang & Wang (2003), J. Stat.
//! Softw. 8(18); Pelz & Good (1976), JRSS B 38(2); Simard & L'Ecuyer (2011), J. Stat.
//! Softw. 39(11); Birnbaum & Tingey (1951), Ann. Math. Statist. 22.

use std::f64::consts::PI;

/// `2^128`, the rescaling step used to keep intermediate products representable.
const EP128: f64 = 340_282_366_920_938_463_463_374_607_431_768_211_456.0;
/// `2^-128`.
const EM128: f64 = 1.0 / EP128;
/// Exponent matching [`EP128`].
const E128: i32 = 128;
/// `exp` of anything below this is zero in `f64` (scipy's `_MIN_LOG`).
const MIN_LOG: f64 = -708.0;
/// Largest `n` for which `smirnov` sums the exact series (scipy's `SMIRNOV_MAX_COMPUTE_N`).
const SMIRNOV_MAX_COMPUTE_N: u64 = 1_000_000;

/// Survival function `P(D_n ≥ d)` of the two-sided one-sample Kolmogorov–Smirnov
/// statistic for a sample of size `n` (scipy: `scipy.stats.kstwo.sf(d, n)`).
///
/// Returns `NaN` when `n == 0` or `d` is NaN (as scipy does); otherwise a value in `[0, 1]`.
/// Agrees with scipy to ~5e-10 absolute over `1 ≤ n ≤ 2·10⁶` and every algorithm branch
/// (`tests/offline/stats.rs`).
pub fn kstwo_sf(d: f64, n: u64) -> f64 {
    if n == 0 || d.is_nan() {
        return f64::NAN;
    }
    let nf = n as f64;
    // scipy's rv_continuous wrapper: outside the open support (0.5/n, 1) the answer is exact.
    if d <= 0.5 / nf {
        return 1.0;
    }
    if d >= 1.0 {
        return 0.0;
    }
    let t = nf * d;
    if t <= 1.0 {
        // Ruben–Gambino: P(D_n ≤ d) = n!/n^n (2t−1)^n for 1/(2n) ≤ d ≤ 1/n.
        let cdf = if n <= 140 {
            let mut prod = 1.0;
            for i in 1..=n {
                prod *= (i as f64) * (1.0 / nf) * (2.0 * t - 1.0);
            }
            prod
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return clip_prob(1.0 - cdf);
    }
    if t >= nf - 1.0 {
        // Ruben–Gambino: P(D_n ≥ d) = 2 (1−d)^n for d ≥ 1 − 1/n.
        return clip_prob(2.0 * (1.0 - d).powf(nf));
    }
    if d >= 0.5 {
        return clip_prob(2.0 * smirnov_sf(n, d));
    }
    let nxsquared = t * d;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return clip_prob(1.0 - durbin_mtw_cdf(n, d));
        }
        if nxsquared <= 4.0 {
            return clip_prob(1.0 - pomeranz_cdf(n, d));
        }
        return clip_prob(2.0 * smirnov_sf(n, d));
    }
    if nxsquared >= 370.0 {
        return 0.0;
    }
    if nxsquared >= 2.2 {
        return clip_prob(2.0 * smirnov_sf(n, d));
    }
    let cdf = if nxsquared >= 18.0 {
        1.0
    } else if n <= 100_000 && nf * d.powf(1.5) <= 1.4 {
        durbin_mtw_cdf(n, d)
    } else {
        pelz_good_cdf(nf, d)
    };
    clip_prob(1.0 - cdf)
}

/// Survival function `P(D_n+ ≥ d)` of the one-sided one-sample Kolmogorov–Smirnov
/// statistic (scipy: `scipy.special.smirnov(n, d)`).
///
/// Returns `NaN` for `n == 0` or `d` outside `[0, 1]` / NaN.
pub fn smirnov_sf(n: u64, d: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&d) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - d;
    }
    if d == 0.0 {
        return 1.0;
    }
    if d == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let nx = nf * d;
    // floor(n·d), treating values within rounding error of an integer as that integer.
    let nearest = nx.round();
    let (nxfl, alpha) = if (nx - nearest).abs() <= 4.0 * f64::EPSILON * nx.max(1.0) {
        (nearest, 0.0)
    } else {
        (nx.floor(), nx - nx.floor())
    };
    if nxfl == 0.0 || (nxfl == 1.0 && alpha == 0.0) {
        // d ≤ 1/n: P(D_n+ ≤ d) = d (1+d)^(n−1).
        let cdf = d * (1.0 + d).powf(nf - 1.0);
        return clip_prob(1.0 - cdf);
    }
    if -2.0 * nf * d * d < -708.396_418_532_264_1 {
        return 0.0;
    }
    if nxfl >= nf - 1.0 {
        return clip_prob((1.0 - d).powf(nf));
    }
    if n > SMIRNOV_MAX_COMPUTE_N {
        let logp = -(6.0 * nx + 1.0).powi(2) / 18.0 / nf;
        return if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 + logp.exp_m1()
        };
    }
    // Birnbaum–Tingey: P(D_n+ ≥ d) = d Σ_{v=0}^{⌊n(1−d)⌋} C(n,v) (1−d−v/n)^(n−v) (d+v/n)^(v−1),
    // excluding the v that makes 1−d−v/n exactly zero. All terms are positive.
    let n_terms = n - nxfl as u64; // v = 0 .. n − ⌊nd⌋ − 1
    let mut sum = 0.0_f64;
    let mut ln_binom = 0.0_f64; // ln C(n, v)
    let vmid = n / 2;
    for v in 0..n_terms {
        let vf = v as f64;
        let one_minus = (nf - vf) / nf - d;
        let plus = vf / nf + d;
        let term = if one_minus > 0.0 {
            (ln_binom + (nf - vf) * one_minus.ln() + (vf - 1.0) * plus.ln()).exp()
        } else {
            0.0
        };
        if term.is_finite() {
            sum += term;
        }
        if term != 0.0 {
            let remaining = (n_terms - v) as f64;
            if 4.0 * remaining * term < f64::EPSILON * sum && v + 1 != n_terms {
                break;
            }
        } else if v > vmid {
            break;
        }
        ln_binom += ((nf - vf) / (vf + 1.0)).ln();
    }
    clip_prob(d * sum)
}

/// `ln(n! / n^n)` by Stirling's series with the `n ln n` removed up front (no cancellation).
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    // B_{2j} / (2j (2j−1)) for j = 8 .. 1, highest power first.
    const STIRLING: [f64; 8] = [
        -3617.0 / 122_400.0,
        1.0 / 156.0,
        -691.0 / 360_360.0,
        1.0 / 1188.0,
        -1.0 / 1680.0,
        1.0 / 1260.0,
        -1.0 / 360.0,
        1.0 / 12.0,
    ];
    let rn = 1.0 / n;
    let x = rn / n;
    let poly = STIRLING.iter().fold(0.0, |acc, &c| acc * x + c);
    n.ln() / 2.0 - n + (2.0 * PI).ln() / 2.0 + rn * poly
}

fn clip_prob(p: f64) -> f64 {
    if p.is_nan() {
        p
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// `x · 2^e` without intermediate overflow/underflow of `2^e` itself.
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
        if x.is_infinite() {
            return x;
        }
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
        if x == 0.0 {
            return x;
        }
    }
    x * 2f64.powi(e as i32)
}

/// Square matrix product `a · b` for row-major `m × m` matrices.
fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        let row = &a[i * m..(i + 1) * m];
        let out_row = &mut out[i * m..(i + 1) * m];
        for (l, &a_il) in row.iter().enumerate() {
            if a_il == 0.0 {
                continue;
            }
            let b_row = &b[l * m..(l + 1) * m];
            for (o, &b_lj) in out_row.iter_mut().zip(b_row) {
                *o += a_il * b_lj;
            }
        }
    }
    out
}

/// `P(D_n ≤ d)` by Durbin's matrix method, computed as in Marsaglia, Tsang & Wang (2003):
/// the `(k,k)` entry of `H^n` times `n!/n^n`, with `d = (k − h)/n`. `O(m³ log n)` for
/// `m = 2k − 1`.
fn durbin_mtw_cdf(n: u64, d: f64) -> f64 {
    if d >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let nd = nf * d;
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;

    // v[j] = (1 − h^(j+1)) / (j+1)!, w[j] = 1/j!
    let mut v = vec![0.0; m];
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] = (1.0 - h.powi(j as i32)) * fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;

    let mut hm = vec![0.0; m * m];
    for col in 1..m {
        for row in (col - 1)..m {
            hm[row * m + col] = w[row - (col - 1)];
        }
    }
    for row in 0..m {
        hm[row * m] = v[row];
    }
    for col in 0..m {
        hm[(m - 1) * m + col] = v[m - 1 - col];
    }

    let mut hpwr = vec![0.0; m * m];
    for i in 0..m {
        hpwr[i * m + i] = 1.0;
    }
    let mut nn = n;
    let mut expnt: i64 = 0;
    let mut h_expnt: i64 = 0;
    while nn > 0 {
        if nn % 2 == 1 {
            hpwr = matmul(&hpwr, &hm, m);
            expnt += h_expnt;
        }
        hm = matmul(&hm, &hm, m);
        h_expnt *= 2;
        if hm[(k - 1) * m + (k - 1)].abs() > EP128 {
            for x in hm.iter_mut() {
                *x /= EP128;
            }
            h_expnt += i64::from(E128);
        }
        nn /= 2;
    }

    let mut p = hpwr[(k - 1) * m + (k - 1)];
    for i in 1..=n {
        p = (i as f64) * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= i64::from(E128);
        }
    }
    if expnt != 0 {
        p = ldexp(p, expnt);
    }
    clip_prob(p)
}

/// Row interval `[j1, j2]` of non-zero entries in step `i` of the Pomeranz recursion.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let ip1div2 = (i + 1) / 2;
        let ip1mod2 = (i + 1) % 2;
        if ip1mod2 == 0 {
            if ip1div2 == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (ip1div2 - 1 - ll - roundf - 1, ip1div2 + ll - 1 + ceilf - 1)
            }
        } else {
            (ip1div2 - 1 - ll - 1, ip1div2 + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `P(D_n ≤ d)` by Pomeranz's recursion (1974): `2n + 1` convolutions of a short row with
/// truncated Poisson weights, rescaled to avoid underflow.
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let ni = n as i64;
    let t = nf * x;
    let ll_f = t.floor();
    let ll = ll_f as i64;
    let f = t - ll_f;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;

    let mut gpower = vec![0.0; npwrs];
    let mut twogpower = vec![0.0; npwrs];
    let mut onem2gpower = vec![0.0; npwrs];
    gpower[0] = 1.0;
    twogpower[0] = 1.0;
    onem2gpower[0] = 1.0;
    let (g_n, two_g_n, one_m2g_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        let mf = m as f64;
        gpower[m] = gpower[m - 1] * g_n / mf;
        twogpower[m] = twogpower[m - 1] * two_g_n / mf;
        onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / mf;
    }
    // Subnormal operands are ~100× slower and contribute nothing at 1e-308 relative scale
    // (rows are rescaled so their maximum stays ≥ 2^-128): flush them to zero.
    for table in [&mut gpower, &mut twogpower, &mut onem2gpower] {
        flush_subnormals(table);
    }

    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0_i64, 0_i64);
    let mut expnt: i64 = 0;
    let (mut j1, _) = pomeranz_j1j2(0, ni, ll, ceilf, roundf);
    let mut conv = Vec::with_capacity(2 * npwrs);
    for i in 1..(2 * ni + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.iter_mut().for_each(|x| *x = 0.0);
        let (nj1, j2) = pomeranz_j1j2(i, ni, ll, ceilf, roundf);
        j1 = nj1;
        let pwrs = if i == 1 || i == 2 * ni + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 > 0 {
            let start = (k1 - v0s).max(0) as usize;
            let end = (start + ln2 as usize).min(npwrs);
            let src = &v0[start.min(npwrs)..end];
            let ker = &pwrs[..(ln2 as usize).min(npwrs)];
            // Full discrete convolution, as numpy.convolve(src, ker).
            conv.clear();
            if !src.is_empty() && !ker.is_empty() {
                conv.resize(src.len() + ker.len() - 1, 0.0);
                for (a, &sa) in src.iter().enumerate() {
                    if sa == 0.0 {
                        continue;
                    }
                    for (b, &kb) in ker.iter().enumerate() {
                        conv[a + b] += sa * kb;
                    }
                }
            }
            let conv_start = (j1 - k1).max(0) as usize;
            let conv_len = (j2 - j1 + 1).max(0) as usize;
            for (idx, slot) in v1.iter_mut().enumerate().take(conv_len) {
                *slot = conv.get(conv_start + idx).copied().unwrap_or(0.0);
            }
            flush_subnormals(&mut v1);
            let max = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if max > 0.0 && max < EM128 {
                v1.iter_mut().for_each(|x| *x *= EP128);
                expnt -= i64::from(E128);
            }
            v1s = v0s + j1 - k1;
        }
    }
    let idx = ni - v1s;
    let mut ans = if idx >= 0 {
        v1.get(idx as usize).copied().unwrap_or(0.0)
    } else {
        0.0
    };
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += i64::from(E128);
        }
        ans *= m as f64;
    }
    if expnt != 0 {
        ans = ldexp(ans, expnt);
    }
    clip_prob(ans)
}

/// Sets subnormal entries to zero.
fn flush_subnormals(values: &mut [f64]) {
    for x in values.iter_mut() {
        if x.abs() < f64::MIN_POSITIVE {
            *x = 0.0;
        }
    }
}

/// Pelz–Good (1976) asymptotic series for `P(D_n ≤ x)`: the Li-Chien/Korolyuk expansion
/// `K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5`, `z = x√n`, rewritten with Jacobi theta
/// identities so that it converges quickly for small `z`.
fn pelz_good_cdf(n: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let pi2 = PI * PI;
    let pi4 = pi2 * pi2;
    let pi6 = pi4 * pi2;
    let sqrt2pi = (2.0 * PI).sqrt();
    let z = n.sqrt() * x;
    let z2 = z * z;
    let z3 = z2 * z;
    let z4 = z2 * z2;
    let z6 = z4 * z2;

    let qlog = -pi2 / 8.0 / z2;
    if qlog < MIN_LOG {
        return 0.0;
    }
    let q = qlog.exp();

    let k1a = -z2;
    let k1b = pi2 / 4.0;
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z4 * z4;

    let mut kk = [0.0_f64; 4];
    let maxk = (16.0 * z / PI).ceil().max(0.0) as i64;
    for k in (1..=maxk).rev() {
        let m = (2 * k - 1) as f64;
        let m2 = m * m;
        let m4 = m2 * m2;
        let m6 = m4 * m2;
        let qpower = q.powf(8.0 * k as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (acc, c) in kk.iter_mut().zip(coeffs) {
            *acc = *acc * qpower + c;
        }
    }
    let divisors = [z, 6.0 * z4, 72.0 * z4 * z3, 6480.0 * z6 * z4];
    for (acc, dv) in kk.iter_mut().zip(divisors) {
        *acc = *acc * q * sqrt2pi / dv;
    }

    let q2 = (-pi2 / 2.0 / z2).exp();
    let sqrt3z = 3f64.sqrt() * z;
    let mut k2extra = 0.0;
    let mut k3extra = 0.0;
    for k in (1..=maxk).rev() {
        let kf = k as f64;
        let k2 = kf * kf;
        let qp = q2.powf(k2);
        let kspi = PI * kf;
        k2extra += k2 * qp;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * k2 * qp;
    }
    kk[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    kk[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    let mut total = 0.0;
    for (i, acc) in kk.iter().enumerate() {
        total += acc / n.powf(i as f64 / 2.0);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn support_edges_are_exact() {
        assert_eq!(kstwo_sf(0.0, 10), 1.0);
        assert_eq!(kstwo_sf(0.05, 10), 1.0); // d ≤ 1/(2n)
        assert_eq!(kstwo_sf(1.0, 10), 0.0);
        assert!(kstwo_sf(0.3, 0).is_nan());
        assert!(kstwo_sf(f64::NAN, 5).is_nan());
    }

    #[test]
    fn n_equal_one_is_uniform_on_half_to_one() {
        // D_1 = max(U, 1−U) is uniform on [1/2, 1]: P(D_1 ≥ d) = 2(1 − d).
        for d in [0.55, 0.6, 0.75, 0.9] {
            assert!((kstwo_sf(d, 1) - 2.0 * (1.0 - d)).abs() < 1e-12);
        }
    }

    #[test]
    fn sf_is_monotone_in_d() {
        for n in [2_u64, 7, 50, 140, 141, 500, 5_000, 200_000] {
            let mut prev = 1.0;
            for i in 1..400 {
                let d = i as f64 / 400.0;
                let p = kstwo_sf(d, n);
                assert!((0.0..=1.0).contains(&p), "n={n} d={d} p={p}");
                assert!(p <= prev + 1e-9, "n={n} d={d}: {p} > {prev}");
                prev = p;
            }
        }
    }
}
