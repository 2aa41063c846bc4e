//! Payload adapters: turn captured request/response bodies into named feature rows and
//! predictions (SPEC section 3). Pure functions, no I/O; they run off the request path.
//!
//! Layout: one file per protocol ([`kserve_v1`], [`oip_v2`], [`mlflow`], [`seldon`],
//! [`records`], [`pointer`](mod@pointer)), `auto` detection here, and shared parts: `json` (an
//! order-preserving, borrowing JSON model), `rows` (naming and bounded row building),
//! `predict` (reading free-form prediction values).
//!
//! # Rules every format shares
//! - **Naming**: unnamed (positional) columns take `payload.feature_names`, else the
//!   baseline's feature order, else `f0, f1, …`; columns past the end of the list are `fN`
//!   (N = the column's index). Names carried by the body (object keys, Seldon `names`,
//!   DataFrame `columns`, OIP input names) win over all of these.
//! - **Values**: numbers and booleans (0/1) are numbers, strings are text, `null` is missing.
//!   `NaN`, `Infinity` and `-Infinity` tokens (emitted by Python's `json` and TF Serving) are
//!   accepted and read as missing. A scalar wrapped in single-element arrays (`[850.0]`) is
//!   that scalar.
//! - **Nested values**: in a row object (or a named column), a member whose value is a
//!   vector, matrix or object (`{"b64": …}`) is not a feature and is skipped; in a positional
//!   row it makes the request [`PayloadError::NotTabular`], since no column can be named.
//! - **Predictions**: exactly one per request row when a response is given, else
//!   [`PayloadError::PredictionCountMismatch`]; a response of `None` yields rows only.
//!   [`parse`] fails as a whole on a response error; [`parse_lenient`] keeps the rows.
//! - **Bounds**: at most [`MAX_ROWS`] rows, [`MAX_COLUMNS`] columns per row (or inputs) and
//!   [`MAX_VALUES`] values per body; nesting deeper than 128 levels is invalid JSON. No input
//!   can make these functions panic.
//! - **Privacy**: error messages name keys, shapes and counts, never feature values.
//!
//! # Auto detection
//! The path decides when the body agrees with it: `/v1/models/{m}:predict` (also
//! `:classify`, `:regress`, `:explain`) → `kserve_v1`, `/v2/models/{m}[/versions/{v}]/infer`
//! → `oip_v2`, `…/invocations` → `mlflow`, `…/api/v1.0/predictions` (or `v0.1`) → `seldon`.
//! Otherwise the body's keys decide: `inputs` as a list of tensor objects → `oip_v2`;
//! `dataframe_split` / `dataframe_records` → `mlflow`; `instances`, `inputs` or `examples` →
//! `kserve_v1`; `data` holding `ndarray` / `tensor` / `tftensor` / `names`, or `jsonData` /
//! `strData` / `binData` → `seldon`; anything else → `records`. The response is read in the
//! request's format. With `format: auto` and a pointer configured, the `pointer` format is
//! used.

mod json;
pub mod kserve_v1;
pub mod mlflow;
mod oip_fast;
pub mod oip_v2;
pub mod pointer;
mod predict;
pub mod records;
mod rows;
pub mod seldon;
mod tensor;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::Deserialize;

use crate::record::{ParsedExchange, Prediction, Row};

use json::Json;

/// Most rows read from one body (a batch larger than this is rejected, not truncated).
pub const MAX_ROWS: usize = 100_000;
/// Most columns per row, and most inputs per OIP request.
pub const MAX_COLUMNS: usize = 4_096;
/// Most feature values read from one body (rows × columns).
pub const MAX_VALUES: usize = 1_000_000;

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

impl PayloadFormat {
    /// The configuration spelling of the format.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::Auto => "auto",
            PayloadFormat::KserveV1 => "kserve_v1",
            PayloadFormat::OipV2 => "oip_v2",
            PayloadFormat::Mlflow => "mlflow",
            PayloadFormat::Seldon => "seldon",
            PayloadFormat::Records => "records",
            PayloadFormat::Pointer => "pointer",
        }
    }
}

