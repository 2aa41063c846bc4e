//! A typed fast path for the common OIP v2 exchange (issue 13): a request whose inputs are
//! numeric tensors with flat data, and a response whose outputs are the same, read straight
//! into tensors of `f64` by serde instead of through the [`Json`](super::json::Json) tree.
//!
//! It answers only what it can answer exactly as the general adapter ([`super::oip_v2`])
//! would: anything else — strings, booleans or `null`s in `data` (flat or nested), a scalar
//! `data`, a `BYTES` tensor, duplicate keys, `NaN` tokens, invalid UTF-8, shapes that do not
//! hold the data, any limit reached, any error — returns `None`, and the caller parses the
//! body again with the general adapter, which gives the same rows, predictions and errors as
//! before. Parity is tested on every payload fixture and on generated bodies
//! (`payload::tests::oip_fast_path_equals_the_general_adapter`).
//!
//! Why: the tree holds every number as a 32-byte node in a growable list and every key as a
//! member; typed tensors hold a `Vec<f64>` per input, which cuts the instructions of parsing
//! an 8 × 10 exchange by about a third (docs/performance.md).

use std::borrow::Cow;

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::record::{FeatureValue, Prediction, Row};

use super::oip_v2::{PROBABILITY_OUTPUTS, VALUE_OUTPUTS};
use super::predict::{is_distribution, scores_prediction};
use super::rows::{check_columns, check_rows, ColumnNames, Table};
use super::{tensor, Context, Side, MAX_VALUES};

/// The members of a request or response body the adapter reads; others are ignored, as
/// the general adapter ignores them.
struct Body<'a> {
    /// `inputs` of a request, `outputs` of a response.
    tensors: Vec<Tensor<'a>>,
    /// A request's `parameters.content_type`, when `parameters` is an object holding a
    /// string there.
    content_type: Option<Cow<'a, str>>,
}

/// Reads a [`Body`]: a request's `inputs` (and `parameters`), or a response's `outputs`.
#[derive(Clone, Copy)]
struct BodySeed {
    request: bool,
}

impl BodySeed {
    const REQUEST: BodySeed = BodySeed { request: true };
    const RESPONSE: BodySeed = BodySeed { request: false };

    /// The member holding the tensors.
    fn list(self) -> &'static str {
        if self.request {
            "inputs"
        } else {
            "outputs"
        }
    }

    /// The body of `text` (the whole text: trailing characters are an error, as in
    /// `serde_json::from_str`).
    fn read(self, text: &str) -> Option<Body<'_>> {
        let mut de = serde_json::Deserializer::from_str(text);
        let body = de::DeserializeSeed::deserialize(self, &mut de).ok()?;
        de.end().ok()?;
        Some(body)
    }
}

impl<'de> de::DeserializeSeed<'de> for BodySeed {
    type Value = Body<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Body<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BodySeed {
    type Value = Body<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an OIP body with `{}`", self.list())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body<'de>, A::Error> {
        let (mut tensors, mut parameters) = (None, None);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match (key.0.as_ref(), self.request) {
                ("inputs", true) | ("outputs", false) => {
                    let value = map.next_value::<Vec<Tensor<'de>>>()?;
                    once(&mut tensors, value, self.list())?;
                }
                ("parameters", true) => {
                    let value = map.next_value::<Option<Parameters<'de>>>()?;
                    once(&mut parameters, value, "parameters")?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Body {
            tensors: tensors.ok_or_else(|| de::Error::missing_field(self.list()))?,
            content_type: parameters.flatten().and_then(|p| p.content_type),
        })
    }
}

/// A numeric tensor whose data fill its shape exactly, checked as it is read (a tensor
/// the general decoder would refuse or read otherwise makes the whole body an error here,
/// which sends it to the general adapter).
struct Tensor<'a> {
    name: Cow<'a, str>,
    dims: Vec<usize>,
    data: Vec<f64>,
}

/// Objects only: serde's derived structs would also read a JSON array positionally, which
/// the general adapter refuses. A duplicate member is an error (the general adapter keeps
/// the last value, so such a body goes there).
macro_rules! object_visitor {
    ($visitor:ident, $ty:ident, $what:literal, |$map:ident| $body:block) => {
        struct $visitor;
        impl<'de> Visitor<'de> for $visitor {
            type Value = $ty<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($what)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut $map: A) -> Result<$ty<'de>, A::Error> $body
        }
        impl<'de> Deserialize<'de> for $ty<'de> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_map($visitor)
            }
        }
    };
}

