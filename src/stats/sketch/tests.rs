//! Proof-by-test of the sketch's error bounds: the computed bounds always hold against the
//! exact statistics (which equal scipy's, see `tests/fixtures/stats/two_sample.json`), and
//! at the default compression the estimates meet SPEC section 5's targets on skewed,
//! heavy-tailed, integer-coded, boolean-like and real data.

use super::*;
use crate::stats::{ks_2samp_sorted, sorted_finite, wasserstein_sorted};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Pareto, StudentT};

struct Exact {
    ks: f64,
    pvalue: f64,
    w1: f64,
    std_a: f64,
}

fn exact(a: &[f64], b: &[f64]) -> Exact {
    let (sa, sb) = (sorted_finite(a), sorted_finite(b));
    let ks = ks_2samp_sorted(&sa, &sb).unwrap();
    let mean = sa.iter().sum::<f64>() / sa.len() as f64;
    let var = sa.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / sa.len() as f64;
    Exact {
        ks: ks.statistic,
        pvalue: ks.pvalue,
        w1: wasserstein_sorted(&sa, &sb).unwrap(),
        std_a: var.sqrt(),
    }
}

/// SPEC section 5: KS within 0.005, W1 within max(1 % of it, 0.002 σ of the baseline).
fn w1_tolerance(w1: f64, std_a: f64) -> f64 {
    (0.01 * w1).max(0.002 * std_a)
}

/// Checks the bounds (always) and the SPEC targets; returns the observed errors.
fn check(name: &str, a: &[f64], b: &[f64], sa: &QuantileSketch, sb: &QuantileSketch) -> (f64, f64) {
    let e = exact(a, b);
    let c = compare(sa, sb).unwrap();
    let ks_err = (c.ks_statistic - e.ks).abs();
    let w1_err = (c.wasserstein - e.w1).abs();
    // Rounding slack of the exact computations.
    let slack = 1e-9 * (1.0 + e.w1);
    assert!(
        ks_err <= c.ks_error_bound + 1e-12,
        "{name}: KS {} vs exact {}: error {ks_err} above its bound {}",
        c.ks_statistic,
        e.ks,
        c.ks_error_bound
    );
    assert!(
        w1_err <= c.wasserstein_error_bound + slack,
        "{name}: W1 {} vs exact {}: error {w1_err} above its bound {}",
        c.wasserstein,
        e.w1,
        c.wasserstein_error_bound
    );
    assert!(ks_err <= 0.005, "{name}: KS error {ks_err} > 0.005");
    let tol = w1_tolerance(e.w1, e.std_a);
    assert!(
        w1_err <= tol,
        "{name}: W1 {} vs exact {}: error {w1_err} > {tol}",
        c.wasserstein,
        e.w1
    );
    assert_eq!((c.n_a, c.n_b), (a.len() as u64, b.len() as u64));
    (ks_err, w1_err)
}

fn sketch(values: &[f64]) -> QuantileSketch {
    QuantileSketch::from_values(DEFAULT_COMPRESSION, values)
}

fn sample(n: usize, seed: u64, mut f: impl FnMut(&mut SmallRng) -> f64) -> Vec<f64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n).map(|_| f(&mut rng)).collect()
}

#[test]
fn exact_below_the_compression() {
    let a = sample(1500, 1, |r| r.random::<f64>() * 10.0);
    let b = sample(1999, 2, |r| r.random::<f64>() * 11.0);
    let (sa, sb) = (sketch(&a), sketch(&b));
    let e = exact(&a, &b);
    let c = compare(&sa, &sb).unwrap();
    assert!(
        (c.ks_statistic - e.ks).abs() < 1e-12,
        "{} {}",
        c.ks_statistic,
        e.ks
    );
    assert!((c.wasserstein - e.w1).abs() < 1e-12 * e.w1.max(1.0));
    assert_eq!((c.ks_error_bound, c.wasserstein_error_bound), (0.0, 0.0));
    let p = c.ks_pvalue().unwrap();
    assert!((p - e.pvalue).abs() < 1e-12, "{p} {}", e.pvalue);
}

