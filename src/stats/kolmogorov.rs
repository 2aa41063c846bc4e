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
//! `smirnov(n, d)` is Birnbaum & Tingey's finite sum (all terms positive), with Smirnov's
//! `exp(-(6nd+1)²/(18n))` approximation above `n = 10⁶` as in scipy. scipy adds up to `n`
//! terms in double-double; here, wherever `n·d² ≥ 1.5` (every large-`n` use), the terms are
//! log-concave and smooth in `v`, so the sum is taken from every `h`-th term around the peak
//! (a few hundred terms instead of up to 10⁶, see `birnbaum_tingey_sampled`), each term
//! computed without cancellation; the result stays within 10⁻¹³ relative of scipy.
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
/// (`tests/offline/stats.rs`), and to 2·10⁻¹³ relative on a dense grid of `n = 100 … 10⁶`
/// and `d` from below `1/(2n)` to 1 (`tests/fixtures/kolmogorov`, from scipy).
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
    // v = 0 .. n − ⌊nd⌋ − 1. The sampled sum needs log-concave terms, shown for n·d² ≥ 1.5
    // (see `birnbaum_tingey_sampled`); kstwo_sf calls this at n·d² > 2.2 or d ≥ 0.5.
    let n_terms = n - nxfl as u64;
    if nf * d * d >= 1.5 {
        if let Some(sum) = birnbaum_tingey_sampled(nf, d, n_terms) {
            return clip_prob(sum);
        }
    }
    clip_prob(birnbaum_tingey_summed(nf, d, n_terms))
}

/// Birnbaum–Tingey: P(D_n+ ≥ d) = d Σ_{v=0}^{⌊n(1−d)⌋} C(n,v) (1−d−v/n)^(n−v) (d+v/n)^(v−1),
/// excluding the v that makes 1−d−v/n exactly zero (`n_terms` terms, v = 0 .. n_terms − 1).
/// All terms are positive. Every term in log space, summed from v = 0 until the rest cannot
/// change the sum (scipy's loop and stopping rule): `O(n)` exp/ln.
fn birnbaum_tingey_summed(nf: f64, d: f64, n_terms: u64) -> f64 {
    let mut sum = 0.0_f64;
    let mut ln_binom = 0.0_f64; // ln C(n, v)
    let vmid = (nf / 2.0).floor() as u64;
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
    d * sum
}

/// Terms further than this below the largest one (in natural log) are left out of the
/// sampled sum: each is below `e^-60 ≈ 8.8e-27` of the largest term, so all of them (at most
/// `n ≤ 10⁶`, smaller and smaller away from the peak) stay below `10⁻²⁰` of the sum.
const SAMPLED_TAIL: f64 = 60.0;
/// The sampling step is at most the terms' width (σ, in terms) over this.
const SAMPLED_WIDTH_STEPS: f64 = 4.0;
/// The sampling step is at most the distance from the kept terms to the nearest branch point
/// of the terms as a function of `v` over this.
const SAMPLED_BRANCH_STEPS: f64 = 6.0;

