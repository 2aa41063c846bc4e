//! Rows → request body, in the wire format of a request the model already accepted.
//!
//! mlmon explains a model as a black box: it re-sends (modified) rows to the model server.
//! The server only understands its own protocol, so a [`Template`] is learnt from a real
//! proxied request (format, OIP input names and datatypes, tensor layout, batch shape) and
//! [`Template::encode`] writes new rows the same way. Reading the answer back is the job of
//! [`crate::payload::parse_lenient`], with the same configuration as the proxy.

use serde_json::{json, Map, Value};

use crate::payload::PayloadFormat;
use crate::record::{FeatureValue, Row};

/// Why a template cannot be learnt or rows cannot be encoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncodeError {
    /// The request body is not JSON in a shape a template can be learnt from.
    #[error("request to {path:?} cannot serve as a template for format {format}: {detail}")]
    Unusable {
        /// Request path.
        path: String,
        /// The format the payload adapters read the request in.
        format: PayloadFormat,
        /// What is missing.
        detail: String,
    },
    /// The `pointer` format: a custom JSON layout mlmon cannot write.
    #[error("payload format {0} cannot be re-encoded (custom JSON layout); explanations need one of oip_v2, kserve_v1, mlflow, seldon, records")]
    Unsupported(PayloadFormat),
    /// A row lacks a feature the template's layout needs.
    #[error("row {row} has no value for feature {feature:?}")]
    MissingFeature {
        /// Row index.
        row: usize,
        /// The feature.
        feature: String,
    },
}

/// One OIP input of a one-input-per-feature request.
#[derive(Debug, Clone, PartialEq)]
pub struct OipInput {
    /// Input (= feature) name.
    pub name: String,
    /// OIP datatype (`FP64`, `INT64`, `BYTES`, …) as the client sent it.
    pub datatype: String,
    /// Whether the shape was `[N, 1]` (else `[N]`).
    pub column: bool,
}

/// The wire layout of one model's requests.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    /// OIP, one input per feature.
    OipInputs {
        /// The inputs, in request order.
        inputs: Vec<OipInput>,
    },
    /// OIP, one `[N, F]` tensor; columns in feature order.
    OipTensor {
        /// Input name.
        name: String,
        /// Datatype of the tensor.
        datatype: String,
    },
    /// KServe v1 `instances` as objects (`true`) or arrays in feature order (`false`).
    KserveV1 {
        /// Rows as objects.
        objects: bool,
    },
    /// MLflow `dataframe_split`.
    Mlflow,
    /// Seldon `{"data": {"names", "ndarray"}}`.
    Seldon,
    /// A JSON array of objects (`batch`), or one object per request.
    Records {
        /// Whether the server accepted an array (else rows go one per request).
        batch: bool,
    },
}

/// What mlmon learnt from one proxied request of a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Request path on the upstream (with query when the proxy kept one).
    pub path: String,
    /// Wire layout.
    pub layout: Layout,
    /// OIP top-level `parameters` to repeat (e.g. `{"content_type": "pd"}`).
    pub parameters: Option<Value>,
    /// OIP `outputs` the client asked for, repeated (e.g. `[{"name": "predict_proba"}]`, so
    /// that explanations compare the scores the client reads).
    pub outputs: Option<Value>,
    /// Feature names in the order of the request's rows.
    pub features: Vec<String>,
}

impl Template {
    /// Learns a template from a request the model accepted. `format` is what the payload
    /// adapters read it as ([`crate::payload::request_format`]); `first_row` its parsed
    /// first row (names the columns).
    pub fn learn(
        path: &str,
        format: PayloadFormat,
        body: &Value,
        first_row: &Row,
    ) -> Result<Template, EncodeError> {
        let unusable = |detail: &str| EncodeError::Unusable {
            path: path.to_string(),
            format,
            detail: detail.to_string(),
        };
        let features: Vec<String> = first_row.values.iter().map(|(n, _)| n.clone()).collect();
        let mut parameters = None;
        let mut outputs = None;
        let layout = match format {
            PayloadFormat::OipV2 => {
                let inputs = body
                    .get("inputs")
                    .and_then(Value::as_array)
                    .ok_or_else(|| unusable("no inputs list"))?;
                parameters = body.get("parameters").cloned();
                outputs = body.get("outputs").cloned();
                let tensor = inputs.len() == 1
                    && inputs[0]
                        .get("shape")
                        .and_then(Value::as_array)
                        .map(|s| s.iter().skip(1).any(|d| d.as_u64() != Some(1)))
                        .unwrap_or(false);
                if tensor {
                    Layout::OipTensor {
                        name: str_field(&inputs[0], "name").unwrap_or_else(|| "input-0".into()),
                        datatype: str_field(&inputs[0], "datatype")
                            .unwrap_or_else(|| "FP64".into()),
                    }
                } else {
                    let inputs = inputs
                        .iter()
                        .filter_map(|i| {
                            let name = str_field(i, "name")?;
                            let shape = i.get("shape").and_then(Value::as_array)?;
                            if shape.len() > 2 || (shape.len() == 2 && shape[1].as_u64() != Some(1))
                            {
                                return None;
                            }
                            Some(OipInput {
                                name,
                                datatype: str_field(i, "datatype").unwrap_or_else(|| "FP64".into()),
                                column: shape.len() == 2,
                            })
                        })
                        .collect::<Vec<_>>();
                    if inputs.is_empty() {
                        return Err(unusable("no tabular input"));
                    }
                    Layout::OipInputs { inputs }
                }
            }
            PayloadFormat::KserveV1 => {
                let first = ["instances", "inputs"]
                    .iter()
                    .find_map(|k| body.get(*k).and_then(Value::as_array))
                    .and_then(|a| a.first())
                    .ok_or_else(|| unusable("no instances"))?;
                Layout::KserveV1 {
                    objects: first.is_object(),
                }
            }
            PayloadFormat::Mlflow => Layout::Mlflow,
            PayloadFormat::Seldon => Layout::Seldon,
            PayloadFormat::Records | PayloadFormat::Auto => Layout::Records {
                batch: body.is_array(),
            },
            PayloadFormat::Pointer => return Err(EncodeError::Unsupported(format)),
        };
        Ok(Template {
            path: path.to_string(),
            layout,
            parameters,
            outputs,
            features,
        })
    }

