//! Builder tests: builds of the fixture table against numpy/pandas, samples,
//! category pooling, live rows.

use std::path::Path;

use serde_json::Value;

use crate::baseline::test_support::*;
use crate::baseline::*;
use crate::record::{FeatureValue, Prediction};

/// Compares one built entry with the numpy/pandas expectation.
fn check_entry(name: &str, entry: &FeatureBaseline, exp: &Value) {
    let s = &entry.stats;
    assert_eq!(
        entry.kind.as_str(),
        exp["type"].as_str().unwrap(),
        "{name}: type"
    );
    assert_eq!(s.count, exp["count"].as_u64().unwrap(), "{name}: count");
    close(
        s.missing_ratio,
        f(&exp["missing_ratio"]),
        1e-12,
        &format!("{name}: missing_ratio"),
    );
    match entry.kind {
        FeatureType::Numeric => {
            let bins = entry.bins.as_ref().unwrap();
            if s.count == 0 {
                assert!(exp.get("mean").is_none());
                assert!(s.mean.is_none() && s.std.is_none() && entry.sample.is_empty());
                return;
            }
            close(
                s.mean.unwrap(),
                f(&exp["mean"]),
                1e-9,
                &format!("{name}: mean"),
            );
            close(
                s.std.unwrap(),
                f(&exp["std"]),
                1e-9,
                &format!("{name}: std"),
            );
            assert_eq!(s.min.unwrap(), f(&exp["min"]), "{name}: min");
            assert_eq!(s.max.unwrap(), f(&exp["max"]), "{name}: max");
            let q = s.quantiles.unwrap();
            for (k, v) in Quantiles::NAMES.iter().zip(q.values()) {
                close(v, f(&exp["quantiles"][k]), 1e-12, &format!("{name}: {k}"));
            }
            let edges: Vec<f64> = exp["edges"].as_array().unwrap().iter().map(f).collect();
            assert_eq!(bins.edges.len(), edges.len(), "{name}: number of edges");
            for (i, (a, e)) in bins.edges.iter().zip(&edges).enumerate() {
                close(*a, *e, 1e-12, &format!("{name}: edges[{i}]"));
            }
            let props: Vec<f64> = exp["proportions"]
                .as_array()
                .unwrap()
                .iter()
                .map(f)
                .collect();
            assert_eq!(
                bins.proportions.len(),
                props.len(),
                "{name}: number of bins"
            );
            for (i, (a, e)) in bins.proportions.iter().zip(&props).enumerate() {
                close(*a, *e, 1e-12, &format!("{name}: proportions[{i}]"));
            }
            assert_eq!(
                entry.sample.len() as u64,
                s.count,
                "{name}: sample holds every value"
            );
        }
        FeatureType::Categorical => {
            let cats = entry.categories.as_ref().unwrap();
            let exp_cats = exp["categories"].as_object().unwrap();
            assert_eq!(cats.len(), exp_cats.len(), "{name}: categories {cats:?}");
            for (k, p) in exp_cats {
                let got = cats
                    .get(k)
                    .unwrap_or_else(|| panic!("{name}: category {k:?} missing"));
                close(*got, f(p), 1e-12, &format!("{name}: categories.{k}"));
            }
            assert_eq!(s.distinct, exp["distinct"].as_u64(), "{name}: distinct");
        }
    }
}

/// Checks a whole build of the fixture table against expected.json.
fn check_against_expected(snap: &Snapshot) {
    let exp = expected();
    assert_eq!(snap.row_count, exp["rows"].as_u64().unwrap());
    assert_eq!(snap.model.name, "credit-risk");
    let names: Vec<&str> = snap.features.names().collect();
    assert_eq!(
        names,
        [
            "age",
            "income",
            "score",
            "constant",
            "flag",
            "country",
            "zip",
            "mixed",
            "early_text",
            "day",
            "all_missing"
        ],
        "feature order follows the input, without prediction, target and excluded columns"
    );
    for (name, entry) in snap.features.iter() {
        check_entry(name, entry, &exp["columns"][name]);
    }
    check_entry(
        "pred",
        snap.prediction.as_ref().unwrap(),
        &exp["columns"]["pred"],
    );
    check_entry(
        "label",
        snap.target.as_ref().unwrap(),
        &exp["columns"]["label"],
    );
}

