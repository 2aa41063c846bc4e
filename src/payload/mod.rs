//! Payload adapters: turn captured request/response bodies into named feature rows and
//! predictions (SPEC section 3). Pure functions, no I/O; they run off the request path.
//!
//! Layout: one file per protocol (`kserve_v1`, `oip_v2`, `mlflow`, `seldon`, `records`,
//! `pointer`) and `auto` detection here.

use serde::Deserialize;

use crate::record::ParsedExchange;

/// Which wire format the model server speaks (`payload.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// Detect from path and body.
    #[default]
    Auto,
    /// KServe v1 / TF Serving: `{"instances": [...]}` → `{"predictions": [...]}`.
    KserveV1,
    /// KServe v2 / Open Inference Protocol (MLServer, Triton).
    OipV2,
    /// MLflow `/invocations`.
    Mlflow,
    /// Seldon Core v1.
    Seldon,
    /// A JSON object or array of objects.
    Records,
    /// RFC 6901 pointers into custom JSON.
    Pointer,
}

/// The `payload` configuration section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayloadConfig {
    /// Wire format; `auto` detects it per request.
    pub format: PayloadFormat,
    /// Names for unnamed columns (arrays, `[N, F]` tensors), in column order.
    pub feature_names: Vec<String>,
    /// RFC 6901 pointer to the rows in the request (format `pointer`).
    pub request_pointer: Option<String>,
    /// RFC 6901 pointer to the predictions in the response (format `pointer`).
    pub response_pointer: Option<String>,
}

/// Why a body was not understood; `reason()` is the `mlmon_payload_errors_total` label.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PayloadError {
    /// PLACEHOLDER: the payload helper defines the real variants.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
}

impl PayloadError {
    /// Bounded, stable label value for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PayloadError::InvalidJson(_) => "invalid_json",
        }
    }
}

/// Parses one exchange.
///
/// `response` is `None` when the response was not captured or was not a success.
/// `baseline_features` is the baseline's feature order, used to name unnamed columns
/// when `payload.feature_names` is empty.
pub fn parse(
    cfg: &PayloadConfig,
    path: &str,
    request: &[u8],
    response: Option<&[u8]>,
    baseline_features: &[String],
) -> Result<ParsedExchange, PayloadError> {
    let _ = (cfg, path, request, response, baseline_features);
    Err(PayloadError::InvalidJson("not implemented".into()))
}
