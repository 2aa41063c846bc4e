//! `mlmon::stats` checked against numpy / scipy.
//!
//! The fixtures in `tests/fixtures/stats/` are produced by `scripts/gen/stats.py`
//! (numpy + scipy, fixed seeds); no expected value here is computed by mlmon. Regenerate
//! with `python scripts/gen/stats.py` after installing `tests/py/requirements.txt`.

use std::path::PathBuf;

use mlmon::stats;
use serde_json::Value;

/// Tolerance for the "exact" statistics: scipy's value to 1e-9, relative for large values.
const TOL: f64 = 1e-9;
/// The KS asymptotic p-value must match scipy to 1e-3 absolute (it does to ~1e-12).
const KS_P_TOL: f64 = 1e-3;

fn load(name: &str) -> Vec<Value> {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "fixtures",
        "stats",
        name,
    ]
    .iter()
    .collect();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()));
    let cases = doc["cases"]
        .as_array()
        .expect("fixture has a cases array")
        .clone();
    assert!(!cases.is_empty(), "fixture {name} has no cases");
    cases
}

/// A sample as encoded by the generator: exact decimal strings, "nan", "inf", "-inf"
/// (parsed by Rust's correctly rounded `str::parse`).
fn sample(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("sample is an array")
        .iter()
        .map(|x| match x.as_str().expect("sample value is a string") {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            s => s.parse().expect("sample value is a decimal number"),
        })
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array of numbers")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array()
        .expect("array of counts")
        .iter()
        .map(|x| x.as_u64().expect("non-negative integer"))
        .collect()
}

fn name(case: &Value) -> String {
    case["name"].as_str().unwrap_or("?").to_owned()
}

fn close(actual: f64, expected: f64, tol: f64) -> bool {
    (actual - expected).abs() <= tol * expected.abs().max(1.0)
}

/// Compares an optional result with an optional (null) expectation.
fn check_opt(what: &str, case: &str, actual: Option<f64>, expected: &Value, tol: f64) {
    match (actual, expected.as_f64()) {
        (None, None) => {}
        (Some(a), Some(e)) => assert!(
            close(a, e, tol),
            "{what} [{case}]: mlmon {a:.17e} vs scipy {e:.17e} (diff {:.3e})",
            a - e
        ),
        (a, _) => panic!("{what} [{case}]: mlmon {a:?} vs scipy {expected}"),
    }
}

#[test]
fn bin_index_matches_numpy_searchsorted() {
    for case in load("bins.json") {
        let edges = sample(&case["edges"]);
        let values = sample(&case["values"]);
        let expected = counts(&case["indices"]);
        for (v, &e) in values.iter().zip(&expected) {
            assert_eq!(
                stats::bin_index(&edges, *v) as u64,
                e,
                "[{}] value {v}",
                name(&case)
            );
        }
        let mut by_bin = vec![0_u64; edges.len() + 1];
        for &e in &expected {
            by_bin[e as usize] += 1;
        }
        assert_eq!(
            stats::bin_counts(&edges, &values),
            by_bin,
            "[{}]",
            name(&case)
        );
    }
}

#[test]
fn quantile_edges_match_numpy() {
    for case in load("quantile_edges.json") {
        let sorted = stats::sorted_finite(&sample(&case["values"]));
        let by_bins = case["edges_by_bins"].as_object().expect("edges_by_bins");
        for (bins, expected) in by_bins {
            let n_bins: usize = bins.parse().expect("bin count");
            let edges = stats::quantile_edges(&sorted, n_bins);
            let expected = floats(expected);
            assert_eq!(
                edges.len(),
                expected.len(),
                "[{} bins={n_bins}] {edges:?} vs {expected:?}",
                name(&case)
            );
            for (a, e) in edges.iter().zip(&expected) {
                assert!(
                    close(*a, *e, TOL),
                    "[{} bins={n_bins}] {a} vs {e}",
                    name(&case)
                );
            }
            assert!(
                edges.windows(2).all(|w| w[0] < w[1]),
                "edges strictly increase"
            );
        }
    }
}

