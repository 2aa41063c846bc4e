//! Reader tests: errors naming the file and line, missing-value spellings,
//! tab-separated files, Parquet projection and date formatting.

use crate::baseline::test_support::*;
use crate::baseline::*;
use crate::record::FeatureValue;

#[test]
fn build_errors_name_the_file_and_the_line_or_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = BuildOptions::new("m");

    let p = write(d, "ragged.csv", "a,b\n1,2\n3\n");
    let err = build_err(&p, &opts);
    assert_eq!(
        err,
        format!(
            "{}: line 3: expected 2 fields (as in the header), found 1",
            p.display()
        )
    );

    let p = write(d, "bad.jsonl", "{\"a\": 1}\n{\"a\": 2\n");
    let err = build_err(&p, &opts);
    assert!(
        err.starts_with(&format!("{}: line 2: invalid JSON", p.display())),
        "{err}"
    );

    let p = write(d, "nested.jsonl", "{\"a\": 1}\n{\"a\": [1, 2]}\n");
    let err = build_err(&p, &opts);
    assert!(
        err.starts_with(&format!(
            "{}: line 2: key \"a\" holds an array",
            p.display()
        )),
        "{err}"
    );

    let p = write(
        d,
        "twice.jsonl",
        "{\"a\": 1}\n\n{\"a\": 2, \"b\": 1, \"a\": 3}\n",
    );
    assert_eq!(
        build_err(&p, &opts),
        format!("{}: line 3: key \"a\" appears twice", p.display())
    );

    let p = write(d, "array.jsonl", "[1, 2]\n");
    assert!(build_err(&p, &opts).contains("line 1: expected a JSON object, found an array"));

    let p = write(d, "empty.csv", "");
    assert!(
        build_err(&p, &opts).contains("empty"),
        "{}",
        build_err(&p, &opts)
    );

    let p = write(d, "header_only.csv", "a,b\n");
    assert_eq!(
        build_err(&p, &opts),
        format!("{}: no data rows", p.display())
    );

    let p = write(d, "dup.csv", "a,a\n1,2\n");
    assert!(build_err(&p, &opts).contains("column \"a\" appears more than once"));

    let p = write(d, "data.txt", "a\n1\n");
    assert!(build_err(&p, &opts).contains("pass --format"));

    let p = write(d, "ok.csv", "a,b\n1,x\n");
    let err = build_err(
        &p,
        &BuildOptions {
            categorical: vec!["colour".into()],
            ..opts.clone()
        },
    );
    assert_eq!(
        err,
        format!(
            "{}: no column named \"colour\" (given with --categorical); the columns are: a, b",
            p.display()
        )
    );
    let err = build_err(
        &p,
        &BuildOptions {
            prediction: Some("y".into()),
            ..opts.clone()
        },
    );
    assert!(
        err.contains("no column named \"y\" (given with --prediction)"),
        "{err}"
    );
    let p2 = write(d, "clash.csv", "prediction,score\n1,0.5\n");
    let err = build_err(
        &p2,
        &BuildOptions {
            prediction: Some("score".into()),
            ..opts.clone()
        },
    );
    assert_eq!(
        err,
        format!("{}: a feature column is named \"prediction\" while --prediction is \"score\"; rename it or add --exclude prediction", p2.display())
    );
    let err = build_err(
        &p,
        &BuildOptions {
            bins: 1,
            ..opts.clone()
        },
    );
    assert_eq!(err, "--bins: 1 is outside 2..=10000");

    let p = write(d, "notutf8.csv", "a\n");
    std::fs::write(&p, b"a,b\n1,\xff\n").unwrap();
    assert!(
        build_err(&p, &opts).contains("line 2: field 2 is not valid UTF-8"),
        "{}",
        build_err(&p, &opts)
    );

    let p = d.join("missing.csv");
    assert!(build_err(&p, &opts).starts_with(&format!("{}: ", p.display())));

    let p = write(d, "broken.parquet", "not parquet at all");
    assert!(build_err(&p, &opts).starts_with(&format!("{}: ", p.display())));
}

#[test]
fn excluded_columns_in_parquet_are_not_decoded_and_still_known() {
    let snap = build(
        "data.parquet",
        &BuildOptions {
            exclude: vec!["dropme".into(), "day".into()],
            ..fixture_options()
        },
    );
    assert!(snap.features.get("day").is_none() && snap.features.get("dropme").is_none());
}

