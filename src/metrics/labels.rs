//! Label sets shared by the metric groups. Values are bounded by construction: model
//! names are folded past `model.max_models`, codes and reasons are fixed vocabularies.

use prometheus_client::encoding::EncodeLabelSet;

/// `{model}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// Model name.
    pub model: String,
}

/// `{model,code}` for `mlmon_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelCodeLabels {
    /// Model name.
    pub model: String,
    /// `2xx`, `3xx`, `4xx`, `5xx` or `error` (mlmon answered 502/504 itself).
    pub code: &'static str,
}

/// `{model,reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelReasonLabels {
    /// Model name.
    pub model: String,
    /// A fixed reason vocabulary.
    pub reason: &'static str,
}

/// `{reason}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A fixed reason vocabulary.
    pub reason: &'static str,
}

/// `{model,quantile}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelQuantileLabels {
    /// Model name.
    pub model: String,
    /// `0.5`, `0.95` or `0.99`.
    pub quantile: &'static str,
}

/// `{version}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// The mlmon version.
    pub version: String,
}

/// The status class of a proxied response for `mlmon_requests_total{code}`.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "error",
        Some(s) if (200..300).contains(&s) => "2xx",
        Some(s) if (300..400).contains(&s) => "3xx",
        Some(s) if (400..500).contains(&s) => "4xx",
        Some(s) if (500..600).contains(&s) => "5xx",
        Some(_) => "error",
    }
}