impl fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `payload` configuration section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PayloadConfig {
    /// Wire format; `auto` detects it per request.
    pub format: PayloadFormat,
    /// Names for unnamed columns (arrays, `[N, F]` tensors), in column order.
    pub feature_names: Vec<String>,
    /// RFC 6901 pointer to the rows in the request (format `pointer`); absent = the whole body.
    pub request_pointer: Option<String>,
    /// RFC 6901 pointer to the predictions in the response (format `pointer`); absent = the
    /// whole body.
    pub response_pointer: Option<String>,
}

/// A `payload` section that cannot work, found by [`PayloadConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadConfigError {
    /// A pointer that is neither empty nor starts with `/`.
    #[error("payload.{key}: {value:?} is not an RFC 6901 JSON pointer (it must be empty or start with '/')")]
    InvalidPointer {
        /// `request_pointer` or `response_pointer`.
        key: &'static str,
        /// The configured pointer.
        value: String,
    },
    /// An empty string in `payload.feature_names`.
    #[error("payload.feature_names[{index}] is empty")]
    EmptyFeatureName {
        /// Position in the list.
        index: usize,
    },
    /// The same name twice in `payload.feature_names`.
    #[error("payload.feature_names: {name:?} appears more than once")]
    DuplicateFeatureName {
        /// The repeated name.
        name: String,
    },
    /// More names than a row may have columns.
    #[error("payload.feature_names has {count} names; at most {limit} are supported")]
    TooManyFeatureNames {
        /// Names configured.
        count: usize,
        /// [`MAX_COLUMNS`].
        limit: usize,
    },
}

impl PayloadConfig {
    /// Checks what deserialization cannot: pointer syntax and feature-name sanity.
    pub fn validate(&self) -> Result<(), PayloadConfigError> {
        for (key, value) in [
            ("request_pointer", &self.request_pointer),
            ("response_pointer", &self.response_pointer),
        ] {
            if let Some(p) = value {
                if !p.is_empty() && !p.starts_with('/') {
                    return Err(PayloadConfigError::InvalidPointer {
                        key,
                        value: p.clone(),
                    });
                }
            }
        }
        if self.feature_names.len() > MAX_COLUMNS {
            return Err(PayloadConfigError::TooManyFeatureNames {
                count: self.feature_names.len(),
                limit: MAX_COLUMNS,
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(self.feature_names.len());
        for (index, name) in self.feature_names.iter().enumerate() {
            if name.is_empty() {
                return Err(PayloadConfigError::EmptyFeatureName { index });
            }
            if !seen.insert(name.as_str()) {
                return Err(PayloadConfigError::DuplicateFeatureName { name: name.clone() });
            }
        }
        Ok(())
    }
}

/// Which body an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The request body (features).
    Request,
    /// The response body (predictions).
    Response,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Request => "request",
            Side::Response => "response",
        })
    }
}