#[test]
fn missing_value_spellings_and_infinities_count_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "na.csv",
        "x,c\n1,a\nNA,b\n,N/A\nnan,<NA>\ninf,null\n2,None\n-Infinity,#N/A\n3,a\n",
    );
    let snap = build_from_file(&p, None, &BuildOptions::new("m"), &mut NoProgress).unwrap();
    let x = snap.features.get("x").unwrap();
    assert_eq!(x.kind, FeatureType::Numeric);
    assert_eq!(x.stats.count, 3);
    assert_eq!(x.stats.missing_ratio, 5.0 / 8.0);
    assert_eq!(x.stats.mean, Some(2.0));
    let c = snap.features.get("c").unwrap();
    assert_eq!(c.kind, FeatureType::Categorical);
    assert_eq!(c.stats.count, 3);
    assert_eq!(c.categories.as_ref().unwrap().get("a"), Some(&(2.0 / 3.0)));
}

#[test]
fn tab_separated_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "t.tsv", "x\ty\n1\ta,b\n2\tc\n");
    let snap = build_from_file(&p, None, &BuildOptions::new("m"), &mut NoProgress).unwrap();
    assert_eq!(snap.features.get("x").unwrap().stats.mean, Some(1.5));
    assert!(snap
        .features
        .get("y")
        .unwrap()
        .categories
        .as_ref()
        .unwrap()
        .get("a,b")
        .is_some());
}

#[test]
fn parquet_dates_and_timestamps_are_formatted_without_chrono() {
    use super::{
        format_date as date, format_time_of_day as time_of_day, format_timestamp as timestamp,
    };
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(19_723), "2024-01-01");
    assert_eq!(date(-1), "1969-12-31");
    assert_eq!(date(11_016), "2000-02-29");
    assert_eq!(timestamp(0, 1_000), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        timestamp(1_704_067_200_123, 1_000),
        "2024-01-01T00:00:00.123Z"
    );
    assert_eq!(timestamp(-1, 1_000_000), "1969-12-31T23:59:59.999999Z");
    assert_eq!(time_of_day(3_723_004, 1_000), "01:02:03.004");
    // Extreme values do not panic.
    let _ = date(i64::from(i32::MAX));
    let _ = timestamp(i64::MIN, 1_000);
}

#[test]
fn booleans_are_one_categorical_type_in_every_format() {
    // pandas writes True/False to CSV; other tools write true/TRUE; JSON and Parquet carry
    // typed booleans. All become the categories `true` / `false` (SPEC section 5).
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "b.csv",
        "flag\nTrue\nfalse\nTRUE\nFalse\ntrue\nFALSE\n",
    );
    let jsonl = write(
        dir.path(),
        "b.jsonl",
        "{\"flag\": true}\n{\"flag\": false}\n{\"flag\": true}\n{\"flag\": false}\n",
    );
    for path in [&csv, &jsonl] {
        let snap = build_from_file(path, None, &BuildOptions::new("m"), &mut NoProgress).unwrap();
        let flag = snap.features.get("flag").unwrap();
        assert_eq!(flag.kind, FeatureType::Categorical, "{}", path.display());
        let cats = flag.categories.as_ref().unwrap();
        let mut names: Vec<&str> = cats.names().collect();
        names.sort_unstable();
        assert_eq!(names, ["false", "true"], "{}", path.display());
        assert_eq!(cats.get("true"), Some(&0.5), "{}", path.display());
    }
    // Parquet booleans (the fixture's `flag` column is a pandas bool column).
    let mut source = open_source(&fixture("data.parquet"), None, &[]).unwrap();
    let col = source.columns().iter().position(|c| c == "flag").unwrap();
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let mut cell = None;
        let more = source
            .next_row(&mut |i, c| {
                if i == col {
                    cell = Some(c.to_feature_value());
                }
            })
            .unwrap();
        assert!(more);
        seen.push(cell.unwrap());
    }
    assert!(seen
        .iter()
        .all(|v| matches!(v, FeatureValue::Text(s) if s == "true" || s == "false")));
    // Live values take the same key: JSON `true` and the text "True".
    assert_eq!(
        category_key(&FeatureValue::from_json(&serde_json::json!(true)).unwrap()).as_deref(),
        Some("true")
    );
    assert_eq!(
        category_key(&FeatureValue::Text("FALSE".into())).as_deref(),
        Some("false")
    );
}