/// A string, borrowed from the body when it has no escapes (serde's own `Cow<str>` always
/// copies).
struct Text<'a>(Cow<'a, str>);

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

/// A list of numbers read into a `Vec` of `capacity` to start with (serde's own `Vec`
/// starts empty: serde_json gives no length hint).
struct Numbers<T> {
    capacity: usize,
    element: std::marker::PhantomData<T>,
}

impl<T> Numbers<T> {
    fn new(capacity: usize) -> Self {
        Numbers {
            capacity,
            element: std::marker::PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> de::DeserializeSeed<'de> for Numbers<T> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Numbers<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of numbers")
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(self.capacity);
        while let Some(x) = seq.next_element::<T>()? {
            out.push(x);
        }
        Ok(out)
    }
}

/// The numbers of a `data` list, flat or nested (row-major, as the general adapter
/// flattens them); anything but numbers and lists is an error. Nesting is bounded by
/// serde_json's recursion limit.
struct Leaves<'v> {
    out: Option<&'v mut Vec<f64>>,
    capacity: usize,
}

impl Leaves<'_> {
    fn new(capacity: usize) -> Leaves<'static> {
        Leaves {
            out: None,
            capacity,
        }
    }
}

impl<'de> de::DeserializeSeed<'de> for Leaves<'_> {
    type Value = Vec<f64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<f64>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Leaves<'_> {
    type Value = Vec<f64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of numbers")
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
        let mut own = Vec::new();
        let out = match self.out {
            Some(out) => out,
            None => {
                own.reserve(self.capacity);
                &mut own
            }
        };
        while seq.next_element_seed(Leaf(&mut *out))?.is_some() {}
        Ok(own)
    }
}

/// One element of a `data` list: a number (appended) or a nested list (its leaves).
struct Leaf<'v>(&'v mut Vec<f64>);

impl<'de> de::DeserializeSeed<'de> for Leaf<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Leaf<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or a list")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.push(v);
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        Leaves {
            out: Some(self.0),
            capacity: 0,
        }
        .visit_seq(seq)
        .map(drop)
    }
}

/// Stores a member's value, failing on a second occurrence.
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, key: &'static str) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(key));
    }
    Ok(())
}