#[test]
fn csv_build_matches_numpy_and_pandas() {
    let snap = build("data.csv", &fixture_options());
    check_against_expected(&snap);
    assert_eq!(
        snap.source.as_deref(),
        Some(fixture("data.csv").display().to_string() + " (csv)").as_deref()
    );
    // The column that turned to text after 1500 numeric rows says so.
    let mixed = snap.features.get("mixed").unwrap();
    assert!(
        mixed.notes[0].contains("row 15") && mixed.notes[0].contains("not a number"),
        "{:?}",
        mixed.notes
    );
    // A column whose first value is text is categorical without a note.
    assert!(snap.features.get("early_text").unwrap().notes.is_empty());
}

#[test]
fn jsonl_build_matches_numpy_and_pandas() {
    check_against_expected(&build("data.jsonl", &fixture_options()));
}

#[test]
fn parquet_builds_match_numpy_and_pandas_for_every_codec() {
    for name in [
        "data.parquet",
        "data_zstd.parquet",
        "data_gzip.parquet",
        "data_lz4.parquet",
    ] {
        let snap = build(name, &fixture_options());
        check_against_expected(&snap);
        assert!(
            snap.notes
                .iter()
                .any(|n| n.contains("nested") && n.contains("tags")),
            "{name}: the list column is reported: {:?}",
            snap.notes
        );
    }
}

#[test]
fn every_format_gives_the_same_baseline() {
    let csv = build("data.csv", &fixture_options());
    for name in ["data.jsonl", "data.parquet"] {
        let other = build(name, &fixture_options());
        assert_eq!(other.features, csv.features, "{name}");
        assert_eq!(other.prediction, csv.prediction, "{name}");
        assert_eq!(other.target, csv.target, "{name}");
    }
}

#[test]
fn gzip_compressed_csv_is_read() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(&std::fs::read(fixture("data.csv")).unwrap())
        .unwrap();
    gz.finish().unwrap();
    let snap = build_from_file(&path, None, &fixture_options(), &mut NoProgress).unwrap();
    check_against_expected(&snap);
}