#[test]
fn exact_for_few_distinct_values_at_any_size() {
    // Boolean-like (10 % ones against 12 %) and integer codes (ages 17..=90, Poisson counts).
    let cases: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        (
            "boolean",
            sample(300_000, 3, |r| {
                f64::from(u8::from(r.random::<f64>() < 0.10))
            }),
            sample(200_000, 4, |r| {
                f64::from(u8::from(r.random::<f64>() < 0.12))
            }),
        ),
        (
            "ages",
            sample(300_000, 5, |r| {
                (17.0 + 73.0 * r.random::<f64>().powf(1.6)).floor()
            }),
            sample(100_000, 6, |r| {
                (17.0 + 73.0 * r.random::<f64>().powf(1.5)).floor()
            }),
        ),
    ];
    for (name, a, b) in cases {
        let (sa, sb) = (sketch(&a), sketch(&b));
        assert_eq!(sa.rank_error_bound(), 0.0, "{name}: all cells are atoms");
        assert_eq!(sa.w1_error_bound(), 0.0, "{name}");
        let e = exact(&a, &b);
        let c = compare(&sa, &sb).unwrap();
        assert!(
            (c.ks_statistic - e.ks).abs() < 1e-12,
            "{name}: {} vs {}",
            c.ks_statistic,
            e.ks
        );
        assert!(
            (c.wasserstein - e.w1).abs() < 1e-9 * e.w1.max(1.0),
            "{name}: {} vs {}",
            c.wasserstein,
            e.w1
        );
        assert!(sa.len() <= 100, "{name}: {} cells", sa.len());
    }
}

#[test]
fn bounds_hold_and_meet_the_spec_on_continuous_data() {
    let n = 200_000;
    let normal = Normal::new(0.0, 1.0).unwrap();
    let lognormal = LogNormal::new(0.0, 1.0).unwrap();
    let pareto = Pareto::new(1.0, 2.5).unwrap();
    let t3 = StudentT::new(3.0).unwrap();
    let cases: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        (
            "normal, no drift",
            sample(n, 10, |r| normal.sample(r)),
            sample(n, 11, |r| normal.sample(r)),
        ),
        (
            "normal, shift 0.1σ",
            sample(n, 12, |r| normal.sample(r)),
            sample(n / 4, 13, |r| normal.sample(r) + 0.1),
        ),
        (
            "normal, offset 1e6",
            sample(n, 14, |r| 1e6 + normal.sample(r)),
            sample(n, 15, |r| 1e6 + 1.02 * normal.sample(r)),
        ),
        (
            "lognormal, no drift",
            sample(n, 16, |r| lognormal.sample(r)),
            sample(n, 17, |r| lognormal.sample(r)),
        ),
        (
            "lognormal, scale ×1.1",
            sample(n, 18, |r| lognormal.sample(r)),
            sample(n, 19, |r| 1.1 * lognormal.sample(r)),
        ),
        (
            "pareto 2.5",
            sample(n, 20, |r| pareto.sample(r)),
            sample(n, 21, |r| pareto.sample(r)),
        ),
        (
            "student t3, shift",
            sample(n, 22, |r| t3.sample(r)),
            sample(n, 23, |r| t3.sample(r) + 0.05),
        ),
        (
            "zero-inflated money (ties + skew)",
            sample(n, 24, |r| {
                if r.random::<f64>() < 0.4 {
                    0.0
                } else {
                    (lognormal.sample(r) * 1000.0).round()
                }
            }),
            sample(n, 25, |r| {
                if r.random::<f64>() < 0.45 {
                    0.0
                } else {
                    (lognormal.sample(r) * 1100.0).round()
                }
            }),
        ),
    ];
    for (name, a, b) in &cases {
        let (ks_err, w1_err) = check(name, a, b, &sketch(a), &sketch(b));
        eprintln!("{name}: KS error {ks_err:.2e}, W1 error {w1_err:.2e}");
    }
}