/// The Birnbaum–Tingey sum of [`birnbaum_tingey_summed`] from a few hundred of its terms
/// instead of up to `n` (`None` when the shortcut does not apply; the caller then sums).
///
/// Why it equals the full sum to double precision:
///
/// 1. *Each term accurately.* With `x = n·d`, `m = n − v` and Stirling's
///    `ln k! = k ln k − k + ½ ln 2πk + s(k)`, the large parts of
///    `ln C(n,v) + (n−v) ln(1−d−v/n) + (v−1) ln(d+v/n)` cancel exactly on paper, leaving
///    `L(v) = ln d + m·g(−x/m) + v·g(x/v) + ½ ln(n / (2π v m)) − ln((v+x)/n) + s(n) − s(v) − s(m)`
///    with `g(t) = ln(1+t) − t` (both `g` terms are `≈ −x²/2m`, `−x²/2v`: no cancellation).
///    `L` is of the size of `−2nd²`, so `exp(L)` carries a relative error of about
///    `|L|·2⁻⁵³` (≤ 10⁻¹³ below the `n·d² < 370` where kstwo uses it), where scipy sums in
///    double-double.
/// 2. *Log-concave terms.* `L'' ≈ −x²/(v(v+x)²) − x²/(m(m−x)²) + 1/(2v²) + 1/(2m²) + 1/(v+x)²`:
///    with `x² = n²d² ≥ 2n ≥ 2v, 2m` the negative parts dominate, so the terms rise to one
///    peak and fall on both sides (checked numerically over the whole range for
///    `n ≤ 10⁶`, `n·d² ≥ 1.5`). The peak is found by ternary search, the range
///    `[lo, hi]` of terms within `e^SAMPLED_TAIL` of it by doubling and bisection, and every
///    term outside is left out (see [`SAMPLED_TAIL`]).
/// 3. *Sampling.* For a smooth term function `f`, `Σ_v f(v)` and `h Σ_j f(r + jh)` (every
///    `h`-th term, times `h`) both equal `∫ f` up to its Fourier transform at frequency 1 and
///    `1/h` (Poisson summation). For a peak of width `σ` that is `≈ exp(−2π²σ²/h²)`:
///    at `h ≤ σ/4`, `e⁻³¹⁵`. Its analytic continuation is smooth up to the branch points
///    at `v = −x` and `v = n − x`; at a distance `w` from the kept range the error is
///    `≈ exp(−2πw/h)`: at `h ≤ w/6`, `e⁻³⁷`, on terms that are themselves far below the peak.
///    When the kept range reaches `v = 1` or the last term, or `h < 2`, every term of the
///    range is summed (`h = 1`: exact up to the left-out tails).
///
/// Against scipy (`scipy.special.smirnov`, double-double): within 2·10⁻¹³ relative over
/// `n = 141 … 10⁶`, `n·d² = 2.2 … 370` (`tests/fixtures/kolmogorov`), with 100 – 700 term
/// evaluations instead of up to `n`; halving both step limits changes nothing there.
fn birnbaum_tingey_sampled(nf: f64, d: f64, n_terms: u64) -> Option<f64> {
    if n_terms < 64 {
        return None;
    }
    let x = nf * d;
    let ln_d = d.ln();
    let s_n = stirling_remainder(nf);
    let last = n_terms - 1; // v = 1 ..= last
    let ln_term = |v: u64| -> f64 {
        let vf = v as f64;
        let m = nf - vf;
        if m <= x {
            return f64::NEG_INFINITY;
        }
        ln_d + m * log1pmx(-x / m) + vf * log1pmx(x / vf) + 0.5 * (nf / (2.0 * PI * vf * m)).ln()
            - ((vf + x) / nf).ln()
            + s_n
            - stirling_remainder(vf)
            - stirling_remainder(m)
    };
    // The peak: ternary search on the log-concave terms.
    let (mut a, mut b) = (1_u64, last);
    while b - a > 2 {
        let m1 = a + (b - a) / 3;
        let m2 = b - (b - a) / 3;
        if ln_term(m1) < ln_term(m2) {
            a = m1;
        } else {
            b = m2;
        }
    }
    let (mut peak, mut top) = (a, ln_term(a));
    for v in a + 1..=b {
        let l = ln_term(v);
        if l > top {
            (peak, top) = (v, l);
        }
    }
    if !top.is_finite() {
        return None;
    }
    let floor = top - SAMPLED_TAIL;
    // The last v on each side whose term is within e^SAMPLED_TAIL of the peak; `clipped`
    // when that is the end of the sum.
    let edge = |up: bool| -> (u64, bool) {
        let end = if up { last } else { 1 };
        if ln_term(end) >= floor {
            return (end, true);
        }
        let (mut good, mut step) = (peak, 1_u64);
        let mut bad = end;
        loop {
            let v = if up {
                peak.saturating_add(step)
            } else {
                peak.saturating_sub(step)
            };
            if (up && v >= last) || (!up && v <= 1) {
                break;
            }
            if ln_term(v) < floor {
                bad = v;
                break;
            }
            good = v;
            step *= 2;
        }
        while good.abs_diff(bad) > 1 {
            let mid = (good + bad) / 2;
            if ln_term(mid) >= floor {
                good = mid;
            } else {
                bad = mid;
            }
        }
        (good, false)
    };
    let ((lo, lo_clipped), (hi, hi_clipped)) = (edge(false), edge(true));
    // Width of the peak from the curvature of L over a twentieth of the kept range.
    let k = ((hi - lo) / 20).max(1);
    let (a, b) = (peak.saturating_sub(k).max(lo), (peak + k).min(hi));
    let sigma = if a < peak && peak < b {
        let left = (top - ln_term(a)) / (peak - a) as f64;
        let right = (ln_term(b) - top) / (b - peak) as f64;
        let curvature = (left - right) / ((b - a) as f64 / 2.0);
        if curvature > 0.0 {
            1.0 / curvature.sqrt()
        } else {
            0.0
        }
    } else {
        0.0
    };
    let branch = (lo as f64 + x).min(nf - x - hi as f64);
    let step = (sigma / SAMPLED_WIDTH_STEPS).min(branch / SAMPLED_BRANCH_STEPS);
    // (A NaN step, from a NaN curvature, sums every term.)
    let h = if lo_clipped || hi_clipped || step.is_nan() || step < 2.0 {
        1
    } else {
        step as u64
    };
    let mut sum = 0.0_f64;
    let mut v = peak - (peak - lo) / h * h;
    while v <= hi {
        sum += (ln_term(v) - top).exp();
        v += h;
    }
    // v = 0: d · (1−d)^n / d.
    let first = (nf * (-d).ln_1p()).exp();
    let total = h as f64 * sum * top.exp() + first;
    total.is_finite().then_some(total)
}