object_visitor!(TensorVisitor, Tensor, "an OIP tensor", |map| {
    let (mut name, mut shape, mut datatype, mut data) = (None, None, None, None);
    while let Some(key) = map.next_key::<Text<'de>>()? {
        match key.0.as_ref() {
            "name" => once(&mut name, map.next_value::<Text<'de>>()?.0, "name")?,
            "shape" => once(
                &mut shape,
                map.next_value_seed(Numbers::<u64>::new(8))?,
                "shape",
            )?,
            "datatype" => once(
                &mut datatype,
                map.next_value::<Option<Text<'de>>>()?.map(|t| t.0),
                "datatype",
            )?,
            "data" => {
                // Sized by the shape when it came first (as clients write it), else grown.
                let expected = shape.as_deref().map_or(8, |dims: &[u64]| {
                    dims.iter()
                        .try_fold(1u64, |n, &d| n.checked_mul(d))
                        .map_or(8, |n| n.min(4_096) as usize)
                });
                once(
                    &mut data,
                    map.next_value_seed(Leaves::new(expected))?,
                    "data",
                )?
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
    let shape: Vec<u64> = shape.ok_or_else(|| de::Error::missing_field("shape"))?;
    let data: Vec<f64> = data.ok_or_else(|| de::Error::missing_field("data"))?;
    // A `BYTES` tensor may carry its byte length as a last dimension: not read here.
    // Dimensions and their product are bounded as the general decoder bounds them.
    let declined = || de::Error::custom("left to the general adapter");
    if datatype.flatten().as_deref() == Some("BYTES")
        || shape.len() > 32
        || shape.iter().any(|&d| d > MAX_VALUES as u64)
    {
        return Err(declined());
    }
    // The same allocation, read as `usize` (every dimension fits: checked above).
    let dims: Vec<usize> = shape.into_iter().map(|d| d as usize).collect();
    if tensor::element_count(Side::Request, &dims).ok() != Some(data.len()) {
        return Err(declined());
    }
    Ok(Tensor { name, dims, data })
});

/// `parameters`: what the general adapter reads of it is a string `content_type` of an
/// object; anything else there goes to the general adapter.
struct Parameters<'a> {
    content_type: Option<Cow<'a, str>>,
}

object_visitor!(ParametersVisitor, Parameters, "request parameters", |map| {
    let mut content_type = None;
    while let Some(key) = map.next_key::<Text<'de>>()? {
        match key.0.as_ref() {
            "content_type" => once(
                &mut content_type,
                map.next_value::<Option<Text<'de>>>()?.map(|t| t.0),
                "content_type",
            )?,
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(Parameters {
        content_type: content_type.flatten(),
    })
});

impl Tensor<'_> {
    fn rows(&self) -> usize {
        tensor::rows(&self.dims)
    }

    fn width(&self) -> usize {
        tensor::width(&self.dims)
    }

    fn row(&self, r: usize, width: usize) -> &[f64] {
        tensor::row(&self.data, r, width)
    }
}

/// The text of a body serde can read as-is: without a byte-order mark, valid UTF-8.
fn text(body: &[u8]) -> Option<&str> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    std::str::from_utf8(body).ok()
}

/// The request's rows, when this path can read them exactly as the general adapter would.
pub(crate) fn request_rows(ctx: &Context<'_>, body: &[u8]) -> Option<Vec<Row>> {
    let req = BodySeed::REQUEST.read(text(body)?)?;
    if req.tensors.is_empty() || check_columns(Side::Request, req.tensors.len()).is_err() {
        return None;
    }
    let tensors = &req.tensors;
    let pandas = req.content_type.as_deref() == Some("pd");
    match tensors.as_slice() {
        [only] if !pandas && only.dims.len() >= 2 => matrix_rows(ctx, only),
        _ => column_rows(tensors),
    }
}

/// One `[N, F]` tensor (`oip_v2::matrix_rows`).
fn matrix_rows(ctx: &Context<'_>, t: &Tensor<'_>) -> Option<Vec<Row>> {
    let (n, f) = tensor::as_matrix(&t.dims)?;
    let mut names = ctx.fallback_names();
    if f == 1 && names.listed(0).is_none() {
        names = ColumnNames::explicit(vec![t.name.as_ref()]);
    }
    let mut table = Table::with_expected_rows(Side::Request, n).ok()?;
    table.check_width(f).ok()?;
    let column_names: Vec<String> = (0..f).map(|c| names.name(c)).collect();
    for r in 0..n {
        let values = column_names
            .iter()
            .zip(t.row(r, f))
            .map(|(name, &v)| (name.clone(), FeatureValue::Number(v)))
            .collect();
        table.push(Row { values }).ok()?;
    }
    Some(table.into_rows())
}

/// One input per feature (`oip_v2::column_rows`).
fn column_rows(tensors: &[Tensor<'_>]) -> Option<Vec<Row>> {
    let n = tensors.first().map_or(0, Tensor::rows);
    if tensors.iter().any(|t| t.rows() != n) {
        return None;
    }
    let columns: Vec<&Tensor<'_>> = tensors.iter().filter(|t| t.width() == 1).collect();
    let mut table = Table::with_expected_rows(Side::Request, n).ok()?;
    table.check_width(columns.len()).ok()?;
    for r in 0..n {
        let mut values = Vec::with_capacity(columns.len());
        for t in &columns {
            if let Some(&v) = t.data.get(r) {
                values.push((t.name.to_string(), FeatureValue::Number(v)));
            }
        }
        table.push(Row { values }).ok()?;
    }
    Some(table.into_rows())
}

/// The response's predictions for `rows` request rows, when this path can read them
/// exactly as the general adapter would (`oip_v2::response_predictions`).
pub(crate) fn response_predictions(body: &[u8], rows: usize) -> Option<Vec<Prediction>> {
    let resp = BodySeed::RESPONSE.read(text(body)?)?;
    let outputs = &resp.tensors;
    if outputs.is_empty() || check_rows(Side::Response, rows).is_err() {
        return None;
    }
    let named = |names: &[&str]| {
        names
            .iter()
            .find_map(|want| outputs.iter().position(|o| o.name == *want))
    };
    let primary_index = named(&VALUE_OUTPUTS).unwrap_or(0);
    let proba_index = named(&PROBABILITY_OUTPUTS).filter(|&i| i != primary_index);
    let primary = &outputs[primary_index];
    let (n, width) = tensor::per_row(&primary.dims, rows).ok()?;
    let mut probabilities = match proba_index {
        // A malformed optional output is ignored by the general adapter; here it sends the
        // whole response there, which is rare and gives the same predictions.
        Some(i) if width == 1 => probability_rows(&outputs[i], rows),
        _ => None,
    };
    let mut predictions = Vec::with_capacity(n);
    for r in 0..n {
        let prediction = match primary.row(r, width) {
            [] => Prediction {
                value: FeatureValue::Missing,
                probabilities: None,
            },
            &[one] => Prediction {
                value: FeatureValue::Number(one),
                // Each row's scores are taken once (moved, not copied).
                probabilities: probabilities
                    .as_mut()
                    .and_then(|p| p.get_mut(r))
                    .map(std::mem::take)
                    .filter(|p| is_distribution(p)),
            },
            many => scores_prediction(many.to_vec(), None),
        };
        predictions.push(prediction);
    }
    Some(predictions)
}

/// Per-row scores of a probability output (`oip_v2::probability_rows`); `None` when the
/// general adapter ignores the output. (A malformed one made the whole response an error
/// here, which sends it to the general adapter, where it is ignored.)
fn probability_rows(t: &Tensor<'_>, rows: usize) -> Option<Vec<Vec<f64>>> {
    let width = t.width();
    if t.rows() != rows || width < 2 {
        return None;
    }
    Some(t.data.chunks(width).map(<[f64]>::to_vec).collect())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::tests::fixture;
    use super::super::{parse_lenient_with, PayloadConfig, PayloadFormat};
    use super::*;

    const PATHS: [&str; 4] = [
        "/v2/models/m/infer",
        "/v2/models/m/versions/3/infer",
        "/predict",
        "/v1/models/m:predict",
    ];

    fn configs() -> Vec<PayloadConfig> {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        vec![
            PayloadConfig::default(),
            PayloadConfig {
                format: PayloadFormat::OipV2,
                ..PayloadConfig::default()
            },
            PayloadConfig {
                format: PayloadFormat::OipV2,
                feature_names: names(&["a", "b"]),
                ..PayloadConfig::default()
            },
            PayloadConfig {
                response_pointer: Some("/outputs/0/data".into()),
                ..PayloadConfig::default()
            },
            PayloadConfig {
                format: PayloadFormat::KserveV1,
                ..PayloadConfig::default()
            },
        ]
    }

    /// The fast path and the general adapter give the same result (rows, predictions,
    /// response error, or request error) for this exchange, under every configuration
    /// and path; returns how many of those the fast path read itself.
    fn same_both_ways(request: &[u8], response: Option<&[u8]>) -> usize {
        let baselines: [Vec<String>; 2] = [vec![], vec!["x".into(), "y".into(), "z".into()]];
        let mut fast = 0;
        for cfg in configs() {
            for path in PATHS {
                for baseline in &baselines {
                    let a = parse_lenient_with(&cfg, path, request, response, baseline, true);
                    let b = parse_lenient_with(&cfg, path, request, response, baseline, false);
                    assert_eq!(
                        a,
                        b,
                        "{} / {} on {path} with {:?}",
                        String::from_utf8_lossy(request),
                        response.map(String::from_utf8_lossy).unwrap_or_default(),
                        cfg.format
                    );
                    let ctx = Context {
                        cfg: &cfg,
                        baseline,
                    };
                    if super::super::oip_fast_applies(&cfg, path)
                        && request_rows(&ctx, request).is_some()
                    {
                        fast += 1;
                    }
                }
            }
        }
        fast
    }

    #[test]
    fn every_payload_fixture_parses_as_the_general_adapter_parses_it() {
        let dir = format!("{}/tests/fixtures/payload", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        let requests: Vec<_> = names
            .iter()
            .filter(|n| n.ends_with("_request.json"))
            .collect();
        let responses: Vec<_> = names
            .iter()
            .filter(|n| n.ends_with("_response.json"))
            .collect();
        let mut fast = Vec::new();
        for req in &requests {
            let request = fixture(req);
            let mut read_fast = same_both_ways(&request, None);
            for resp in &responses {
                read_fast += same_both_ways(&request, Some(&fixture(resp)));
            }
            if read_fast > 0 {
                fast.push(req.as_str());
            }
        }
        // Numeric OIP bodies, flat or nested, take the fast path (so the comparison above is
        // not vacuous); the pandas request of strings, the specification's example with its
        // BOOL input, and the other formats do not.
        assert_eq!(
            fast,
            [
                "oip_v2_kserve_iris_request.json",
                "oip_v2_mlserver_proba_request.json",
                "oip_v2_mlserver_wine_request.json",
                "oip_v2_mnist_request.json",
            ]
        );
    }

    #[test]
    fn the_benchmark_exchange_is_read_by_the_fast_path() {
        let request = br#"{"id":"bench","inputs":[{"name":"f0","shape":[2],"datatype":"FP64","data":[0.5,-1.25]},{"name":"f1","shape":[2,1],"datatype":"FP64","data":[3,4e-3]}]}"#;
        let response = br#"{"model_name":"m","id":"bench","outputs":[{"name":"predict","shape":[2],"datatype":"INT64","data":[1,0]},{"name":"predict_proba","shape":[2,2],"datatype":"FP64","data":[0.25,0.75,0.5,0.5]}]}"#;
        let cfg = PayloadConfig::default();
        let ctx = Context {
            cfg: &cfg,
            baseline: &[],
        };
        let rows = request_rows(&ctx, request).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[1].values,
            [
                ("f0".to_string(), FeatureValue::Number(-1.25)),
                ("f1".to_string(), FeatureValue::Number(4e-3))
            ]
        );
        let predictions = response_predictions(response, 2).unwrap();
        assert_eq!(predictions[0].value, FeatureValue::Number(1.0));
        assert_eq!(predictions[0].probabilities, Some(vec![0.25, 0.75]));
        assert!(same_both_ways(request, Some(response)) > 0);
    }

    /// Branches the generator reaches rarely, each read by the fast path and compared.
    #[test]
    fn hand_written_exchanges_take_the_fast_path_and_agree() {
        let t = |name: &str, shape: &str, data: &str| {
            format!(r#"{{"name":"{name}","shape":{shape},"datatype":"FP64","data":{data}}}"#)
        };
        let req = |tensors: &[String], extra: &str| {
            format!(r#"{{"inputs":[{}]{extra}}}"#, tensors.join(","))
        };
        let resp = |tensors: &[String]| format!(r#"{{"outputs":[{}]}}"#, tensors.join(","));
        let two_rows = req(&[t("a", "[2]", "[1,2]"), t("b", "[2,1]", "[[3],[4]]")], "");
        let cases = [
            // Probabilities that are not a distribution are dropped; a distribution kept.
            (
                two_rows.clone(),
                Some(resp(&[
                    t("predict", "[2]", "[1,0]"),
                    t("predict_proba", "[2,2]", "[0.5,0.7,0.2,0.8]"),
                ])),
            ),
            // A probability output of the wrong row count is ignored.
            (
                two_rows.clone(),
                Some(resp(&[
                    t("predict", "[2]", "[1,0]"),
                    t("probabilities", "[3,2]", "[0.5,0.5,0.2,0.8,1,0]"),
                ])),
            ),
            // Scores per row (no separate probabilities): the index of the highest.
            (
                two_rows.clone(),
                Some(resp(&[t("output-0", "[2,3]", "[0.1,0.2,0.7,0.6,0.3,0.1]")])),
            ),
            // One row answered with a rank-1 vector of class scores.
            (
                req(&[t("x", "[1,3]", "[1,2,3]")], ""),
                Some(resp(&[t("y", "[3]", "[0.2,0.5,0.3]")])),
            ),
            // A one-column matrix takes the input's name; pandas reads inputs as columns.
            (req(&[t("only", "[3,1]", "[1,2,3]")], ""), None),
            (
                req(
                    &[t("m", "[2,2]", "[1,2,3,4]")],
                    r#","parameters":{"content_type":"pd"}"#,
                ),
                None,
            ),
            // Inputs of another width are skipped as features.
            (
                req(
                    &[t("a", "[2]", "[1,2]"), t("emb", "[2,3]", "[1,2,3,4,5,6]")],
                    "",
                ),
                Some(resp(&[t("predict", "[2]", "[7,8]")])),
            ),
        ];
        for (request, response) in cases {
            let fast = same_both_ways(request.as_bytes(), response.as_deref().map(str::as_bytes));
            assert!(fast > 0, "{request}");
            if let Some(response) = &response {
                assert!(
                    response_predictions(response.as_bytes(), 2).is_some()
                        || request.contains("[1,3]"),
                    "{response}"
                );
            }
        }
    }

    /// What serde_json's `from_str` refuses is refused here too: trailing characters, a
    /// second document; whitespace around the body and a byte-order mark are fine.
    #[test]
    fn the_whole_body_is_one_document() {
        let ok = r#"{"inputs":[{"name":"a","shape":[1],"data":[1]}]}"#;
        let cfg = PayloadConfig::default();
        let ctx = Context {
            cfg: &cfg,
            baseline: &[],
        };
        for (body, fast) in [
            (format!(" {ok}\n"), true),
            (format!("\u{feff}{ok}"), true),
            (format!("{ok} x"), false),
            (format!("{ok}{ok}"), false),
        ] {
            assert_eq!(
                request_rows(&ctx, body.as_bytes()).is_some(),
                fast,
                "{body}"
            );
            same_both_ways(body.as_bytes(), None);
        }
    }

    /// A JSON number in one of the spellings clients use.
    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => any::<i32>().prop_map(|v| v.to_string()),
            4 => (-1e6..1e6f64).prop_map(|v| format!("{v}")),
            4 => (-10.0..10.0f64).prop_map(|v| format!("{v:.6}")),
            4 => any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:e}")),
            1 => Just("-0".to_string()),
            1 => Just("-0.0".to_string()),
            1 => Just("1e400".to_string()),
            1 => Just("123456789012345678901234567890".to_string()),
        ]
    }

    /// A `data` element: mostly numbers, sometimes what the fast path must decline.
    fn element() -> impl Strategy<Value = String> {
        prop_oneof![
            60 => number(),
            1 => prop_oneof![
                Just("null".to_string()),
                Just("true".to_string()),
                Just("\"a\"".to_string()),
                Just("NaN".to_string()),
                Just("-Infinity".to_string()),
                number().prop_map(|n| format!("[{n}]")),
            ],
        ]
    }

    /// `len` elements, flat or nested in rows of `width` (sometimes ragged or the wrong
    /// count, or a scalar).
    fn data(len: usize, width: usize) -> impl Strategy<Value = String> {
        let width = width.max(1);
        prop_oneof![
            12 => prop::collection::vec(element(), len..=len).prop_map(|v| format!("[{}]", v.join(","))),
            6 => prop::collection::vec(element(), len..=len).prop_map(move |v| {
                let rows: Vec<String> = v.chunks(width).map(|r| format!("[{}]", r.join(","))).collect();
                format!("[{}]", rows.join(","))
            }),
            1 => prop::collection::vec(element(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            1 => element(),
        ]
    }

    /// A shape for `n` rows: its text, element count and row width.
    fn shape(n: usize) -> impl Strategy<Value = (String, usize, usize)> {
        prop_oneof![
            6 => Just((format!("[{n}]"), n, 1)),
            3 => Just((format!("[{n},1]"), n, 1)),
            3 => (1usize..4).prop_map(move |f| (format!("[{n},{f}]"), n * f, f)),
            1 => (1usize..3).prop_map(move |f| (format!("[{n},{f},1]"), n * f, f)),
            1 => (2usize..3).prop_map(move |f| (format!("[{n},{f},2]"), n * f * 2, f * 2)),
            1 => (0usize..4).prop_map(|m| (format!("[{m}]"), m, 1)),
            1 => Just(("[]".to_string(), 1, 1)),
            1 => Just((format!("[{n}.0]"), n, 1)),
            1 => Just(("[-1]".to_string(), 1, 1)),
            1 => Just((format!("\"{n}\""), n, 1)),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => Just("\"predict\"".to_string()),
            3 => Just("\"predict_proba\"".to_string()),
            2 => Just("\"output-0\"".to_string()),
            3 => Just("\"f0\"".to_string()),
            3 => Just("\"f1\"".to_string()),
            1 => Just("\"na\\u006de\"".to_string()),
            1 => Just("3".to_string()),
        ]
    }

    fn datatype() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            4 => Just(Some("\"FP64\"".to_string())),
            4 => Just(Some("\"INT64\"".to_string())),
            4 => Just(None),
            1 => Just(Some("\"BYTES\"".to_string())),
            1 => Just(Some("null".to_string())),
            1 => Just(Some("7".to_string())),
        ]
    }

    /// A tensor object for `n` rows, its members in a random order, with extra or
    /// repeated members now and then; sometimes not an object at all.
    fn tensor(n: usize) -> impl Strategy<Value = String> {
        let members = (name(), shape(n), datatype(), any::<u8>()).prop_flat_map(
            |(name, (shape, len, width), datatype, extra)| {
                (data(len, width), Just((name, shape, datatype, extra)))
            },
        );
        (members, any::<u64>()).prop_map(|((data, (name, shape, datatype, extra)), seed)| {
            let mut m = vec![
                format!("\"name\":{name}"),
                format!("\"shape\":{shape}"),
                format!("\"data\":{data}"),
            ];
            if let Some(d) = datatype {
                m.push(format!("\"datatype\":{d}"));
            }
            match extra % 32 {
                0 => m.push("\"parameters\":{\"content_type\":\"np\"}".into()),
                1 => m.push("\"data\":[1]".into()),
                2 => {
                    m.remove(1);
                }
                3 => m.push("\"name\":\"f9\"".into()),
                _ => {}
            }
            let len = m.len();
            m.rotate_left((seed as usize) % len);
            if extra == 255 {
                format!("[{}]", m.join(","))
            } else {
                format!("{{{}}}", m.join(","))
            }
        })
    }

    /// A request (`inputs`) or response (`outputs`) body whose tensors mostly have `n`
    /// rows.
    fn body(list: &'static str, n: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(tensor(n), 0..4)
            .prop_flat_map(move |tensors| {
                (
                    Just(tensors),
                    prop_oneof![
                        6 => Just(String::new()),
                        1 => Just(",\"parameters\":null".to_string()),
                        1 => Just(",\"parameters\":{\"content_type\":\"pd\"}".to_string()),
                        1 => Just(",\"parameters\":{\"content_type\":null}".to_string()),
                        1 => Just(",\"parameters\":\"pd\"".to_string()),
                        1 => Just(",\"id\":\"x\",\"outputs\":[{\"name\":\"predict\"}]".to_string()),
                        1 => Just(format!(",\"{list}\":[]")),
                    ],
                )
            })
            .prop_map(move |(tensors, extra)| {
                format!("{{\"{list}\":[{}]{extra}}}", tensors.join(","))
            })
    }

    /// A request of `n` rows, and (mostly) a response for `n` rows.
    fn exchange() -> impl Strategy<Value = (String, Option<String>)> {
        (0usize..4, prop_oneof![8 => Just(0usize), 1 => Just(1usize)]).prop_flat_map(|(n, off)| {
            (
                body("inputs", n),
                prop_oneof![6 => body("outputs", n + off).prop_map(Some), 1 => Just(None)],
            )
        })
    }

    /// The generator below is not vacuous: a good share of its exchanges is read by the
    /// fast path, the rest declined (both sides of the comparison are exercised).
    #[test]
    fn generated_exchanges_exercise_both_routes() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let (mut requests, mut responses, mut declined) = (0, 0, 0);
        for _ in 0..400 {
            let (request, response) = exchange().new_tree(&mut runner).unwrap().current();
            let response = response.unwrap_or_default();
            let cfg = PayloadConfig::default();
            let ctx = Context {
                cfg: &cfg,
                baseline: &[],
            };
            match request_rows(&ctx, request.as_bytes()) {
                Some(rows) => {
                    requests += 1;
                    if response_predictions(response.as_bytes(), rows.len()).is_some() {
                        responses += 1;
                    }
                }
                None => declined += 1,
            }
        }
        assert!(
            requests >= 40 && responses >= 8 && declined >= 40,
            "requests {requests}, responses {responses}, declined {declined}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        /// Generated OIP exchanges, well formed or not: the fast path answers exactly as
        /// the general adapter, or leaves the body to it.
        #[test]
        fn oip_fast_path_equals_the_general_adapter((request, response) in exchange()) {
            same_both_ways(request.as_bytes(), response.as_deref().map(str::as_bytes));
        }
    }
}