#[test]
fn sorted_and_reversed_input_orders() {
    let normal = Normal::new(5.0, 2.0).unwrap();
    let mut a = sample(150_000, 30, |r| normal.sample(r));
    let b = sample(150_000, 31, |r| normal.sample(r) * 1.05);
    let mut sorted_b = b.clone();
    sorted_b.sort_by(f64::total_cmp);
    check("sorted", &a, &b, &sketch(&a), &sketch(&sorted_b));
    a.sort_by(|x, y| y.total_cmp(x));
    check("reversed", &a, &b, &sketch(&a), &sketch(&b));
}

#[test]
fn window_buckets_union_and_merge() {
    // Ten time buckets of a drifting stream: the union (what a drift window reports) and
    // the fused merge both stay within the bounds and the SPEC targets.
    let lognormal = LogNormal::new(3.0, 0.8).unwrap();
    let a = sample(300_000, 40, |r| lognormal.sample(r));
    let mut rng = SmallRng::seed_from_u64(41);
    let mut b = Vec::new();
    let mut buckets = Vec::new();
    for i in 0..10 {
        let mut s = QuantileSketch::default();
        for _ in 0..20_000 {
            let v = lognormal.sample(&mut rng) * (1.0 + 0.01 * f64::from(i));
            b.push(v);
            s.insert(v);
        }
        buckets.push(s);
    }
    let sa = sketch(&a);
    let union = QuantileSketch::union(&buckets);
    assert_eq!(union.count(), 200_000);
    check("union of buckets", &a, &b, &sa, &union);
    let mut merged = QuantileSketch::default();
    buckets.iter().for_each(|s| merged.merge(s));
    assert!(merged.len() <= 2 * DEFAULT_COMPRESSION as usize + 1);
    check("merged buckets", &a, &b, &sa, &merged);
}

#[test]
fn computed_bounds_always_hold_at_low_compression() {
    // At δ = 20 the estimates are coarse, but the errors stay within the computed bounds.
    let mut rng = SmallRng::seed_from_u64(50);
    for trial in 0..40 {
        let n = rng.random_range(50..20_000);
        let m = rng.random_range(50..20_000);
        let shape = trial % 4;
        let draw = |r: &mut SmallRng| -> f64 {
            let u: f64 = r.random();
            match shape {
                0 => u,
                1 => (-u.ln()).powi(3),
                2 => (u * 7.0).floor(),
                _ => 1.0 / (u + 1e-3),
            }
        };
        let a: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
        let b: Vec<f64> = (0..m).map(|_| draw(&mut rng) * 1.1).collect();
        let (mut sa, sb) = (
            QuantileSketch::from_values(20, &a),
            QuantileSketch::from_values(20, &b),
        );
        if trial % 3 == 0 {
            sa.merge(&QuantileSketch::new(20)); // a no-op merge
            let half = QuantileSketch::from_values(20, &a[..n / 2]);
            let mut re = QuantileSketch::from_values(20, &a[n / 2..]);
            re.merge(&half);
            sa = re;
        }
        let e = exact(&a, &b);
        let c = compare(&sa, &sb).unwrap();
        assert!(
            (c.ks_statistic - e.ks).abs() <= c.ks_error_bound + 1e-12,
            "trial {trial}: KS {} vs {} bound {}",
            c.ks_statistic,
            e.ks,
            c.ks_error_bound
        );
        assert!(
            (c.wasserstein - e.w1).abs() <= c.wasserstein_error_bound + 1e-9 * (1.0 + e.w1),
            "trial {trial}: W1 {} vs {} bound {}",
            c.wasserstein,
            e.w1,
            c.wasserstein_error_bound
        );
        assert!(sa.len() <= 2 * 20 + 1, "trial {trial}: {} cells", sa.len());
    }
}

#[test]
fn memory_is_bounded_by_the_compression() {
    let mut s = QuantileSketch::default();
    let mut rng = SmallRng::seed_from_u64(60);
    let mut peak = 0;
    for _ in 0..1_000_000 {
        s.insert(rng.random::<f64>());
        peak = peak.max(s.memory_bytes());
    }
    let bound = 28 * DEFAULT_COMPRESSION as usize + 48;
    assert!(peak <= bound, "peak {peak} bytes > {bound}");
    // Stationary data: cells stay disjoint, at most `ABSORB_SPAN` units of k (3π/δ ≈ 0.0047).
    let eps = s.rank_error_bound();
    assert!(
        eps <= 3.0 * std::f64::consts::PI / f64::from(DEFAULT_COMPRESSION),
        "bound {eps}"
    );
}