/// `ln(1 + t) − t` for `t > −1`, accurate to a few ulp also where it is tiny: for `|t| ≤ ½`
/// from `ln(1+t) = 2 atanh(u)`, `u = t/(2+t)`: `−t²/(2+t) + 2u³(1/3 + u²/5 + u⁴/7 + …)`
/// (`|u| ≤ ⅓`, so 17 terms reach 10⁻¹⁷).
fn log1pmx(t: f64) -> f64 {
    if t.abs() > 0.5 {
        return t.ln_1p() - t;
    }
    let u = t / (2.0 + t);
    let u2 = u * u;
    let mut acc = 0.0;
    let mut j = 37.0;
    while j >= 3.0 {
        acc = acc * u2 + 1.0 / j;
        j -= 2.0;
    }
    -t * t / (2.0 + t) + 2.0 * u * u2 * acc
}

/// Stirling's remainder `s(k) = ln k! − (k ln k − k + ½ ln 2πk)` for an integer `k ≥ 1`:
/// tabulated below 16 (50-digit decimal arithmetic), else its asymptotic series (eight terms:
/// below 10⁻¹⁹ from k = 16).
fn stirling_remainder(k: f64) -> f64 {
    const SMALL: [f64; 15] = [
        0.081_061_466_795_327_26,
        0.041_340_695_955_409_3,
        0.027_677_925_684_998_34,
        0.020_790_672_103_765_093,
        0.016_644_691_189_821_193,
        0.013_876_128_823_070_748,
        0.011_896_709_945_891_77,
        0.010_411_265_261_972_096,
        0.009_255_462_182_712_733,
        0.008_330_563_433_362_87,
        0.007_573_675_487_951_841,
        0.006_942_840_107_209_53,
        0.006_408_994_188_004_207,
        0.005_951_370_112_758_847_5,
        0.005_554_733_551_962_801,
    ];
    if k < 16.0 {
        let i = (k as usize).clamp(1, SMALL.len()) - 1;
        return SMALL[i];
    }
    let x = 1.0 / (k * k);
    STIRLING.iter().fold(0.0, |acc, &c| acc * x + c) / k
}

/// `B_{2j} / (2j (2j−1))` for j = 8 .. 1, highest power first: Stirling's series.
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