#[test]
fn quantiles_and_summary_match_numpy() {
    for case in load("quantiles.json") {
        let values = sample(&case["values"]);
        let qs = floats(&case["qs"]);
        let got = stats::quantiles(&values, &qs);
        match (&got, case["quantiles"].is_null()) {
            (None, true) => {}
            (Some(got), false) => {
                for (a, e) in got.iter().zip(floats(&case["quantiles"])) {
                    assert!(close(*a, e, TOL), "[{}] {a} vs {e}", name(&case));
                }
            }
            _ => panic!(
                "[{}] quantiles {got:?} vs {}",
                name(&case),
                case["quantiles"]
            ),
        }
        let s = stats::summary(&values);
        let want = &case["summary"];
        match s {
            None => assert!(want.is_null(), "[{}] summary missing", name(&case)),
            Some(s) => {
                assert_eq!(
                    s.count as u64,
                    want["count"].as_u64().unwrap(),
                    "[{}]",
                    name(&case)
                );
                check_opt("mean", &name(&case), Some(s.mean), &want["mean"], TOL);
                // numpy's uncompensated two-pass std is itself ~1e-8 off the exact value for
                // 1e12-offset data (mlmon's compensated sum is closer); 1e-9 everywhere else.
                let std_tol = if name(&case) == "large_offset" {
                    1e-7
                } else {
                    TOL
                };
                check_opt("std", &name(&case), Some(s.std), &want["std"], std_tol);
                check_opt("min", &name(&case), Some(s.min), &want["min"], 1e-15);
                check_opt("max", &name(&case), Some(s.max), &want["max"], 1e-15);
            }
        }
    }
}

#[test]
fn psi_matches_reference_formula() {
    for case in load("psi.json") {
        let expected = floats(&case["expected"]);
        let actual = counts(&case["actual_counts"]);
        let got = stats::psi_counts(&expected, &actual);
        check_opt("psi", &name(&case), got, &case["psi"], TOL);
    }
}

#[test]
fn js_matches_scipy_jensenshannon_squared() {
    for case in load("js.json") {
        let expected = floats(&case["expected"]);
        let got = if case.get("actual_counts").is_some() {
            stats::js_divergence_counts(&expected, &counts(&case["actual_counts"]))
        } else {
            stats::js_divergence(&expected, &floats(&case["actual_weights"]))
        };
        check_opt("js", &name(&case), got, &case["js"], TOL);
    }
}

#[test]
fn ks_and_wasserstein_match_scipy() {
    for case in load("two_sample.json") {
        let (a, b) = (sample(&case["a"]), sample(&case["b"]));
        let n = name(&case);
        let ks = stats::ks_2samp(&a, &b);
        check_opt(
            "ks statistic",
            &n,
            ks.map(|r| r.statistic),
            &case["ks_statistic"],
            1e-12,
        );
        check_opt(
            "ks pvalue",
            &n,
            ks.map(|r| r.pvalue),
            &case["ks_pvalue_mlmon"],
            KS_P_TOL,
        );
        // The sorted O(n+m) entry points agree with the sorting ones.
        let (sa, sb) = (stats::sorted_finite(&a), stats::sorted_finite(&b));
        assert_eq!(stats::ks_2samp_sorted(&sa, &sb), ks, "[{n}]");
        let w = stats::wasserstein(&a, &b);
        check_opt("wasserstein", &n, w, &case["wasserstein"], TOL);
        assert_eq!(stats::wasserstein_sorted(&sa, &sb), w, "[{n}]");
    }
}

#[test]
fn kstwo_sf_matches_scipy_over_all_branches() {
    let mut worst = (0.0_f64, 0_u64, 0.0_f64);
    for case in load("kstwo.json") {
        let n = case["n"].as_u64().unwrap();
        let d = case["d"].as_f64().unwrap();
        let want = case["sf"].as_f64().unwrap();
        let got = stats::kstwo_sf(d, n);
        let err = (got - want).abs();
        if err > worst.0 {
            worst = (err, n, d);
        }
        assert!(
            err <= KS_P_TOL,
            "kstwo.sf(d={d}, n={n}): mlmon {got} vs scipy {want}"
        );
    }
    // Much tighter than required: the port follows scipy's algorithm choices exactly.
    eprintln!(
        "kstwo.sf: largest |mlmon - scipy| = {:.3e} at n={}, d={}",
        worst.0, worst.1, worst.2
    );
    assert!(worst.0 < 1e-7, "largest deviation {worst:?}");
}

#[test]
fn ks_pvalue_from_statistic_matches_scipy() {
    let mut worst = 0.0_f64;
    for case in load("ks_pvalue.json") {
        let n1 = case["n1"].as_u64().unwrap() as usize;
        let n2 = case["n2"].as_u64().unwrap() as usize;
        let d = case["d"].as_f64().unwrap();
        let want = case["pvalue_mlmon"].as_f64().unwrap();
        let got = stats::ks_pvalue_asymp(d, n1, n2).expect("non-empty samples");
        assert!(
            (got - want).abs() <= KS_P_TOL,
            "ks p-value d={d} n1={n1} n2={n2}: mlmon {got} vs scipy {want}"
        );
        worst = worst.max((got - want).abs());
    }
    eprintln!("ks asymptotic p-value: largest |mlmon - scipy| = {worst:.3e}");
}