#[test]
fn cdf_and_quantiles_follow_the_data() {
    let xs = sample(100_000, 70, |r| r.random::<f64>() * 100.0);
    let s = sketch(&xs);
    let sorted = sorted_finite(&xs);
    let eps = s.rank_error_bound();
    for q in [0.0, 0.01, 0.25, 0.5, 0.9, 0.999, 1.0] {
        let x = s.quantile(q).unwrap();
        let rank = sorted.partition_point(|v| *v <= x) as f64 / sorted.len() as f64;
        assert!(
            (rank - q).abs() <= eps + 1e-5,
            "q {q}: x {x} has rank {rank}"
        );
        let est = s.cdf(x).unwrap();
        assert!((est - rank).abs() <= eps + 1e-12);
    }
    assert_eq!(s.min(), sorted.first().copied());
    assert_eq!(s.max(), sorted.last().copied());
    assert_eq!(s.quantile(0.0), sorted.first().copied());
    assert_eq!(s.quantile(1.0), sorted.last().copied());
    assert!(QuantileSketch::default().quantile(0.5).is_none());
}

#[test]
fn non_finite_values_are_not_counted_and_empty_compares_to_none() {
    let mut s = QuantileSketch::default();
    assert!(!s.insert(f64::NAN) && !s.insert(f64::INFINITY));
    assert!(s.is_empty());
    assert!(compare(&s, &sketch(&[1.0])).is_none());
    assert!(s.insert(1.0));
    assert_eq!(s.count(), 1);
}

#[test]
fn serde_round_trip_keeps_every_answer() {
    let xs = sample(50_123, 80, |r| r.random::<f64>().powi(3) * 1e3);
    let s = sketch(&xs); // cells plus a partly filled buffer
    let json = serde_json::to_string(&s).unwrap();
    let back: QuantileSketch = serde_json::from_str(&json).unwrap();
    assert_eq!(back.count(), s.count());
    let other = sketch(&sample(7_000, 81, |r| r.random::<f64>() * 1e3));
    assert_eq!(compare(&s, &other), compare(&back, &other));
    assert_eq!(back.rank_error_bound(), s.rank_error_bound());
    // Atoms are written as [value, count].
    let small = QuantileSketch::from_values(100, &[2.0, 1.0, 2.0]);
    assert_eq!(
        serde_json::to_string(&small).unwrap(),
        r#"{"compression":100,"count":3,"cells":[[1.0,1],[2.0,2]]}"#
    );
}

#[test]
fn invalid_serialized_sketches_are_rejected() {
    let bad = [
        (
            r#"{"compression":5,"count":0,"cells":[]}"#,
            "compression must be between",
        ),
        (
            r#"{"compression":100,"count":2,"cells":[[1.0,1]]}"#,
            "add up to 1, not to count 2",
        ),
        (
            r#"{"compression":100,"count":1,"cells":[[2.0,1.0,1]]}"#,
            "cell 0 is invalid",
        ),
        (
            r#"{"compression":100,"count":1,"cells":[[1.0,2.0,1]]}"#,
            "cell 0 is invalid",
        ),
        (
            r#"{"compression":100,"count":0,"cells":[[1.0,0]]}"#,
            "cell 0 is invalid",
        ),
        (
            r#"{"compression":100,"count":1,"cells":[[1.0,1]],"x":1}"#,
            "unknown field",
        ),
    ];
    for (json, msg) in bad {
        let e = serde_json::from_str::<QuantileSketch>(json)
            .unwrap_err()
            .to_string();
        assert!(e.contains(msg), "{json}: {e}");
    }
    let many: Vec<String> = (0..300).map(|i| format!("[{i}.0,1]")).collect();
    let json = format!(
        r#"{{"compression":100,"count":300,"cells":[{}]}}"#,
        many.join(",")
    );
    let e = serde_json::from_str::<QuantileSketch>(&json)
        .unwrap_err()
        .to_string();
    assert!(e.contains("exceed the limit"), "{e}");
}

