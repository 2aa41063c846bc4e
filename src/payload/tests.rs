//! Shared test helpers, and tests across formats: auto detection, limits, adversarial input.

use super::*;
use crate::record::FeatureValue;

/// A response argument meaning "no response captured".
pub(crate) const NO_RESPONSE: Option<&[u8]> = None;

/// The bytes of `tests/fixtures/payload/{name}`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/payload/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// [`parse`] with test-friendly argument types.
pub(crate) fn parse_with<R: AsRef<[u8]>>(
    cfg: &PayloadConfig,
    path: &str,
    request: &[u8],
    response: Option<R>,
    baseline: &[String],
) -> Result<ParsedExchange, PayloadError> {
    parse(
        cfg,
        path,
        request,
        response.as_ref().map(AsRef::as_ref),
        baseline,
    )
}

/// Parses `{stem}_request.json` with `{stem}_response.json`.
pub(crate) fn parse_fixture_pair(
    cfg: &PayloadConfig,
    path: &str,
    stem: &str,
    baseline: &[String],
) -> Result<ParsedExchange, PayloadError> {
    let request = fixture(&format!("{stem}_request.json"));
    let response = fixture(&format!("{stem}_response.json"));
    parse(cfg, path, &request, Some(&response), baseline)
}

pub(crate) fn num(v: f64) -> FeatureValue {
    FeatureValue::Number(v)
}

pub(crate) fn text(s: &str) -> FeatureValue {
    FeatureValue::Text(s.to_owned())
}

fn with_format(format: PayloadFormat) -> PayloadConfig {
    PayloadConfig {
        format,
        ..PayloadConfig::default()
    }
}

/// Fixture pairs with the format and path they belong to.
const PAIRS: [(&str, PayloadFormat, &str); 12] = [
    (
        "kserve_v1_iris",
        PayloadFormat::KserveV1,
        "/v1/models/sklearn-iris:predict",
    ),
    (
        "tf_half_plus_three",
        PayloadFormat::KserveV1,
        "/v1/models/half_plus_three:predict",
    ),
    (
        "tf_regress",
        PayloadFormat::KserveV1,
        "/v1/models/half_plus_three:regress",
    ),
    (
        "tf_classify",
        PayloadFormat::KserveV1,
        "/v1/models/m:classify",
    ),
    (
        "oip_v2_kserve_iris",
        PayloadFormat::OipV2,
        "/v2/models/sklearn-v2-iris/infer",
    ),
    (
        "oip_v2_mlserver_proba",
        PayloadFormat::OipV2,
        "/v2/models/iris/versions/v0.1.0/infer",
    ),
    ("mlflow_split", PayloadFormat::Mlflow, "/invocations"),
    (
        "seldon_iris_ndarray",
        PayloadFormat::Seldon,
        "/seldon/default/iris-model/api/v1.0/predictions",
    ),
    (
        "seldon_iris_tensor",
        PayloadFormat::Seldon,
        "/api/v1.0/predictions",
    ),
    ("records_batch", PayloadFormat::Records, "/predict"),
    (
        "oip_v2_mnist",
        PayloadFormat::OipV2,
        "/v2/models/mnist-svm/versions/v0.1.0/infer",
    ),
    ("mlflow_records", PayloadFormat::Mlflow, "/invocations"),
];

#[test]
fn auto_detection_agrees_with_the_explicit_format() {
    let auto = PayloadConfig::default();
    for (stem, format, path) in PAIRS {
        let explicit = parse_fixture_pair(&with_format(format), path, stem, &[])
            .unwrap_or_else(|e| panic!("{stem} as {format}: {e}"));
        let by_path = parse_fixture_pair(&auto, path, stem, &[]).unwrap();
        assert_eq!(explicit, by_path, "{stem} detected from path {path}");
        let by_body = parse_fixture_pair(&auto, "/", stem, &[]).unwrap();
        assert_eq!(explicit, by_body, "{stem} detected from its body");
    }
}