/// Why a body was not understood; `reason()` is the `mlmon_payload_errors_total` label.
///
/// Messages name the body, keys, shapes and counts involved but never feature values.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum PayloadError {
    /// The body is empty (or only whitespace).
    #[error("{side} body is empty")]
    EmptyBody {
        /// Which body.
        side: Side,
    },
    /// The body is not JSON (nor UTF-8 JSON with `NaN`/`Infinity` tokens).
    #[error("{side} body is not valid JSON: {detail}")]
    InvalidJson {
        /// Which body.
        side: Side,
        /// The parser's message (position, not content).
        detail: String,
    },
    /// The body is JSON but not in the shape the format expects.
    #[error("{side} body not understood: {detail}")]
    UnrecognizedFormat {
        /// Which body.
        side: Side,
        /// What was expected or found.
        detail: String,
    },
    /// Shapes disagree: tensor shape vs. data length, columns of different lengths, rows
    /// longer than the declared columns, invalid dimensions.
    #[error("{side} body has inconsistent shapes: {detail}")]
    ShapeMismatch {
        /// Which body.
        side: Side,
        /// Which shapes disagree.
        detail: String,
    },
    /// The data cannot be read as a table: positional rows holding nested arrays, tensors of
    /// rank > 2 (images, sequences), binary payloads.
    #[error("{side} body is not tabular: {detail}")]
    NotTabular {
        /// Which body.
        side: Side,
        /// What was nested.
        detail: String,
    },
    /// The response does not hold one prediction per request row.
    #[error("response holds {predictions} predictions for {rows} request rows")]
    PredictionCountMismatch {
        /// Rows in the request.
        rows: usize,
        /// Predictions found in the response.
        predictions: usize,
    },
    /// `payload.request_pointer` / `response_pointer` does not resolve in the body.
    #[error(
        "payload.{}_pointer {pointer:?} does not resolve in the {side} body",
        side
    )]
    PointerNotFound {
        /// Which body.
        side: Side,
        /// The configured pointer.
        pointer: String,
    },
    /// More rows than [`MAX_ROWS`].
    #[error("{side} body has {rows} rows; at most {limit} are read")]
    TooManyRows {
        /// Which body.
        side: Side,
        /// Rows found (or declared by a shape).
        rows: usize,
        /// The limit.
        limit: usize,
    },
    /// More columns (or OIP inputs) than [`MAX_COLUMNS`].
    #[error("{side} body has {columns} columns; at most {limit} are read")]
    TooManyColumns {
        /// Which body.
        side: Side,
        /// Columns found.
        columns: usize,
        /// The limit.
        limit: usize,
    },
    /// More values than [`MAX_VALUES`].
    #[error("{side} body has at least {values} values; at most {limit} are read")]
    TooManyValues {
        /// Which body.
        side: Side,
        /// Values found (or declared by a shape) so far.
        values: usize,
        /// The limit.
        limit: usize,
    },
}

impl PayloadError {
    /// Every value [`PayloadError::reason`] can return, for pre-registering metric series
    /// and documentation.
    pub const REASONS: [&'static str; 10] = [
        "empty_body",
        "invalid_json",
        "unrecognized_format",
        "shape_mismatch",
        "not_tabular",
        "prediction_count_mismatch",
        "pointer_not_found",
        "too_many_rows",
        "too_many_columns",
        "too_many_values",
    ];

    /// Bounded, stable label value for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PayloadError::EmptyBody { .. } => "empty_body",
            PayloadError::InvalidJson { .. } => "invalid_json",
            PayloadError::UnrecognizedFormat { .. } => "unrecognized_format",
            PayloadError::ShapeMismatch { .. } => "shape_mismatch",
            PayloadError::NotTabular { .. } => "not_tabular",
            PayloadError::PredictionCountMismatch { .. } => "prediction_count_mismatch",
            PayloadError::PointerNotFound { .. } => "pointer_not_found",
            PayloadError::TooManyRows { .. } => "too_many_rows",
            PayloadError::TooManyColumns { .. } => "too_many_columns",
            PayloadError::TooManyValues { .. } => "too_many_values",
        }
    }

    /// Which body the error is about (`PredictionCountMismatch` is about the response).
    pub fn side(&self) -> Side {
        match self {
            PayloadError::EmptyBody { side }
            | PayloadError::InvalidJson { side, .. }
            | PayloadError::UnrecognizedFormat { side, .. }
            | PayloadError::ShapeMismatch { side, .. }
            | PayloadError::NotTabular { side, .. }
            | PayloadError::PointerNotFound { side, .. }
            | PayloadError::TooManyRows { side, .. }
            | PayloadError::TooManyColumns { side, .. }
            | PayloadError::TooManyValues { side, .. } => *side,
            PayloadError::PredictionCountMismatch { .. } => Side::Response,
        }
    }
}

/// What [`parse_lenient`] returns: the rows, and the predictions unless the response was
/// not understood.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LenientParse {
    /// Rows, and predictions when `response_error` is `None`.
    pub exchange: ParsedExchange,
    /// Why the response yielded no predictions (the request was understood).
    pub response_error: Option<PayloadError>,
}