/// Real data: columns of statsmodels' bundled RAND Health Insurance Experiment data
/// (20 190 rows) and Fair's affairs data, split as `scripts/gen/sketch.py` says,
/// with scipy's `ks_2samp` and `wasserstein_distance` on the full columns.
#[test]
fn real_data_sets_match_scipy_within_the_spec() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sketch/real.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let fx: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let get = |k: &str| -> Vec<f64> {
            case[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let (a, b) = (get("reference"), get("window"));
        let (sa, sb) = (sketch(&a), sketch(&b));
        let c = compare(&sa, &sb).unwrap();
        let scipy_ks = case["ks_statistic"].as_f64().unwrap();
        let scipy_w1 = case["wasserstein"].as_f64().unwrap();
        let scipy_p = case["ks_pvalue"].as_f64().unwrap();
        let std_a = case["reference_std"].as_f64().unwrap();
        let ks_err = (c.ks_statistic - scipy_ks).abs();
        let w1_err = (c.wasserstein - scipy_w1).abs();
        eprintln!(
            "{name}: n {}/{}, KS {:.5} (scipy {scipy_ks:.5}), W1 {:.5} (scipy {scipy_w1:.5}), bounds {:.1e}/{:.1e}",
            a.len(),
            b.len(),
            c.ks_statistic,
            c.wasserstein,
            c.ks_error_bound,
            c.wasserstein_error_bound
        );
        assert!(
            ks_err <= 0.005 && ks_err <= c.ks_error_bound + 1e-12,
            "{name}: KS error {ks_err}"
        );
        assert!(
            w1_err <= w1_tolerance(scipy_w1, std_a) && w1_err <= c.wasserstein_error_bound + 1e-9,
            "{name}: W1 {} vs scipy {scipy_w1}",
            c.wasserstein
        );
        // Forced approximation (δ = 100, far below the default): still within the bounds.
        let (ta, tb) = (
            QuantileSketch::from_values(100, &a),
            QuantileSketch::from_values(100, &b),
        );
        let t = compare(&ta, &tb).unwrap();
        assert!(
            (t.ks_statistic - scipy_ks).abs() <= t.ks_error_bound + 1e-12,
            "{name}: {t:?}"
        );
        assert!(
            (t.wasserstein - scipy_w1).abs() <= t.wasserstein_error_bound + 1e-9,
            "{name}: {t:?}"
        );
        // The p-value from the true counts: exact when the statistic is.
        if c.ks_error_bound == 0.0 {
            let p = c.ks_pvalue().unwrap();
            assert!(
                (p - scipy_p).abs() <= 1e-9 + 1e-6 * scipy_p,
                "{name}: p {p} vs {scipy_p}"
            );
        }
    }
}

/// Throughput figures (run with `cargo test --release --lib sketch_speed -- --ignored
/// --nocapture`): nanoseconds per insert, and per comparison of two full sketches.
#[test]
#[ignore]
fn sketch_speed() {
    let xs = sample(2_000_000, 90, |r| r.random::<f64>());
    let t = std::time::Instant::now();
    let mut s = QuantileSketch::default();
    for x in &xs {
        s.insert(*x);
    }
    let per_insert = t.elapsed().as_nanos() as f64 / xs.len() as f64;
    let other = sketch(&xs[..500_000]);
    let t = std::time::Instant::now();
    let rounds = 200;
    for _ in 0..rounds {
        std::hint::black_box(compare(&s, &other));
    }
    let per_compare = t.elapsed().as_micros() as f64 / f64::from(rounds);
    let buckets: Vec<QuantileSketch> = xs.chunks(200_000).map(sketch).collect();
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(QuantileSketch::union(&buckets));
    }
    let per_union = t.elapsed().as_micros() as f64 / f64::from(rounds);
    eprintln!(
        "insert {per_insert:.0} ns, compare {per_compare:.0} µs ({} + {} cells), union of 10 buckets {per_union:.0} µs",
        s.len(),
        other.len()
    );
}