#[test]
fn auto_detection_of_request_only_fixtures() {
    for (name, expected) in [
        ("tf_row_format_request.json", PayloadFormat::KserveV1),
        ("tf_columnar_request.json", PayloadFormat::KserveV1),
        ("oip_v2_mlserver_wine_request.json", PayloadFormat::OipV2),
        ("oip_v2_mlserver_pd_request.json", PayloadFormat::OipV2),
        ("mlflow_instances_request.json", PayloadFormat::KserveV1),
        ("mlflow_inputs_request.json", PayloadFormat::KserveV1),
        ("mlflow_wine_split_request.json", PayloadFormat::Mlflow),
    ] {
        let body = fixture(name);
        let mut scratch = None;
        let v = json::parse_body(&body, Side::Request, &mut scratch).unwrap();
        assert_eq!(detect("/", &v), expected, "{name}");
    }
}

#[test]
fn path_decides_only_when_the_body_agrees() {
    let detect_str = |path: &str, body: &str| {
        let v: Json<'_> = serde_json::from_str(body).unwrap();
        detect(path, &v)
    };
    assert_eq!(
        detect_str("/invocations", r#"{"instances": [[1]]}"#),
        PayloadFormat::Mlflow
    );
    assert_eq!(
        detect_str("/invocations/", r#"[{"a": 1}]"#),
        PayloadFormat::Mlflow
    );
    assert_eq!(
        detect_str("/v1/models/m:predict", r#"{"instances": [[1]]}"#),
        PayloadFormat::KserveV1
    );
    assert_eq!(
        detect_str(
            "/v1/models/m/versions/2:predict",
            r#"{"inputs": {"a": [1]}}"#
        ),
        PayloadFormat::KserveV1
    );
    assert_eq!(
        detect_str(
            "/v2/models/m/versions/1/infer",
            r#"{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}]}"#
        ),
        PayloadFormat::OipV2
    );
    assert_eq!(
        detect_str("/api/v0.1/predictions", r#"{"data": {"ndarray": [[1]]}}"#),
        PayloadFormat::Seldon
    );
    // The path says OIP, the body is a plain record: the body wins.
    assert_eq!(
        detect_str("/v2/models/m/infer", r#"{"age": 3}"#),
        PayloadFormat::Records
    );
    // KServe v1 path with an OIP body (a v2 client on a v1 path) is read as OIP.
    assert_eq!(
        detect_str(
            "/v1/models/m:predict",
            r#"{"inputs": [{"name": "a", "shape": [1], "data": [1]}]}"#
        ),
        PayloadFormat::OipV2
    );
    assert_eq!(
        detect_str(
            "/predict",
            r#"{"data": {"names": ["a"], "ndarray": [[1]]}}"#
        ),
        PayloadFormat::Seldon
    );
    assert_eq!(
        detect_str("/predict", r#"{"data": {"x": 1}}"#),
        PayloadFormat::Records
    );
    assert_eq!(detect_str("/predict", r#"[1, 2]"#), PayloadFormat::Records);
}

#[test]
fn no_response_gives_rows_only_and_lenient_keeps_rows_on_response_errors() {
    let cfg = with_format(PayloadFormat::KserveV1);
    let req = br#"{"instances": [[1, 2], [3, 4]]}"#;
    let parsed = parse_with(&cfg, "/", req, NO_RESPONSE, &[]).unwrap();
    assert_eq!(parsed.rows.len(), 2);
    assert!(parsed.predictions.is_empty());

    let bad = br#"{"predictions": [1, 2, 3]}"#;
    let err = parse_with(&cfg, "/", req, Some(bad), &[]).unwrap_err();
    assert_eq!(
        err,
        PayloadError::PredictionCountMismatch {
            rows: 2,
            predictions: 3
        }
    );
    let lenient = parse_lenient(&cfg, "/", req, Some(bad), &[]).unwrap();
    assert_eq!(lenient.exchange.rows, parsed.rows);
    assert!(lenient.exchange.predictions.is_empty());
    assert_eq!(lenient.response_error, Some(err));

    let lenient = parse_lenient(&cfg, "/", req, Some(b"not json"), &[]).unwrap();
    assert_eq!(
        lenient.response_error.map(|e| (e.reason(), e.side())),
        Some(("invalid_json", Side::Response))
    );
    // A request error is still an error.
    let err = parse_lenient(&cfg, "/", b"", Some(b"[1]"), &[]).unwrap_err();
    assert_eq!((err.reason(), err.side()), ("empty_body", Side::Request));
}

#[test]
fn python_nan_and_infinity_are_missing_values() {
    let cfg = with_format(PayloadFormat::Records);
    let req = br#"[{"a": NaN, "b": 1.0}, {"a": -Infinity, "b": Infinity}]"#;
    let parsed = parse_with(&cfg, "/", req, Some(b"[NaN, 2]"), &[]).unwrap();
    assert_eq!(
        parsed.rows[0].values,
        vec![
            ("a".to_string(), FeatureValue::Missing),
            ("b".to_string(), num(1.0))
        ]
    );
    assert_eq!(parsed.rows[1].get("b"), Some(&FeatureValue::Missing));
    assert_eq!(parsed.predictions[0].value, FeatureValue::Missing);
}

#[test]
fn reasons_are_distinct_and_listed() {
    let mut reasons = PayloadError::REASONS.to_vec();
    reasons.sort_unstable();
    reasons.dedup();
    assert_eq!(reasons.len(), PayloadError::REASONS.len());
    let samples = [
        PayloadError::EmptyBody {
            side: Side::Request,
        },
        PayloadError::InvalidJson {
            side: Side::Request,
            detail: String::new(),
        },
        PayloadError::UnrecognizedFormat {
            side: Side::Request,
            detail: String::new(),
        },
        PayloadError::ShapeMismatch {
            side: Side::Request,
            detail: String::new(),
        },
        PayloadError::NotTabular {
            side: Side::Request,
            detail: String::new(),
        },
        PayloadError::PredictionCountMismatch {
            rows: 1,
            predictions: 2,
        },
        PayloadError::PointerNotFound {
            side: Side::Request,
            pointer: String::new(),
        },
        PayloadError::TooManyRows {
            side: Side::Request,
            rows: 0,
            limit: 0,
        },
        PayloadError::TooManyColumns {
            side: Side::Request,
            columns: 0,
            limit: 0,
        },
        PayloadError::TooManyValues {
            side: Side::Request,
            values: 0,
            limit: 0,
        },
    ];
    let produced: Vec<&str> = samples.iter().map(PayloadError::reason).collect();
    assert_eq!(produced, PayloadError::REASONS);
}

#[test]
fn error_messages_never_echo_feature_values() {
    let cfg = with_format(PayloadFormat::Mlflow);
    let req =
        br#"{"dataframe_split": {"columns": ["ssn"], "data": [["123-45-6789", "extra-secret"]]}}"#;
    let err = parse_with(&cfg, "/", req, NO_RESPONSE, &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        !msg.contains("123-45-6789") && !msg.contains("extra-secret"),
        "{msg}"
    );
    let err = parse_with(&cfg, "/", br#"{"x": "secret-value"#, NO_RESPONSE, &[]).unwrap_err();
    assert!(!err.to_string().contains("secret-value"), "{err}");
}

#[test]
fn row_limit() {
    let cfg = with_format(PayloadFormat::KserveV1);
    let body = |n: usize| format!("{{\"instances\": [{}]}}", vec!["1"; n].join(","));
    let parsed = parse_with(&cfg, "/", body(MAX_ROWS).as_bytes(), NO_RESPONSE, &[]).unwrap();
    assert_eq!(parsed.rows.len(), MAX_ROWS);
    let err = parse_with(&cfg, "/", body(MAX_ROWS + 1).as_bytes(), NO_RESPONSE, &[]).unwrap_err();
    assert_eq!(
        err,
        PayloadError::TooManyRows {
            side: Side::Request,
            rows: MAX_ROWS + 1,
            limit: MAX_ROWS
        }
    );
    // Columnar and tensor forms are bounded before any row is built.
    let cfg = with_format(PayloadFormat::OipV2);
    let req = format!(
        r#"{{"inputs": [{{"name": "x", "shape": [{}], "datatype": "FP32", "data": [{}]}}]}}"#,
        MAX_ROWS + 1,
        vec!["0"; MAX_ROWS + 1].join(",")
    );
    let err = parse_with(&cfg, "/", req.as_bytes(), NO_RESPONSE, &[]).unwrap_err();
    assert_eq!(err.reason(), "too_many_rows");
}

#[test]
fn column_and_value_limits() {
    let cfg = with_format(PayloadFormat::KserveV1);
    let wide = format!(
        "{{\"instances\": [[{}]]}}",
        vec!["1"; MAX_COLUMNS + 1].join(",")
    );
    let err = parse_with(&cfg, "/", wide.as_bytes(), NO_RESPONSE, &[]).unwrap_err();
    assert_eq!(err.reason(), "too_many_columns");
    let members: Vec<String> = (0..=MAX_COLUMNS).map(|i| format!("\"k{i}\": 1")).collect();
    let wide = format!("[{{{}}}]", members.join(","));
    let err = parse_with(
        &with_format(PayloadFormat::Records),
        "/",
        wide.as_bytes(),
        NO_RESPONSE,
        &[],
    )
    .unwrap_err();
    assert_eq!(err.reason(), "too_many_columns");
    // 300 rows × 4000 columns = 1.2 M values > MAX_VALUES.
    let row = format!("[{}]", vec!["0"; 4000].join(","));
    let many = format!("{{\"instances\": [{}]}}", vec![row; 300].join(","));
    let err = parse_with(&cfg, "/", many.as_bytes(), NO_RESPONSE, &[]).unwrap_err();
    assert_eq!(err.reason(), "too_many_values");
    // A declared shape over the limit fails before the data is read.
    let req = r#"{"inputs": [{"name": "x", "shape": [1000000, 1000000], "datatype": "FP32", "data": [1]}]}"#;
    let err = parse_with(
        &with_format(PayloadFormat::OipV2),
        "/",
        req.as_bytes(),
        NO_RESPONSE,
        &[],
    )
    .unwrap_err();
    assert_eq!(err.reason(), "too_many_values");
}

#[test]
fn ragged_and_odd_inputs_never_panic() {
    let bodies: &[&[u8]] = &[
        br#"{"instances": [[1, 2], [3], [], [4, 5, 6]]}"#,
        br#"{"instances": [{"a": 1}, [1, 2], 3, null, "x"]}"#,
        br#"{"instances": {"a": 1}}"#,
        br#"{"instances": 5}"#,
        br#"{"inputs": 5}"#,
        br#"{"inputs": {}}"#,
        br#"{"inputs": [{"name": "x", "shape": [2, 2], "data": [[1, 2], [3]]}]}"#,
        br#"{"inputs": [{"name": "x", "shape": [0, 3], "data": []}]}"#,
        br#"{"inputs": [{"name": "x", "shape": [2, 0], "data": []}]}"#,
        br#"{"inputs": [{"name": "x", "shape": [], "data": 7}]}"#,
        br#"{"inputs": [{"name": "x", "shape": [1], "data": [{"a": 1}]}]}"#,
        br#"{"inputs": [{"name": 5, "shape": [1], "data": [1]}]}"#,
        br#"{"inputs": [{"name": "x", "shape": [1e400], "data": [1]}]}"#,
        br#"{"inputs": [{"name": "x", "shape": [-9223372036854775808], "data": [1]}]}"#,
        br#"{"inputs": [{"name": "x", "shape": [18446744073709551615, 2], "data": [1]}]}"#,
        br#"{"dataframe_split": {"columns": "a", "data": [[1]]}}"#,
        br#"{"dataframe_split": {"data": 3}}"#,
        br#"{"dataframe_split": {"columns": ["a"], "data": [1, [2], {"a": 3}]}}"#,
        br#"{"data": {"tensor": {"shape": [3, 2], "values": [1, 2, 3, 4, 5, 6]}, "names": [1, null]}}"#,
        br#"{"data": {"tensor": {"shape": [2, 0], "values": []}}}"#,
        br#"{"data": {"tensor": {"shape": "2", "values": []}}}"#,
        br#"{"data": {"ndarray": [[1, [2, 3]]]}}"#,
        br#"{"data": {"ndarray": 7}}"#,
        br#"{"examples": [{"a": 1}, 2]}"#,
        br#"{"examples": {"a": 1}, "context": [1]}"#,
        br#"[[], [[]], [[[]]], {}]"#,
        br#""just a string""#,
        br#"null"#,
        b"\xff\xfe\x00",
        b"{\"a\": \"\xc3\x28\"}",
        b"\xEF\xBB\xBF",
    ];
    let responses: &[&[u8]] = &[
        b"[]",
        b"{}",
        b"null",
        br#"{"predictions": {}}"#,
        br#"{"predictions": [[], [[]], {}, {"a": {"b": []}}]}"#,
        br#"{"outputs": [{"name": "predict", "shape": [2, 0], "data": []}]}"#,
        br#"{"outputs": [{"name": "predict", "shape": [1, 3], "data": ["a", "b", "c"]}]}"#,
        br#"{"outputs": [{"name": "predict", "shape": [1], "data": [1]}, {"name": "predict_proba", "shape": [1, 0], "data": []}]}"#,
        br#"{"data": {"ndarray": [[]]}}"#,
        br#"{"data": {"names": ["a", "b"], "tensor": {"shape": [1, 2], "values": ["x", 1]}}}"#,
        br#"[{"label": "a", "score": "high"}, {"label": "b"}]"#,
        br#"[["a", 0.5], ["b"]]"#,
        br#"{"status": {"code": -1, "info": "boom", "status": "FAILURE"}}"#,
    ];
    let formats = [
        PayloadFormat::Auto,
        PayloadFormat::KserveV1,
        PayloadFormat::OipV2,
        PayloadFormat::Mlflow,
        PayloadFormat::Seldon,
        PayloadFormat::Records,
        PayloadFormat::Pointer,
    ];
    for format in formats {
        let cfg = with_format(format);
        for body in bodies {
            let _ = parse_with(&cfg, "/", body, NO_RESPONSE, &[]);
            for resp in responses {
                if let Ok(parsed) = parse_with(&cfg, "/", body, Some(resp), &[]) {
                    assert_eq!(parsed.predictions.len(), parsed.rows.len(), "{format}");
                }
            }
        }
    }
}

#[test]
fn truncated_and_mutated_fixtures_never_panic() {
    // Every prefix of every fixture, then deterministic random byte mutations.
    let dir = format!("{}/tests/fixtures/payload", env!("CARGO_MANIFEST_DIR"));
    let mut bodies: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    bodies.sort();
    assert!(bodies.len() >= 20, "fixtures missing from {dir}");
    let cfg = PayloadConfig::default();
    let baseline = vec!["a".to_string()];
    for body in &bodies {
        for cut in 0..body.len() {
            let _ = parse(&cfg, "/", &body[..cut], Some(&body[..cut]), &baseline);
        }
    }
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    const NOISE: &[u8] = b"[]{}\",:0123456789-.eE nultrfaNIy\\";
    for round in 0..3000 {
        let body = &bodies[round % bodies.len()];
        let mut mutated = body.clone();
        for _ in 0..1 + next() % 4 {
            if mutated.is_empty() {
                break;
            }
            let at = (next() % mutated.len() as u64) as usize;
            let byte = NOISE[(next() % NOISE.len() as u64) as usize];
            match next() % 3 {
                0 => mutated[at] = byte,
                1 => mutated.insert(at, byte),
                _ => {
                    mutated.remove(at);
                }
            }
        }
        for format in [
            PayloadFormat::Auto,
            PayloadFormat::OipV2,
            PayloadFormat::Seldon,
        ] {
            let cfg = with_format(format);
            if let Ok(parsed) = parse(&cfg, "/", &mutated, Some(body), &baseline) {
                assert!(parsed.predictions.len() == parsed.rows.len());
            }
        }
    }
}

#[test]
fn config_validation() {
    let ok = PayloadConfig {
        format: PayloadFormat::Pointer,
        feature_names: vec!["a".into(), "b".into()],
        request_pointer: Some("/rows".into()),
        response_pointer: Some(String::new()),
    };
    assert_eq!(ok.validate(), Ok(()));
    let bad = PayloadConfig {
        request_pointer: Some("rows".into()),
        ..ok.clone()
    };
    let err = bad.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "payload.request_pointer: \"rows\" is not an RFC 6901 JSON pointer (it must be empty or start with '/')"
    );
    let dup = PayloadConfig {
        feature_names: vec!["a".into(), "a".into()],
        ..ok.clone()
    };
    assert_eq!(
        dup.validate(),
        Err(PayloadConfigError::DuplicateFeatureName { name: "a".into() })
    );
    let empty = PayloadConfig {
        feature_names: vec!["a".into(), String::new()],
        ..ok
    };
    assert_eq!(
        empty.validate(),
        Err(PayloadConfigError::EmptyFeatureName { index: 1 })
    );
}

#[test]
fn config_deserializes_from_snake_case() {
    let cfg: PayloadConfig = serde_json::from_str(
        r#"{"format": "kserve_v1", "feature_names": ["a"], "request_pointer": "/x"}"#,
    )
    .unwrap();
    assert_eq!(cfg.format, PayloadFormat::KserveV1);
    assert_eq!(cfg.format.to_string(), "kserve_v1");
    assert!(serde_json::from_str::<PayloadConfig>(r#"{"formats": "auto"}"#).is_err());
}