    /// Whether several rows can go in one request.
    pub fn batches(&self) -> bool {
        !matches!(self.layout, Layout::Records { batch: false })
    }

    /// Encodes `rows` (each carrying the template's features) as one request body. For a
    /// non-batching layout, pass one row at a time.
    pub fn encode(&self, rows: &[Row]) -> Result<Value, EncodeError> {
        let cell = |r: usize, name: &str| -> Result<&FeatureValue, EncodeError> {
            rows[r]
                .get(name)
                .ok_or_else(|| EncodeError::MissingFeature {
                    row: r,
                    feature: name.to_string(),
                })
        };
        let matrix = || -> Result<Vec<Value>, EncodeError> {
            (0..rows.len())
                .map(|r| {
                    self.features
                        .iter()
                        .map(|f| cell(r, f).map(plain))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Value::Array)
                })
                .collect()
        };
        let object = |r: usize| -> Result<Value, EncodeError> {
            let mut m = Map::new();
            for f in &self.features {
                m.insert(f.clone(), plain(cell(r, f)?));
            }
            Ok(Value::Object(m))
        };
        let objects = || (0..rows.len()).map(object).collect::<Result<Vec<_>, _>>();
        let n = rows.len();
        let body = match &self.layout {
            Layout::OipInputs { inputs } => {
                let mut out = Vec::with_capacity(inputs.len());
                for input in inputs {
                    let data = (0..n)
                        .map(|r| cell(r, &input.name).map(|v| typed(v, &input.datatype)))
                        .collect::<Result<Vec<_>, _>>()?;
                    let shape = if input.column {
                        json!([n, 1])
                    } else {
                        json!([n])
                    };
                    out.push(json!({
                        "name": input.name,
                        "shape": shape,
                        "datatype": input.datatype,
                        "data": data,
                    }));
                }
                self.with_parameters(json!({ "inputs": out }))
            }
            Layout::OipTensor { name, datatype } => {
                let mut data = Vec::with_capacity(n * self.features.len());
                for r in 0..n {
                    for f in &self.features {
                        data.push(typed(cell(r, f)?, datatype));
                    }
                }
                self.with_parameters(json!({ "inputs": [{
                    "name": name,
                    "shape": [n, self.features.len()],
                    "datatype": datatype,
                    "data": data,
                }]}))
            }
            Layout::KserveV1 { objects: true } => json!({ "instances": objects()? }),
            Layout::KserveV1 { objects: false } => json!({ "instances": matrix()? }),
            Layout::Mlflow => json!({ "dataframe_split": {
                "columns": self.features,
                "data": matrix()?,
            }}),
            Layout::Seldon => json!({ "data": {
                "names": self.features,
                "ndarray": matrix()?,
            }}),
            Layout::Records { batch: true } => Value::Array(objects()?),
            Layout::Records { batch: false } => match n {
                1 => object(0)?,
                _ => Value::Array(objects()?),
            },
        };
        Ok(body)
    }

    fn with_parameters(&self, mut body: Value) -> Value {
        if let Some(m) = body.as_object_mut() {
            if let Some(p) = &self.parameters {
                m.insert("parameters".into(), p.clone());
            }
            if let Some(o) = &self.outputs {
                m.insert("outputs".into(), o.clone());
            }
        }
        body
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A feature value as plain JSON.
fn plain(v: &FeatureValue) -> Value {
    match v {
        FeatureValue::Number(x) => json!(x),
        FeatureValue::Text(s) => Value::String(s.clone()),
        FeatureValue::Missing => Value::Null,
    }
}

/// A feature value as an element of an OIP tensor of `datatype`.
fn typed(v: &FeatureValue, datatype: &str) -> Value {
    match (v, datatype) {
        (FeatureValue::Number(x), d) if d.starts_with("INT") || d.starts_with("UINT") => {
            // A median between two integers is rounded: integer tensors take integers.
            json!(x.round() as i64)
        }
        (FeatureValue::Number(x), "BOOL") => json!(*x != 0.0),
        (FeatureValue::Number(x), "BYTES") => Value::String(x.to_string()),
        _ => plain(v),
    }
}