#[test]
fn window_sketches_meet_the_spec_at_the_window_compression() {
    // A live window: one bucket (a burst) or ten (a full window), each a sketch at
    // `drift.sketch_compression`, against a baseline column sketched at the default.
    let delta = crate::config::DEFAULT_SKETCH_COMPRESSION;
    let n = 100_000;
    let normal = Normal::new(0.0, 1.0).unwrap();
    let lognormal = LogNormal::new(0.0, 1.0).unwrap();
    let pareto = Pareto::new(1.0, 2.5).unwrap();
    let t3 = StudentT::new(3.0).unwrap();
    let money = |r: &mut SmallRng, zero: f64, scale: f64| {
        if r.random::<f64>() < zero {
            0.0
        } else {
            (lognormal.sample(r) * scale).round()
        }
    };
    let cases: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        (
            "normal, shift 0.1σ",
            sample(2 * n, 50, |r| normal.sample(r)),
            sample(n, 51, |r| normal.sample(r) + 0.1),
        ),
        (
            "lognormal, scale ×1.1",
            sample(2 * n, 52, |r| lognormal.sample(r)),
            sample(n, 53, |r| 1.1 * lognormal.sample(r)),
        ),
        (
            "pareto 2.5",
            sample(2 * n, 54, |r| pareto.sample(r)),
            sample(n, 55, |r| pareto.sample(r)),
        ),
        (
            "student t3, shift",
            sample(2 * n, 56, |r| t3.sample(r)),
            sample(n, 57, |r| t3.sample(r) + 0.05),
        ),
        (
            "zero-inflated money (ties + skew)",
            sample(2 * n, 58, |r| money(r, 0.4, 1000.0)),
            sample(n, 59, |r| money(r, 0.45, 1100.0)),
        ),
    ];
    for (name, a, b) in &cases {
        // The baseline's sketch as in its file, and as the sidecar keeps it installed.
        let file = sketch(a);
        let installed = file.recompressed(REFERENCE_COMPRESSION);
        assert!(
            installed.len() <= REFERENCE_COMPRESSION as usize + 1,
            "{name}"
        );
        assert_eq!(
            (installed.count(), installed.min(), installed.max()),
            (file.count(), file.min(), file.max())
        );
        for (reference, sa) in [("file", &file), ("installed", &installed)] {
            for buckets in [1, 10] {
                let parts: Vec<QuantileSketch> = b
                    .chunks(b.len() / buckets)
                    .map(|c| QuantileSketch::from_values(delta, c))
                    .collect();
                assert!(parts.iter().all(|p| p.len() <= delta as usize + 1));
                let window = QuantileSketch::union(&parts);
                let (ks_err, w1_err) = check(name, a, b, sa, &window);
                eprintln!("δ={delta}, {buckets} bucket(s), {reference} reference, {name}: KS error {ks_err:.2e}, W1 error {w1_err:.2e}");
            }
        }
    }
}

#[test]
fn recompression_keeps_small_sketches_exact_and_bounds_large_ones() {
    // Few distinct values: still exact at the lower compression.
    let codes: Vec<f64> = (0..50_000).map(|i| f64::from(i % 300)).collect();
    let s = sketch(&codes).recompressed(REFERENCE_COMPRESSION);
    assert_eq!(s.rank_error_bound(), 0.0);
    assert_eq!(s.count(), 50_000);
    // A coarser sketch is returned as it is.
    let coarse = QuantileSketch::from_values(100, &codes);
    assert_eq!(coarse.recompressed(REFERENCE_COMPRESSION), coarse);
    // Many distinct values: at most δ + 1 cells, and the bounds still hold.
    let normal = Normal::new(0.0, 1.0).unwrap();
    let a = sample(200_000, 60, |r| normal.sample(r));
    let b = sample(50_000, 61, |r| normal.sample(r) + 0.05);
    let r = sketch(&a).recompressed(REFERENCE_COMPRESSION);
    assert!(r.len() <= REFERENCE_COMPRESSION as usize + 1);
    assert!(r.memory_bytes() <= 24 * (REFERENCE_COMPRESSION as usize + 1));
    check("normal, recompressed reference", &a, &b, &r, &sketch(&b));
}