#[test]
fn reference_sample_holds_every_value_when_fewer_than_sample_size() {
    let snap = build("data.csv", &fixture_options());
    let exp = expected();
    let values: Vec<f64> = exp["columns"]["income"]["sorted_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(f)
        .collect();
    assert_eq!(snap.features.get("income").unwrap().sample, values);
}

#[test]
fn reference_sample_is_a_reproducible_seeded_subset() {
    let opts = BuildOptions {
        sample_size: 100,
        ..fixture_options()
    };
    let a = build("data.csv", &opts);
    let b = build("data.csv", &opts);
    let sa = &a.features.get("income").unwrap().sample;
    assert_eq!(sa.len(), 100);
    assert_eq!(
        sa,
        &b.features.get("income").unwrap().sample,
        "same seed, same sample"
    );
    assert_eq!(a.id, b.id, "same input and options give the same id");
    assert!(sa.windows(2).all(|w| w[0] <= w[1]), "sample is sorted");
    let exp = expected();
    let all: Vec<f64> = exp["columns"]["income"]["sorted_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(f)
        .collect();
    assert!(
        sa.iter().all(|v| all.contains(v)),
        "sample values come from the data"
    );
    let c = build("data.csv", &BuildOptions { seed: 1, ..opts });
    assert_ne!(
        sa,
        &c.features.get("income").unwrap().sample,
        "another seed, another sample"
    );
    assert_ne!(a.id, c.id);
}

/// Reads a numeric CSV column of the fixture with the csv crate (independent
/// of the builder's reader).
fn csv_column(name: &str) -> Vec<f64> {
    let mut r = csv::Reader::from_path(fixture("data.csv")).unwrap();
    let idx = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records()
        .filter_map(|rec| rec.unwrap()[idx].parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect()
}

#[test]
fn numeric_entries_carry_a_sketch_of_every_value() {
    // A 100-value reference sample, but the sketch (format 2) holds the whole column: its
    // KS and Wasserstein against the exact column are within its computed bounds.
    let opts = BuildOptions {
        sample_size: 100,
        ..fixture_options()
    };
    let snap = build("data.csv", &opts);
    assert_eq!(snap.format_version, FORMAT_VERSION);
    assert_eq!(FORMAT_VERSION, 2);
    for name in ["age", "income", "score"] {
        let entry = snap.features.get(name).unwrap();
        let sketch = entry
            .sketch
            .as_ref()
            .expect("numeric entries have a sketch");
        assert_eq!(sketch.count(), entry.stats.count, "{name}");
        let values = csv_column(name);
        assert_eq!(values.len() as u64, sketch.count(), "{name}");
        let exact = crate::stats::QuantileSketch::from_values(
            crate::stats::sketch::MAX_COMPRESSION,
            &values,
        );
        let c = crate::stats::compare_sketches(sketch, &exact).unwrap();
        assert!(c.ks_statistic <= c.ks_error_bound + 1e-12, "{name}: {c:?}");
        assert!(
            c.wasserstein <= c.wasserstein_error_bound + 1e-9,
            "{name}: {c:?}"
        );
    }
    let country = snap.features.get("country").unwrap();
    assert!(country.sketch.is_none(), "categorical entries have none");
}

/// Pass 2 from the values pass 1 kept, from a second read of the file, and with a cache
/// budget that runs out half-way: the same snapshot.
#[test]
fn bins_counted_from_the_pass1_cache_equal_a_second_read() {
    let opts = BuildOptions {
        quantile_sample_size: 300,
        sample_size: 100,
        ..fixture_options()
    };
    let path = fixture("data.csv");
    let content = |budget: usize| {
        let mut snap =
            super::build_from_file_with(&path, None, &opts, &mut NoProgress, budget).unwrap();
        snap.created_at = None;
        snap.id = String::new();
        serde_json::to_string(&snap).unwrap()
    };
    let cached = content(super::PASS2_CACHE_VALUES);
    assert_eq!(cached, content(0), "second read");
    assert_eq!(cached, content(500), "budget exhausted during pass 1");
    assert!(cached.contains("estimated from a uniform sample of 300"));
}

#[test]
fn inputs_larger_than_the_quantile_sample_take_a_second_exact_pass() {
    let opts = BuildOptions {
        quantile_sample_size: 300,
        sample_size: 100,
        ..fixture_options()
    };
    let snap = build("data.csv", &opts);
    let exp = expected();
    for name in ["age", "income", "score"] {
        let entry = snap.features.get(name).unwrap();
        let e = &exp["columns"][name];
        let s = &entry.stats;
        // Streaming statistics stay exact.
        assert_eq!(s.count, e["count"].as_u64().unwrap());
        close(s.mean.unwrap(), f(&e["mean"]), 1e-9, "mean");
        close(s.std.unwrap(), f(&e["std"]), 1e-9, "std");
        assert_eq!(s.min.unwrap(), f(&e["min"]));
        assert_eq!(s.max.unwrap(), f(&e["max"]));
        assert_eq!(entry.sample.len(), 100);
        assert!(entry
            .notes
            .iter()
            .any(|n| n.contains("estimated from a uniform sample of 300")));
        // Bin proportions are exact for the (estimated) edges: count them here.
        let values = csv_column(name);
        let bins = entry.bins.as_ref().unwrap();
        for (i, p) in bins.proportions.iter().enumerate() {
            let in_bin = values
                .iter()
                .filter(|v| {
                    (i == 0 || **v > bins.edges[i - 1])
                        && (i == bins.edges.len() || **v <= bins.edges[i])
                })
                .count();
            close(
                *p,
                in_bin as f64 / values.len() as f64,
                1e-12,
                &format!("{name} bin {i}"),
            );
        }
        // Estimated quantiles sit near the right rank (300-value sample: the
        // rank error has sd ≤ 0.03, allow 0.12).
        let q = s.quantiles.unwrap();
        for (level, v) in Quantiles::LEVELS.iter().zip(q.values()) {
            let rank = values.iter().filter(|x| **x <= v).count() as f64 / values.len() as f64;
            assert!(
                (rank - level).abs() <= 0.12,
                "{name}: quantile {level} at rank {rank}"
            );
        }
    }
}

#[test]
fn categories_beyond_the_cap_are_pooled_into_other() {
    let snap = build(
        "data.csv",
        &BuildOptions {
            max_categories: 3,
            ..fixture_options()
        },
    );
    let exp = expected();
    let capped = exp["columns"]["country"]["categories_cap3"]
        .as_object()
        .unwrap();
    let cats = snap
        .features
        .get("country")
        .unwrap()
        .categories
        .as_ref()
        .unwrap();
    assert_eq!(cats.len(), 4);
    assert_eq!(
        cats.0.last().unwrap().0,
        OTHER_CATEGORY,
        "__other__ comes last"
    );
    for (k, p) in capped {
        close(*cats.get(k).unwrap(), f(p), 1e-12, k);
    }
    let notes = &snap.features.get("country").unwrap().notes;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("7 distinct values") && n.contains("4 least frequent")),
        "{notes:?}"
    );
}

#[test]
fn numbers_in_categorical_columns_use_one_key_form() {
    // "01067" in the file and the number 1067 in live traffic must meet.
    let snap = build("data.csv", &fixture_options());
    let zip = snap
        .features
        .get("zip")
        .unwrap()
        .categories
        .as_ref()
        .unwrap();
    assert!(zip.get("1067").is_some() && zip.get("01067").is_none());
    assert_eq!(
        category_key(&FeatureValue::Number(1067.0)).as_deref(),
        Some("1067")
    );
    assert_eq!(
        category_key(&FeatureValue::Text("01067".into())).as_deref(),
        Some("1067")
    );
    assert_eq!(
        category_key(&FeatureValue::Text("1.50".into())).as_deref(),
        Some("1.5")
    );
    assert_eq!(
        category_key(&FeatureValue::Text("DE".into())).as_deref(),
        Some("DE")
    );
    assert_eq!(category_key(&FeatureValue::Text("NaN".into())), None);
    assert_eq!(category_key(&FeatureValue::Missing), None);
}

#[test]
fn live_rows_build_the_same_baseline_as_the_file() {
    let file = build("data.csv", &fixture_options());
    let mut live = BaselineBuilder::new(
        BuildOptions {
            categorical: vec!["zip".into()],
            ..BuildOptions::new("credit-risk")
        },
        10_000,
    );
    let mut source = open_source(&fixture("data.jsonl"), None, &[]).unwrap();
    while let Some(row) = source.next_record_row().unwrap() {
        let pred = row.get("pred").cloned().unwrap_or(FeatureValue::Missing);
        let mut features = row.clone();
        features
            .values
            .retain(|(n, _)| !["pred", "label", "dropme"].contains(&n.as_str()));
        assert!(live.push_row(&features));
        assert!(live.push_prediction(&Prediction {
            value: pred,
            probabilities: None
        }));
    }
    let snap = live.finish().unwrap();
    assert_eq!(snap.row_count, 2000);
    assert_eq!(snap.source.as_deref(), Some("first 2000 live rows"));
    // JSONL key order is the table's order, so even the feature order matches.
    assert_eq!(snap.features, file.features);
    assert_eq!(snap.prediction, file.prediction);
    assert!(snap.target.is_none());
}

#[test]
fn live_builder_holds_at_most_max_rows() {
    let mut live = BaselineBuilder::new(BuildOptions::new("m"), 3);
    let row = |v: f64| crate::record::Row {
        values: vec![("x".into(), FeatureValue::Number(v))],
    };
    for i in 0..3 {
        assert!(live.push_row(&row(i as f64)));
    }
    assert!(live.is_full());
    assert!(!live.push_row(&row(99.0)), "the 4th row is refused");
    assert_eq!(live.row_count(), 3);
    let snap = live.finish().unwrap();
    let x = snap.features.get("x").unwrap();
    assert_eq!(x.stats.max, Some(2.0));
    assert!(snap.prediction.is_none());
}

#[test]
fn live_builder_with_no_rows_is_an_error() {
    let err = BaselineBuilder::new(BuildOptions::new("m"), 3)
        .finish()
        .unwrap_err();
    assert!(matches!(err, BuildError::NoRows { .. }), "{err}");
}

#[test]
fn a_constant_feature_has_one_edge() {
    let snap = build("data.csv", &fixture_options());
    let bins = snap.features.get("constant").unwrap().bins.clone().unwrap();
    assert_eq!(bins.edges, vec![7.0]);
    assert_eq!(bins.proportions, vec![1.0, 0.0]);
}

/// The 1-million-row, 20-column build: run by hand with
/// `MLMON_BIG_CSV=/tmp/big.csv cargo test --release -- --ignored big_csv`
/// after `python scripts/gen/baseline.py --big /tmp/big.csv`.
#[test]
#[ignore = "benchmark: needs MLMON_BIG_CSV (see the doc comment)"]
fn big_csv_builds_in_bounded_memory() {
    let path = std::env::var("MLMON_BIG_CSV").expect("set MLMON_BIG_CSV to the generated CSV");
    let t = std::time::Instant::now();
    let snap = build_from_file(
        Path::new(&path),
        None,
        &BuildOptions::new("big"),
        &mut NoProgress,
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "built {} rows x {} columns in {secs:.2} s; snapshot {} bytes",
        snap.row_count,
        snap.features.len(),
        snap.to_json().unwrap().len()
    );
    assert_eq!(snap.row_count, 1_000_000);
    assert_eq!(snap.features.len(), 20);
}

/// A CSV file read into memory and parsed on both CPUs gives the snapshot the streaming
/// build gives, byte for byte: numbers, missing tokens, NaN and infinities, a column
/// that turns categorical on its first row and one that turns late (its categories
/// counted again), a forced categorical column, an excluded one, score, prediction and
/// target columns, CRLF line ends, reservoirs that overflow (estimated quantiles), and
/// the joint sample; also on the fixture, and as a tab-separated file.
#[test]
fn columnar_build_equals_the_streaming_build() {
    use crate::baseline::sampling::SplitMix64;
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::from("x,late,word,code,drop,p1,pred,label,y\r\n");
    let mut rng = SplitMix64::for_stream(5, "columnar build");
    for r in 0..40_000u64 {
        let a = rng.next_u64();
        let x = match a % 50 {
            0 => String::new(),
            1 => "NA".into(),
            2 => "inf".into(),
            3 => "nan".into(),
            _ => format!(
                "{:.4}",
                (a >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0
            ),
        };
        let late = if r == 30_000 {
            "oops".to_string()
        } else {
            format!("{}", a % 97)
        };
        let word = format!("w{}", (a >> 20) % 7);
        let code = (a >> 30) % 13;
        let p1 = ((a >> 40) % 1000) as f64 / 1000.0;
        let pred = u64::from(p1 > 0.5);
        let label = (a >> 50) % 2;
        let y = format!("{}", ((a >> 5) % 100_000) as f64 * 1e-3);
        let eol = if r % 2 == 0 { "\r\n" } else { "\n" };
        body.push_str(&format!(
            "{x},{late},{word},{code},{r},{p1},{pred},{label},{y}{eol}"
        ));
    }
    let csv = dir.path().join("wide.csv");
    std::fs::write(&csv, &body).unwrap();
    let tsv = dir.path().join("wide.tsv");
    std::fs::write(&tsv, body.replace(',', "\t")).unwrap();
    let opts = BuildOptions {
        prediction: Some("pred".into()),
        target: Some("label".into()),
        probability: vec!["p1".into()],
        categorical: vec!["code".into()],
        exclude: vec!["drop".into()],
        quantile_sample_size: 20_000,
        ..BuildOptions::new("m")
    };
    let content = |path: &Path, opts: &BuildOptions, columnar: bool| {
        let mut snap = super::build_file(
            path,
            None,
            opts,
            &mut NoProgress,
            super::PASS2_CACHE_VALUES,
            columnar,
        )
        .unwrap();
        snap.created_at = None;
        snap.id = String::new();
        snap.source = None;
        serde_json::to_string(&snap).unwrap()
    };
    for path in [&csv, &tsv] {
        use crate::baseline::reader::columnar::{read_columns, Mode};
        assert!(read_columns(path, &|_| Mode::Numbers, &|_| true).is_some());
        let streamed = content(path, &opts, false);
        assert!(streamed.contains("treated as categorical: row 30001"));
        assert!(streamed.contains("estimated from a uniform sample of 20000"));
        assert!(streamed.contains("joint_sample"));
        assert_eq!(content(path, &opts, true), streamed, "{}", path.display());
    }
    let fixture = fixture("data.csv");
    assert_eq!(
        content(&fixture, &fixture_options(), true),
        content(&fixture, &fixture_options(), false)
    );
}

/// A file with a quoted field (which may hold a line break) is streamed: the same snapshot,
/// and errors still name the line.
#[test]
fn quoted_and_ragged_csv_files_are_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let quoted = dir.path().join("q.csv");
    std::fs::write(&quoted, "a,b\n1,\"x\ny\"\n2,z\n3,\"w\"\n").unwrap();
    let snap = build_from_file(&quoted, None, &BuildOptions::new("m"), &mut NoProgress).unwrap();
    assert_eq!(snap.row_count, 3);
    let b = snap.features.get("b").unwrap();
    let cats = b.categories.as_ref().unwrap();
    assert!(cats.0.iter().any(|(k, _)| k == "x\ny"), "{cats:?}");
    let ragged = dir.path().join("r.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3,4\n5\n").unwrap();
    let err = build_from_file(&ragged, None, &BuildOptions::new("m"), &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("line 4: expected 2 fields (as in the header), found 1"),
        "{err}"
    );
}

/// The in-memory build is taken only when the streaming build would keep every value in
/// its pass-1 cache (the budget bounds its memory too); past it the file streams.
#[test]
fn columnar_build_keeps_to_the_cache_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.csv");
    let mut body = String::from("a,b,c,word\n");
    for r in 0..100 {
        body.push_str(&format!("{r},{},{},w{}\n", r * 2, r % 7, r % 3));
    }
    std::fs::write(&path, body).unwrap();
    let opts = BuildOptions {
        exclude: vec!["c".into()],
        ..BuildOptions::new("m")
    };
    // a, b and word start numeric (word turns categorical on its first row, as in the
    // pipeline): 3 columns of up to 128 values (Vec growth) = 384.
    let taken = |budget: usize| {
        let mut engine = super::engine::Engine::new(&opts);
        engine.cache_budget = budget;
        super::columns::pass_from_memory(&mut engine, &path, 0, &mut NoProgress).unwrap()
    };
    assert!(taken(384));
    assert!(!taken(383));
    assert!(!taken(0));
}