/// Parses one exchange.
///
/// `response` is `None` when the response was not captured or was not a success.
/// `baseline_features` is the baseline's feature order, used to name unnamed columns
/// when `payload.feature_names` is empty.
///
/// Fails when either body is not understood; see [`parse_lenient`] to keep the rows of a
/// request whose response was not understood.
pub fn parse(
    cfg: &PayloadConfig,
    path: &str,
    request: &[u8],
    response: Option<&[u8]>,
    baseline_features: &[String],
) -> Result<ParsedExchange, PayloadError> {
    let parsed = parse_lenient(cfg, path, request, response, baseline_features)?;
    match parsed.response_error {
        Some(e) => Err(e),
        None => Ok(parsed.exchange),
    }
}

/// Like [`parse`], but a response that is not understood still returns the request's rows,
/// with the response's error alongside (count it, and feed the rows to the input analyses).
/// Request errors are still errors.
pub fn parse_lenient(
    cfg: &PayloadConfig,
    path: &str,
    request: &[u8],
    response: Option<&[u8]>,
    baseline_features: &[String],
) -> Result<LenientParse, PayloadError> {
    parse_lenient_with(cfg, path, request, response, baseline_features, true)
}

/// [`parse_lenient`], with the typed OIP fast path ([`oip_fast`]) allowed or not (tests
/// compare the two).
fn parse_lenient_with(
    cfg: &PayloadConfig,
    path: &str,
    request: &[u8],
    response: Option<&[u8]>,
    baseline_features: &[String],
    allow_fast: bool,
) -> Result<LenientParse, PayloadError> {
    let ctx = Context {
        cfg,
        baseline: baseline_features,
    };
    let fast = if allow_fast && oip_fast_applies(cfg, path) {
        oip_fast::request_rows(&ctx, request)
    } else {
        None
    };
    let (format, rows) = match fast {
        Some(rows) => (PayloadFormat::OipV2, rows),
        None => {
            let mut request_scratch = None;
            let req = json::parse_body(request, Side::Request, &mut request_scratch)?;
            let format = resolve_format(cfg, path, &req);
            (format, request_rows(format, &ctx, &req)?)
        }
    };

    let (predictions, response_error) = match response {
        None => (Vec::new(), None),
        Some(body) => {
            let fast = if allow_fast && format == PayloadFormat::OipV2 {
                oip_fast::response_predictions(body, rows.len())
            } else {
                None
            };
            match fast.map_or_else(|| response_predictions(format, &ctx, body, rows.len()), Ok) {
                Ok(p) => (p, None),
                Err(e) => (Vec::new(), Some(e)),
            }
        }
    };
    Ok(LenientParse {
        exchange: ParsedExchange { rows, predictions },
        response_error,
    })
}

/// Whether the request is read as OIP v2 whenever its body is a list of tensor objects:
/// `payload.format: oip_v2`, or `auto` without pointers on an OIP path or a path that names
/// no format (the body then decides, and OIP comes first). Only then may the typed fast
/// path ([`oip_fast`]) answer; a body it declines takes the general route.
fn oip_fast_applies(cfg: &PayloadConfig, path: &str) -> bool {
    match cfg.format {
        PayloadFormat::OipV2 => true,
        PayloadFormat::Auto => {
            cfg.request_pointer.is_none()
                && cfg.response_pointer.is_none()
                && matches!(format_from_path(path), None | Some(PayloadFormat::OipV2))
        }
        _ => false,
    }
}

/// The format [`parse`] reads `request` (sent to `path`) in, after `auto` detection; used
/// to answer the model in its own wire format (explanations re-send rows).
pub fn request_format(
    cfg: &PayloadConfig,
    path: &str,
    request: &[u8],
) -> Result<PayloadFormat, PayloadError> {
    let mut scratch = None;
    let req = json::parse_body(request, Side::Request, &mut scratch)?;
    Ok(resolve_format(cfg, path, &req))
}

/// Settings the adapters read.
pub(crate) struct Context<'c> {
    pub(crate) cfg: &'c PayloadConfig,
    pub(crate) baseline: &'c [String],
}