#[test]
fn span_test_answers_as_asin_does() {
    // `span_within` decides most spans from bounds of k; every answer must be the one the
    // two `asin` give, including spans a hair either side of the limit and q = 0 or 1.
    let mut rng = SmallRng::seed_from_u64(13);
    let mut decided_by_asin_alone = 0;
    for &delta in &[MIN_COMPRESSION, 200, 2000, MAX_COMPRESSION] {
        for _ in 0..20_000 {
            let n: u64 = rng.random_range(1..1_000_000);
            let nf = n as f64;
            let before = rng.random_range(0..=n);
            let span = if rng.random::<bool>() {
                1.0
            } else {
                ABSORB_SPAN
            };
            let l = before as f64 / nf;
            // A right end near the limit: the exact q where the span reaches `span`, moved
            // by a few values either way (or anywhere, a third of the time).
            let k_limit = scale(l, delta) + span;
            let arg = (k_limit * 2.0 * std::f64::consts::PI / f64::from(delta))
                .min(std::f64::consts::FRAC_PI_2);
            let q_limit = (arg.sin() + 1.0) / 2.0;
            let right = if rng.random_range(0..3) == 0 {
                rng.random_range(before..=n)
            } else {
                let c = (q_limit * nf) as i64 + rng.random_range(-3..=3);
                c.clamp(before as i64, n as i64) as u64
            };
            let r = right as f64 / nf;
            let exact = scale(r, delta) - scale(l, delta) <= span;
            let mut start = SpanStart::new(l);
            assert_eq!(
                span_within(&mut start, r, span, delta),
                exact,
                "δ {delta}, l {l}, r {r}, span {span}"
            );
            decided_by_asin_alone += usize::from(start.k.is_some());
        }
    }
    // Two thirds of these spans are within three values of the limit, where the bounds
    // often cannot decide; they still decide most (on real flushes, nearly all).
    assert!(decided_by_asin_alone < 40_000, "{decided_by_asin_alone}");
}

#[test]
fn merged_runs_read_events_in_sorted_order() {
    // The tournament over a union's runs gives the order a sort of the whole list gives:
    // ties across runs (the same x, jump and slope), empty runs, one run, 2^k and 2^k + 1
    // runs (the padding of the tree).
    let mut rng = SmallRng::seed_from_u64(77);
    for runs in [1_usize, 2, 3, 8, 11, 16, 17] {
        let mut ev = Vec::new();
        let mut ranges = Vec::new();
        for r in 0..runs {
            let start = ev.len();
            let len = if r % 5 == 4 {
                0
            } else {
                rng.random_range(0..300)
            };
            let mut run: Vec<Event> = (0..len)
                .map(|_| Event {
                    x: f64::from(rng.random_range(-20_i32..20)) / 4.0,
                    jump: f64::from(rng.random_range(1_u32..3)),
                    ds: f64::from(rng.random_range(-1_i32..2)) * 0.5,
                    interior: 0,
                })
                .collect();
            run.sort_by(event_order);
            ev.extend(run);
            ranges.push(start..ev.len());
        }
        let slices = ranges.into_iter().map(|r| ev[r].iter().copied()).collect();
        let merged: Vec<(u64, u64, u64)> = MergedRuns::new(slices)
            .map(|e| (e.x.to_bits(), e.jump.to_bits(), e.ds.to_bits()))
            .collect();
        let mut sorted = ev.clone();
        sorted.sort_by(event_order);
        let sorted: Vec<(u64, u64, u64)> = sorted
            .iter()
            .map(|e| (e.x.to_bits(), e.jump.to_bits(), e.ds.to_bits()))
            .collect();
        assert_eq!(merged, sorted, "{runs} runs");
    }
}

