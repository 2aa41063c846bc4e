//! KernelSHAP's coalitions and solve against Shapley values by their definition, and the
//! k-means background summary.

use super::background::kmeans;
use super::shap::{
    coalition_count, coalitions, max_abs_diff, random_game, shapley_by_definition, solve,
};

/// v of each coalition mask, read from a game given per subset bitmask.
fn values(c: &super::shap::Coalitions, game: &[f64]) -> Vec<f64> {
    c.masks
        .iter()
        .map(|m| {
            let idx = m
                .iter()
                .enumerate()
                .filter(|(_, on)| **on)
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            game[idx]
        })
        .collect()
}

#[test]
fn exact_enumeration_gives_the_shapley_values_of_any_game() {
    for m in 2..=10 {
        let game = random_game(m, 40 + m as u64);
        let c = coalitions(m, 4094, 1);
        assert!(c.exact);
        assert_eq!(c.masks.len(), (1 << m) - 2);
        assert_eq!(coalition_count(m, 4094), (1 << m) - 2);
        let v0 = game[0];
        let v1 = game[(1 << m) - 1];
        let phi = solve(&c, &values(&c, &game), v0, v1).unwrap();
        let exact = shapley_by_definition(m, &game);
        assert!(
            max_abs_diff(&phi, &exact) < 1e-10,
            "m={m}: {phi:?} vs {exact:?}"
        );
        let sum: f64 = phi.iter().sum();
        assert!((sum - (v1 - v0)).abs() < 1e-12, "efficiency m={m}");
    }
}

#[test]
fn one_player_gets_the_whole_difference_and_none_is_empty() {
    let c = coalitions(1, 10, 1);
    assert!(c.masks.is_empty());
    assert_eq!(solve(&c, &[], 0.25, 1.0).unwrap(), vec![0.75]);
    assert_eq!(
        solve(&coalitions(0, 10, 1), &[], 0.0, 1.0).unwrap(),
        Vec::<f64>::new()
    );
}

#[test]
fn sampled_coalitions_respect_the_budget_and_efficiency_and_recover_additive_games() {
    let m = 16;
    let budget = 2048;
    let c = coalitions(m, budget, 7);
    assert!(!c.exact);
    assert!(c.masks.len() <= budget, "{} coalitions", c.masks.len());
    assert!(c.masks.len() > budget / 2, "{} coalitions", c.masks.len());
    assert_eq!(coalition_count(m, budget), budget);
    assert!(c.weights.iter().all(|w| *w > 0.0));
    assert!(c
        .masks
        .iter()
        .all(|z| z.iter().any(|b| *b) && !z.iter().all(|b| *b)));
    // Deterministic per seed.
    assert_eq!(c, coalitions(m, budget, 7));
    // Sizes 1 and 15 (32 coalitions) are enumerated whole.
    let singles = c
        .masks
        .iter()
        .filter(|z| z.iter().filter(|b| **b).count() == 1)
        .count();
    assert_eq!(singles, m);
    // An additive game: v(S) = Σ_{j∈S} a_j; every coalition sample gives φ = a exactly.
    let a: Vec<f64> = (0..m).map(|j| (j as f64 - 7.5) / 3.0).collect();
    let v: Vec<f64> = c
        .masks
        .iter()
        .map(|z| {
            z.iter()
                .zip(&a)
                .filter(|(on, _)| **on)
                .map(|(_, x)| x)
                .sum()
        })
        .collect();
    let phi = solve(&c, &v, 0.0, a.iter().sum()).unwrap();
    assert!(max_abs_diff(&phi, &a) < 1e-9, "{phi:?}");
    // A non-additive game: efficiency holds exactly whatever the sample.
    let game = random_game(m, 3);
    let phi = solve(&c, &values(&c, &game), game[0], game[(1 << m) - 1]).unwrap();
    let sum: f64 = phi.iter().sum();
    assert!((sum - (game[(1 << m) - 1] - game[0])).abs() < 1e-12);
}

#[test]
fn sampled_values_approach_the_shapley_values_of_a_smooth_game() {
    // v(S) = sigmoid(Σ_{j∈S} a_j): interactions everywhere, like a logistic model.
    let m = 16;
    let a: Vec<f64> = (0..m).map(|j| ((j * 7) % 11) as f64 / 5.0 - 1.0).collect();
    let game: Vec<f64> = (0..1usize << m)
        .map(|s| {
            let z: f64 = (0..m).filter(|j| s & (1 << j) != 0).map(|j| a[j]).sum();
            1.0 / (1.0 + (-z).exp())
        })
        .collect();
    let exact = shapley_by_definition(m, &game);
    let c = coalitions(m, 2048, 11);
    let phi = solve(&c, &values(&c, &game), game[0], game[(1 << m) - 1]).unwrap();
    let err = max_abs_diff(&phi, &exact);
    let largest = exact.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    // Measured: largest error 0.0050 (2048 of 65534 coalitions).
    assert!(
        err < 0.1 * largest,
        "largest error {err}, largest φ {largest}"
    );
}