#[test]
fn chi2_matches_scipy_chisquare() {
    for case in load("chi2.json") {
        let n = name(&case);
        let observed = counts(&case["observed"]);
        let expected = floats(&case["expected"]);
        let got = stats::chi2_gof(&observed, &expected);
        check_opt(
            "chi2 statistic",
            &n,
            got.map(|r| r.statistic),
            &case["statistic"],
            TOL,
        );
        check_opt(
            "chi2 pvalue",
            &n,
            got.map(|r| r.pvalue),
            &case["pvalue"],
            TOL,
        );
        if let Some(r) = got {
            assert_eq!(r.dof as u64, case["dof"].as_u64().unwrap(), "[{n}]");
            let f_exp = stats::chi2_expected_counts(&observed, &expected).unwrap();
            for (a, e) in f_exp.iter().zip(floats(&case["f_exp"])) {
                assert!(close(*a, e, TOL), "[{n}] f_exp {a} vs {e}");
            }
        }
    }
}

#[test]
fn categorical_alignment_and_statistics_match() {
    for case in load("categorical.json") {
        let n = name(&case);
        let baseline: Vec<(String, f64)> = case["baseline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_f64().unwrap()))
            .collect();
        let window: Vec<(String, u64)> = case["window"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_u64().unwrap()))
            .collect();
        let aligned = stats::align_categories(baseline, window);
        let labels: Vec<&str> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(aligned.labels, labels, "[{n}]");
        assert_eq!(aligned.expected, floats(&case["expected"]), "[{n}]");
        assert_eq!(aligned.observed, counts(&case["observed"]), "[{n}]");
        check_opt("psi", &n, aligned.psi(), &case["psi"], TOL);
        check_opt("js", &n, aligned.js_divergence(), &case["js"], TOL);
        let chi = aligned.chi2();
        check_opt(
            "chi2",
            &n,
            chi.map(|c| c.statistic),
            &case["chi2_statistic"],
            TOL,
        );
        check_opt(
            "chi2 p",
            &n,
            chi.map(|c| c.pvalue),
            &case["chi2_pvalue"],
            TOL,
        );
    }
}

/// The no-drift PSI quantiles of `adaptive` against Monte-Carlo quantiles of PSI for
/// multinomial windows (200 000 replications each). Documented accuracy: within ~10 % once
/// every bin expects ≥ 20 window values, and never overstating noise by more than ~10 % nor
/// understating it by more than ~30 % down to 5 expected values per bin.
#[test]
fn adaptive_psi_quantiles_match_simulation() {
    let mut checked = 0;
    for case in load("adaptive.json") {
        let n = name(&case);
        let expected = floats(&case["expected"]);
        let window_n = case["window_n"].as_u64().unwrap();
        let baseline_n = case["baseline_n"].as_u64();
        let min_count = stats::min_expected_count(&expected, window_n).unwrap();
        assert!(close(
            min_count,
            case["min_expected_count"].as_f64().unwrap(),
            1e-12
        ));
        if min_count < 5.0 {
            continue; // outside the documented range of the model
        }
        let (lo, hi) = if min_count >= 20.0 {
            (0.9, 1.1)
        } else {
            (0.9, 1.35)
        };
        for (q, key) in [
            (stats::WARNING_QUANTILE, "q99"),
            (stats::CRITICAL_QUANTILE, "q999"),
        ] {
            let model = stats::psi_null_quantile(&expected, window_n, baseline_n, q).unwrap();
            let sim = case[key].as_f64().unwrap();
            let ratio = sim / model;
            assert!(
                (lo..=hi).contains(&ratio),
                "[{n}] {key}: simulated {sim:.5} vs model {model:.5} (ratio {ratio:.3})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 100, "only {checked} adaptive comparisons ran");
}

#[test]
fn nan_and_empty_inputs_never_panic() {
    let nan = [f64::NAN, f64::NAN];
    let inf = [f64::INFINITY, f64::NEG_INFINITY];
    assert_eq!(stats::ks_2samp(&nan, &[1.0]), None);
    assert_eq!(stats::ks_2samp(&inf, &[1.0]), None);
    assert_eq!(stats::wasserstein(&[], &[]), None);
    assert_eq!(stats::quantiles(&nan, &[0.5]), None);
    assert_eq!(stats::summary(&inf), None);
    assert_eq!(stats::psi(&[f64::NAN], &[1.0]), None);
    assert_eq!(stats::js_divergence(&[f64::NAN, 1.0], &[1.0, 0.0]), None);
    assert_eq!(stats::chi2_gof(&[], &[]), None);
    assert!(stats::quantile_edges(&nan, 10).is_empty());
    assert!(stats::kstwo_sf(f64::NAN, 10).is_nan());
    assert_eq!(stats::ks_pvalue_asymp(f64::NAN, 3, 3), None);
}