#[test]
fn cell_runs_give_the_events_written_and_sorted() {
    // The union's usual path makes each part's events from its cells as the merge reads
    // them; the fallback writes every part's events, sorts each part and merges the
    // lists. Both must read the same events in the same order (to the bit): saturated
    // buckets (range cells), exact ones (atoms), ties across parts, atoms next to range
    // cells that start or end at their value, subnormal widths, and overlapping cells
    // (which the check must send to the fallback).
    let mut rng = SmallRng::seed_from_u64(78);
    let bits = |e: Event| (e.x.to_bits(), e.jump.to_bits(), e.ds.to_bits(), e.interior);
    let mut fallbacks = 0;
    for case in 0..400 {
        let parts = 1 + case % 12;
        let mut cell_lists: Vec<Vec<Cell>> = Vec::new();
        for _ in 0..parts {
            let mut cells = Vec::new();
            let mut x = f64::from(rng.random_range(-8_i32..8)) / 2.0;
            for _ in 0..rng.random_range(0..60) {
                let kinds = if case % 5 == 0 { 5 } else { 4 };
                let c = match rng.random_range(0..kinds) {
                    0 | 1 => Cell::atom(x, rng.random_range(1..4)),
                    2 => Cell {
                        lo: x,
                        hi: x + f64::from(rng.random_range(1_i32..4)) / 2.0,
                        count: rng.random_range(2..9),
                    },
                    3 => Cell {
                        lo: x,
                        hi: x + f64::MIN_POSITIVE * 0.5,
                        count: rng.random_range(3..9),
                    },
                    _ => Cell {
                        // Overlaps what comes next when the gap below is small.
                        lo: x,
                        hi: x + 3.0,
                        count: 5,
                    },
                };
                cells.push(c);
                // Now and then touching (the next cell starts where this one ends: an
                // atom there is out of order before a range cell), mostly apart.
                x = if rng.random_range(0..40) == 0 {
                    c.hi
                } else {
                    c.hi + f64::from(rng.random_range(1_i32..4)) / 2.0
                };
            }
            cell_lists.push(cells);
        }
        let mut written = Vec::new();
        for cells in &cell_lists {
            push_events(&mut written, cells);
        }
        written.sort_by(event_order);
        let want: Vec<_> = written.into_iter().map(bits).collect();
        if cell_lists.iter().all(|c| events_in_order(c)) {
            let runs = cell_lists.iter().map(|c| CellEvents::new(c)).collect();
            let got: Vec<Event> = MergedRuns::new(runs).collect();
            assert!(
                got.is_sorted_by(|a, b| event_order(a, b).is_le()),
                "case {case}: out of order"
            );
            // Equal events may come in another order (only `interior` tells them apart).
            let got: Vec<_> = got.into_iter().map(bits).collect();
            let (mut g, mut w) = (got.clone(), want.clone());
            g.sort_unstable();
            w.sort_unstable();
            assert_eq!(g, w, "case {case}");
        } else {
            fallbacks += 1;
        }
        let sketches: Vec<QuantileSketch> = cell_lists
            .iter()
            .map(|cells| QuantileSketch {
                compression: DEFAULT_COMPRESSION,
                count: cells.iter().map(|c| c.count).sum(),
                cells: cells.clone(),
                buffer: Vec::new(),
            })
            .collect();
        let refs: Vec<&QuantileSketch> = sketches.iter().collect();
        if let Some((cdf, ..)) = Cdf::of_union(&refs) {
            let mut all = Vec::new();
            for cells in &cell_lists {
                push_events(&mut all, cells);
            }
            let n = refs.iter().map(|s| s.count).sum();
            all.sort_by(event_order);
            let len = all.len();
            let (whole, _) = Cdf::from_sorted(all.into_iter(), len, n);
            let b = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(b(&cdf.xs), b(&whole.xs), "case {case}");
            assert_eq!(b(&cdf.left), b(&whole.left), "case {case}");
            assert_eq!(b(&cdf.right), b(&whole.right), "case {case}");
        }
    }
    assert!(
        (20..380).contains(&fallbacks),
        "{fallbacks} of 400 cases overlapped"
    );
}