impl<'c> Context<'c> {
    /// Names for positional columns when the body names none.
    pub(crate) fn fallback_names(&self) -> rows::ColumnNames<'c> {
        rows::ColumnNames::fallback(&self.cfg.feature_names, self.baseline)
    }
}

fn request_rows(
    format: PayloadFormat,
    ctx: &Context<'_>,
    req: &Json<'_>,
) -> Result<Vec<Row>, PayloadError> {
    match format {
        PayloadFormat::KserveV1 => kserve_v1::request_rows(ctx, req),
        PayloadFormat::OipV2 => oip_v2::request_rows(ctx, req),
        PayloadFormat::Mlflow => mlflow::request_rows(ctx, req),
        PayloadFormat::Seldon => seldon::request_rows(ctx, req),
        PayloadFormat::Pointer => pointer::request_rows(ctx, req),
        PayloadFormat::Records | PayloadFormat::Auto => records::request_rows(ctx, req),
    }
}

fn response_predictions(
    format: PayloadFormat,
    ctx: &Context<'_>,
    body: &[u8],
    rows: usize,
) -> Result<Vec<Prediction>, PayloadError> {
    let mut scratch = None;
    let resp = json::parse_body(body, Side::Response, &mut scratch)?;
    match format {
        PayloadFormat::KserveV1 => kserve_v1::response_predictions(&resp, rows),
        PayloadFormat::OipV2 => oip_v2::response_predictions(&resp, rows),
        PayloadFormat::Mlflow => mlflow::response_predictions(&resp, rows),
        PayloadFormat::Seldon => seldon::response_predictions(&resp, rows),
        PayloadFormat::Pointer => pointer::response_predictions(ctx, &resp, rows),
        PayloadFormat::Records | PayloadFormat::Auto => records::response_predictions(&resp, rows),
    }
}

fn resolve_format(cfg: &PayloadConfig, path: &str, req: &Json<'_>) -> PayloadFormat {
    match cfg.format {
        PayloadFormat::Auto if cfg.request_pointer.is_some() || cfg.response_pointer.is_some() => {
            PayloadFormat::Pointer
        }
        PayloadFormat::Auto => detect(path, req),
        other => other,
    }
}

/// The format `auto` picks for a request; see the module documentation.
fn detect(path: &str, req: &Json<'_>) -> PayloadFormat {
    if let Some(f) = format_from_path(path) {
        if body_fits(f, req) {
            return f;
        }
    }
    format_from_body(req)
}

fn format_from_path(path: &str) -> Option<PayloadFormat> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    // The suffix first: a substring search costs more than comparing the end.
    if [":predict", ":classify", ":regress", ":explain"]
        .iter()
        .any(|verb| path.ends_with(verb))
        && path.contains("/v1/models/")
    {
        return Some(PayloadFormat::KserveV1);
    }
    if path.ends_with("/infer") && path.contains("/v2/models/") {
        return Some(PayloadFormat::OipV2);
    }
    if path.ends_with("/invocations") {
        return Some(PayloadFormat::Mlflow);
    }
    if path.contains("/api/v1.0/predictions") || path.contains("/api/v0.1/predictions") {
        return Some(PayloadFormat::Seldon);
    }
    None
}

fn body_fits(format: PayloadFormat, req: &Json<'_>) -> bool {
    match format {
        PayloadFormat::OipV2 => oip_v2::looks_like(req),
        PayloadFormat::KserveV1 => kserve_v1::looks_like(req),
        PayloadFormat::Mlflow => mlflow::looks_like(req),
        PayloadFormat::Seldon => seldon::looks_like(req),
        _ => true,
    }
}

fn format_from_body(req: &Json<'_>) -> PayloadFormat {
    if oip_v2::looks_like(req) {
        PayloadFormat::OipV2
    } else if req.get("dataframe_split").is_some() || req.get("dataframe_records").is_some() {
        PayloadFormat::Mlflow
    } else if kserve_v1::looks_like(req) {
        PayloadFormat::KserveV1
    } else if seldon::looks_like(req) {
        PayloadFormat::Seldon
    } else {
        PayloadFormat::Records
    }
}