#[test]
fn non_finite_outputs_are_refused() {
    let c = coalitions(3, 100, 1);
    let mut v = vec![0.5; c.masks.len()];
    v[2] = f64::NAN;
    assert!(solve(&c, &v, 0.0, 1.0)
        .unwrap_err()
        .contains("not a finite"));
}

#[test]
fn kmeans_summarises_separated_clusters_by_their_sizes() {
    let mut rows = Vec::new();
    for i in 0..30 {
        rows.push(vec![0.0 + (i % 3) as f64 * 0.01, 100.0]);
    }
    for i in 0..10 {
        rows.push(vec![10.0 + (i % 2) as f64 * 0.01, 300.0]);
    }
    let (centres, weights) = kmeans(&rows, 2, 5);
    assert_eq!(centres.len(), 2);
    assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let mut pairs: Vec<(Vec<f64>, f64)> = centres.into_iter().zip(weights).collect();
    pairs.sort_by(|a, b| a.0[0].total_cmp(&b.0[0]));
    assert!((pairs[0].1 - 0.75).abs() < 1e-12 && (pairs[1].1 - 0.25).abs() < 1e-12);
    // Snapped to member values.
    assert!(rows.iter().any(|r| r[0] == pairs[0].0[0]));
    assert_eq!(pairs[1].0[1], 300.0);
    // Fewer distinct rows than k: as many centres as distinct rows.
    let same = vec![vec![1.0, 2.0]; 5];
    let (c, w) = kmeans(&same, 3, 1);
    assert_eq!(c, vec![vec![1.0, 2.0]]);
    assert_eq!(w, vec![1.0]);
}

mod picker {
    use crate::baseline::{ProbabilityInfo, Snapshot};
    use crate::explain::{Output, OutputPicker};
    use crate::record::{FeatureValue, Prediction};

    fn snapshot(classes: &[&str]) -> Snapshot {
        let mut b =
            crate::baseline::BaselineBuilder::new(crate::baseline::BuildOptions::new("m"), 10);
        for i in 0..10 {
            b.push_row(&crate::record::Row {
                values: vec![("x".into(), FeatureValue::Number(i as f64))],
            });
        }
        let mut s = b.finish().unwrap();
        s.probability = Some(ProbabilityInfo {
            columns: classes.iter().map(|c| format!("p_{c}")).collect(),
            classes: classes.iter().map(|c| c.to_string()).collect(),
        });
        s
    }

    fn proba(p: &[f64]) -> Prediction {
        Prediction {
            value: FeatureValue::Missing,
            probabilities: Some(p.to_vec()),
        }
    }

    #[test]
    fn the_positive_class_picks_the_score_column() {
        let p = proba(&[0.7, 0.2, 0.1]);
        // No class order known: the column numbered by an integer positive class, else 1.
        assert_eq!(OutputPicker::new("1", None).output(&p), Output::Score(0.2));
        assert_eq!(OutputPicker::new("0", None).output(&p), Output::Score(0.7));
        assert_eq!(OutputPicker::new("2", None).output(&p), Output::Score(0.1));
        assert_eq!(
            OutputPicker::new("yes", None).output(&proba(&[0.3, 0.7])),
            Output::Score(0.7)
        );
        assert_eq!(
            OutputPicker::new("true", None).output(&proba(&[0.3, 0.7])),
            Output::Score(0.7)
        );
        // The baseline's class order wins.
        let s = snapshot(&["yes", "no"]);
        assert_eq!(
            OutputPicker::new("yes", Some(&s)).output(&proba(&[0.8, 0.2])),
            Output::Score(0.8)
        );
        assert_eq!(
            OutputPicker::new("no", Some(&s)).output(&proba(&[0.8, 0.2])),
            Output::Score(0.2)
        );
        let s = snapshot(&["cat", "dog", "eel"]);
        assert_eq!(
            OutputPicker::new("eel", Some(&s)).output(&p),
            Output::Score(0.1)
        );
        // One score column: that score.
        assert_eq!(
            OutputPicker::new("0", None).output(&proba(&[0.4])),
            Output::Score(0.4)
        );
    }

    #[test]
    fn labels_are_the_positive_class_indicator_for_shap() {
        let label = |l: &str| Prediction {
            value: FeatureValue::Text(l.into()),
            probabilities: None,
        };
        let pick = OutputPicker::new("fraud", None);
        let o = pick.output(&label("fraud"));
        assert_eq!(o, Output::Label("fraud".into()));
        assert_eq!(pick.score(&o), 1.0);
        assert_eq!(pick.score(&pick.output(&label("ok"))), 0.0);
        let num = Prediction {
            value: FeatureValue::Number(3.5),
            probabilities: None,
        };
        assert_eq!(pick.score(&pick.output(&num)), 3.5);
    }
}
