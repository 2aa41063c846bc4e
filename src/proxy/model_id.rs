//! Model identity from the request path (SPEC section 2) and the bounded set of names.

use std::sync::Arc;

use dashmap::DashMap;

/// The label all models past `model.max_models` fold into.
pub const OTHER: &str = "__other__";

/// Longest model name kept; longer names are cut (label values stay small).
const MAX_NAME_LEN: usize = 128;

/// Model name and version as the path carries them.
///
/// - `/v1/models/{m}:predict`, `/v1/models/{m}/versions/{v}:predict` (KServe v1, TF Serving)
/// - `/v2/models/{m}/infer`, `/v2/models/{m}/versions/{v}/infer` (Open Inference Protocol)
/// - `/predictions/{m}`, `/predictions/{m}/{v}` (TorchServe)
pub fn from_path(path: &str) -> (Option<&str>, Option<&str>) {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ok = |s: &str| !s.is_empty();
    match segs.as_slice() {
        ["v1", "models", rest @ ..] if !rest.is_empty() => {
            let (name, version) = match rest {
                [m] => (*m, None),
                [m, "versions", v] => (*m, Some(*v)),
                _ => return (None, None),
            };
            // The verb is the `:` suffix of the last segment.
            let (name, version) = match version {
                Some(v) => (name, Some(v.split(':').next().unwrap_or(v))),
                None => (name.rsplit_once(':').map(|(m, _)| m).unwrap_or(name), None),
            };
            (Some(name).filter(|s| ok(s)), version.filter(|s| ok(s)))
        }
        ["v2", "models", m, "infer"] => (Some(*m).filter(|s| ok(s)), None),
        ["v2", "models", m, "versions", v, "infer"] => {
            (Some(*m).filter(|s| ok(s)), Some(*v).filter(|s| ok(s)))
        }
        ["predictions", m] => (Some(*m).filter(|s| ok(s)), None),
        ["predictions", m, v] => (Some(*m).filter(|s| ok(s)), Some(*v).filter(|s| ok(s))),
        _ => (None, None),
    }
}

/// The set of model names seen so far, at most `max` of them.
#[derive(Debug)]
pub struct ModelNames {
    max: usize,
    names: DashMap<String, Arc<str>>,
}

impl ModelNames {
    /// At most `max` distinct names (the configured default counts as one once seen).
    pub fn new(max: usize) -> Self {
        ModelNames {
            max,
            names: DashMap::new(),
        }
    }

    /// The label value for `name`: itself while there is room, else `__other__`.
    pub fn fold(&self, name: &str) -> Arc<str> {
        let name = clean(name);
        if let Some(n) = self.names.get(name.as_str()) {
            return n.clone();
        }
        if self.names.len() >= self.max {
            return Arc::from(OTHER);
        }
        self.names
            .entry(name.clone())
            .or_insert_with(|| Arc::from(name.as_str()))
            .clone()
    }

    /// Names seen so far.
    pub fn names(&self) -> Vec<String> {
        self.names.iter().map(|e| e.key().clone()).collect()
    }
}

fn clean(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(from_path("/v1/models/iris:predict"), (Some("iris"), None));
        assert_eq!(
            from_path("/v1/models/iris/versions/3:predict"),
            (Some("iris"), Some("3"))
        );
        assert_eq!(from_path("/v2/models/iris/infer"), (Some("iris"), None));
        assert_eq!(
            from_path("/v2/models/iris/versions/v2/infer"),
            (Some("iris"), Some("v2"))
        );
        assert_eq!(from_path("/predictions/resnet"), (Some("resnet"), None));
        assert_eq!(
            from_path("/predictions/resnet/1.0"),
            (Some("resnet"), Some("1.0"))
        );
        assert_eq!(from_path("/invocations"), (None, None));
        assert_eq!(from_path("/v2/models/iris"), (None, None));
        assert_eq!(from_path("/v2/models//infer"), (None, None));
        assert_eq!(from_path("/"), (None, None));
    }

    #[test]
    fn folding_is_bounded() {
        let n = ModelNames::new(2);
        assert_eq!(&*n.fold("a"), "a");
        assert_eq!(&*n.fold("b"), "b");
        assert_eq!(&*n.fold("c"), OTHER);
        assert_eq!(&*n.fold("a"), "a");
        assert_eq!(n.fold(&"x".repeat(1000)).len(), OTHER.len());
    }
}
