//! `mlmon performance` end to end: a baseline built by `mlmon baseline build` from a loan
//! model with a 0.65 decision threshold, then batches scored chunk by chunk. Realized
//! metrics appear only where targets are present (checked against counts made here),
//! estimates with sampling errors everywhere, the threshold is learnt from the baseline,
//! and the exit code follows the worst chunk (0 ok, 2 critical, 3 error).

use std::io::Write;
use std::process::{Command, Output};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

fn mlmon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mlmon"))
        .args(args)
        .output()
        .expect("run mlmon")
}

/// Rows `(timestamp, score, predicted, target)` of a calibrated model with threshold 0.65.
fn rows(rng: &mut StdRng, n: usize, start: u64) -> Vec<(u64, f64, u8, u8)> {
    (0..n)
        .map(|i| {
            let score: f64 = rng.random::<f64>().powf(0.8);
            let y = u8::from(rng.random::<f64>() < score);
            (start + i as u64 * 60, score, u8::from(score >= 0.65), y)
        })
        .collect()
}

fn csv(dir: &tempfile::TempDir, name: &str, rows: &[(u64, f64, u8, u8)], targets: usize) -> String {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "time,score,y_pred,y").unwrap();
    for (i, (t, s, p, y)) in rows.iter().enumerate() {
        let y = if i < targets {
            y.to_string()
        } else {
            String::new()
        };
        writeln!(f, "{t},{s},{p},{y}").unwrap();
    }
    path.display().to_string()
}

fn baseline(dir: &tempfile::TempDir, rng: &mut StdRng) -> String {
    let input = csv(dir, "reference.csv", &rows(rng, 4000, 0), 4000);
    let out = dir.path().join("baseline.json").display().to_string();
    let b = mlmon(&[
        "baseline",
        "build",
        "--input",
        &input,
        "--output",
        &out,
        "--prediction",
        "y_pred",
        "--target",
        "y",
        "--exclude",
        "time",
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    out
}

#[test]
fn chunks_realized_where_targets_and_estimates_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(12);
    let base = baseline(&dir, &mut rng);
    let batch = rows(&mut rng, 3000, 1_800_000_000);
    // Targets for the first 1500 rows only: three chunks of 1000 rows, the last without.
    let input = csv(&dir, "batch.csv", &batch, 1500);
    let out = mlmon(&[
        "performance",
        "--baseline",
        &base,
        "--input",
        &input,
        "--prediction",
        "y_pred",
        "--probability",
        "score",
        "--target",
        "y",
        "--chunk-size",
        "1000",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chunks = doc["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 3);
    assert_eq!(doc["positive_class"], "1");
    // Learnt from the baseline's (score, predicted label) pairs.
    let t = doc["threshold"].as_f64().unwrap();
    assert!((t - 0.65).abs() < 0.01, "threshold {t}");
    for (i, c) in chunks.iter().enumerate() {
        for key in [
            "index",
            "start",
            "end",
            "rows",
            "realized",
            "estimated",
            "sampling_error",
            "status",
        ] {
            assert!(c.get(key).is_some(), "chunk {i} lacks {key}: {c}");
        }
        assert_eq!(c["rows"], 1000);
        assert_eq!(c["start"], i * 1000);
        assert_eq!(c["status"], "ok");
        let est = c["estimated"].as_object().unwrap();
        let se = c["sampling_error"].as_object().unwrap();
        for m in [
            "accuracy",
            "precision",
            "recall",
            "f1",
            "specificity",
            "roc_auc",
        ] {
            assert!(est.contains_key(m) && se.contains_key(m), "chunk {i}: {m}");
            let s = se[m].as_f64().unwrap();
            assert!(s > 0.0 && s < 0.1, "chunk {i}: sampling error of {m} {s}");
        }
    }
    // Chunk 2 has no targets: nothing realized.
    assert!(chunks[2]["realized"].as_object().unwrap().is_empty());
    // Chunk 0: realized accuracy counted here, and the estimate within 4 sampling errors.
    let part = &batch[..1000];
    let correct = part.iter().filter(|(_, _, p, y)| p == y).count() as f64 / 1000.0;
    let realized = chunks[0]["realized"]["accuracy"].as_f64().unwrap();
    assert!((realized - correct).abs() < 1e-12);
    let est = chunks[0]["estimated"]["accuracy"].as_f64().unwrap();
    let se = chunks[0]["sampling_error"]["accuracy"].as_f64().unwrap();
    assert!(
        (est - realized).abs() < 4.0 * se,
        "estimate {est} ± {se} vs {realized}"
    );
    // Chunk 1 holds 500 rows with targets.
    assert_eq!(chunks[1]["rows_with_target"], 500);
}

#[test]
fn a_worse_model_is_critical_and_chunks_follow_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(13);
    let base = baseline(&dir, &mut rng);
    // The labels are wrong half the time: realized accuracy falls far below the baseline.
    let mut batch = rows(&mut rng, 1200, 1_800_000_000);
    for (i, r) in batch.iter_mut().enumerate() {
        if i % 2 == 0 {
            r.3 = 1 - r.2;
        }
    }
    let input = csv(&dir, "batch.csv", &batch, 1200);
    // One row a minute, chunked by the hour: 60 rows each.
    let out = mlmon(&[
        "performance",
        "--baseline",
        &base,
        "--input",
        &input,
        "--prediction",
        "y_pred",
        "--probability",
        "score",
        "--target",
        "y",
        "--chunk-period",
        "1h",
        "--timestamp",
        "time",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chunks = doc["chunks"].as_array().unwrap();
    // 1_800_000_000 is 08:00 UTC on the hour: 20 whole hours of 60 rows.
    assert_eq!(chunks.len(), 20);
    assert_eq!(chunks[0]["start"], "2027-01-15T08:00:00Z");
    assert_eq!(chunks[0]["end"], "2027-01-15T09:00:00Z");
    assert!(chunks.iter().all(|c| c["rows"] == 60));
    assert!(chunks.iter().any(|c| c["status"] == "critical"));
    // The table names the same chunks.
    let table = mlmon(&[
        "performance",
        "--baseline",
        &base,
        "--input",
        &input,
        "--prediction",
        "y_pred",
        "--probability",
        "score",
        "--target",
        "y",
        "--chunk-period",
        "1h",
        "--timestamp",
        "time",
    ]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("2027-01-15T08:00:00Z"), "{text}");
    assert!(text.contains("critical"), "{text}");
}

#[test]
fn bad_input_exits_3_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(14);
    let base = baseline(&dir, &mut rng);
    let input = csv(&dir, "batch.csv", &rows(&mut rng, 10, 0), 10);
    for args in [
        vec!["--probability", "nope"],
        vec!["--chunk-period", "1h", "--timestamp", "y_pred2"],
    ] {
        let mut all = vec!["performance", "--baseline", &base, "--input", &input];
        all.extend(args.iter().copied());
        let out = mlmon(&all);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("batch.csv"), "{err}");
    }
}