/// `ln(n! / n^n)` by Stirling's series with the `n ln n` removed up front (no cancellation).
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
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

    /// The sampled Birnbaum–Tingey sum against summing every term, over the statistics where
    /// kstwo uses it (`n·d² ≥ 2.2`) and below (the shortcut's own limit, 2). Up to n = 4 000:
    /// beyond, the full sum's running `ln C(n, v)` drifts (2·10⁻⁸ relative at n = 10⁶, where
    /// the sampled sum stays within 10⁻¹⁴ of scipy: `tests/fixtures/kolmogorov`).
    #[test]
    fn sampled_birnbaum_tingey_equals_the_full_sum() {
        let mut worst = (0.0_f64, 0_u64, 0.0_f64);
        for n in [150_u64, 400, 1_000, 2_500, 4_000] {
            // Up to 300: near 354 the sum underflows (smirnov_sf answers 0 beyond).
            for c in [2.0, 2.2, 2.5, 3.3, 5.0, 9.0, 20.0, 60.0, 150.0, 300.0] {
                let nf = n as f64;
                let d = (c / nf).sqrt();
                if d >= 1.0 {
                    continue;
                }
                let n_terms = n - (nf * d).floor() as u64;
                let Some(fast) = birnbaum_tingey_sampled(nf, d, n_terms) else {
                    continue;
                };
                let full = birnbaum_tingey_summed(nf, d, n_terms);
                assert!(full > 0.0 && full.is_finite(), "n={n} c={c}: {full}");
                let rel = (fast / full - 1.0).abs();
                if rel > worst.0 {
                    worst = (rel, n, c);
                }
            }
        }
        eprintln!("sampled vs full Birnbaum–Tingey sum: worst relative {worst:?}");
        assert!(worst.0 < 1e-11, "{worst:?}");
    }

    #[test]
    fn log1pmx_and_stirling_remainder_are_accurate() {
        // Across the switch at |t| = 1/2 the two forms agree.
        for t in [-0.5, 0.5] {
            let direct = f64::ln_1p(t) - t;
            assert!((log1pmx(t) / direct - 1.0).abs() < 1e-14, "t={t}");
        }
        // Tiny t: −t²/2 + t³/3 − t⁴/4.
        let t = 1e-6;
        let series = -t * t / 2.0 + t * t * t / 3.0 - t * t * t * t / 4.0;
        assert!((log1pmx(t) / series - 1.0).abs() < 1e-15);
        // Table and series meet at 16: s(15) from the series is within 1e-17.
        let x = 1.0 / (15.0_f64 * 15.0);
        let series = STIRLING.iter().fold(0.0, |acc, &c| acc * x + c) / 15.0;
        assert!((series - stirling_remainder(15.0)).abs() < 1e-17);
    }

    /// `(n, d, sf)` of a fixture written by `scripts/gen/kolmogorov.py` (scipy).
    fn dense_grid(text: &str) -> Vec<(u64, f64, f64)> {
        let doc: serde_json::Value = serde_json::from_str(text).expect("fixture is JSON");
        let cases = doc["cases"].as_array().expect("cases");
        let field = |c: &serde_json::Value, k: &str| c[k].as_f64().expect("number");
        cases
            .iter()
            .map(|c| (field(c, "n") as u64, field(c, "d"), field(c, "sf")))
            .collect()
    }

    /// Relative error against scipy's value, absolute where scipy's is below 10⁻³⁰⁰.
    fn rel_err(got: f64, want: f64) -> f64 {
        if want.abs() < 1e-300 {
            (got - want).abs()
        } else {
            (got / want - 1.0).abs()
        }
    }

    #[test]
    fn smirnov_matches_scipy_dense_grid() {
        let cases = dense_grid(include_str!("../../tests/fixtures/kolmogorov/smirnov.json"));
        assert!(cases.len() > 200);
        let mut worst = (0.0_f64, 0_u64, 0.0_f64);
        for (n, d, want) in cases {
            let err = rel_err(smirnov_sf(n, d), want);
            if err > worst.0 {
                worst = (err, n, d);
            }
        }
        eprintln!("smirnov vs scipy: worst relative error {worst:?}");
        assert!(worst.0 < 1e-10, "{worst:?}");
    }

    #[test]
    fn kstwo_matches_scipy_dense_grid() {
        let cases = dense_grid(include_str!("../../tests/fixtures/kolmogorov/kstwo.json"));
        assert!(cases.len() > 500);
        let mut worst = (0.0_f64, 0_u64, 0.0_f64);
        for (n, d, want) in cases {
            let err = rel_err(kstwo_sf(d, n), want);
            if err > worst.0 {
                worst = (err, n, d);
            }
        }
        eprintln!("kstwo vs scipy: worst relative error {worst:?}");
        assert!(worst.0 < 1e-10, "{worst:?}");
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
