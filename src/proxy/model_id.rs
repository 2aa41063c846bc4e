//! Model identity from the request path (SPEC section 2) and the bounded set of names.

use std::sync::Arc;

use dashmap::DashMap;

/// The label all models past `model.max_models` fold into.
pub const OTHER: &str = "__other__";

/// Default `model.max_versions`.
pub const DEFAULT_MAX_VERSIONS: usize = 4;

/// Default `limits.max_name_bytes`: longer model names are not exported under their own
/// label (they fold into [`OTHER`]), so label values stay small.
pub const MAX_NAME_BYTES: usize = 128;

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
///
/// Slots go first to reserved names ([`ModelNames::reserve`]: `model.name` and models
/// with a baseline), so that a burst of junk names after a restart cannot push the real
/// model into `__other__`; the remaining slots are first come, first served.
///
/// It also keeps each model's versions ([`ModelNames::fold_version`]): at most
/// `model.max_versions` per model label, so version-labelled families stay within
/// `(max_models + 1) × (max_versions + 1)` series per label combination.
#[derive(Debug)]
pub struct ModelNames {
    max: usize,
    max_name_bytes: usize,
    names: DashMap<String, Arc<str>>,
    max_versions: usize,
    /// Model label → its version labels (first come, first served after the reserved one).
    versions: DashMap<Arc<str>, Vec<Arc<str>>>,
}

impl ModelNames {
    /// At most `max` distinct names, each at most [`MAX_NAME_BYTES`] long.
    pub fn new(max: usize) -> Self {
        Self::with_name_limit(max, MAX_NAME_BYTES)
    }

    /// At most `max` distinct names, each at most `max_name_bytes` long (UTF-8 bytes).
    pub fn with_name_limit(max: usize, max_name_bytes: usize) -> Self {
        ModelNames {
            max,
            max_name_bytes,
            names: DashMap::new(),
            max_versions: DEFAULT_MAX_VERSIONS,
            versions: DashMap::new(),
        }
    }

    /// The same, keeping at most `max_versions` versions per model (`model.max_versions`).
    pub fn with_max_versions(mut self, max_versions: usize) -> Self {
        self.max_versions = max_versions.max(1);
        self
    }

    /// Gives `version` of the model labelled `model` a slot of its own (`model.version`
    /// of `model.name`: the reference the other versions are compared with).
    pub fn reserve_version(&self, model: &str, version: &str) -> Arc<str> {
        self.version_slot(model, version, true)
    }

    /// The label value for `version` of the model labelled `model` (already folded): itself
    /// while the model has fewer than `model.max_versions` versions, else `__other__`;
    /// versions too long or holding control characters are `__other__` too.
    pub fn fold_version(&self, model: &str, version: &str) -> Arc<str> {
        self.version_slot(model, version, false)
    }

    fn version_slot(&self, model: &str, version: &str, reserved: bool) -> Arc<str> {
        if version == OTHER || self.clean(version).is_none() {
            return Arc::from(OTHER);
        }
        if let Some(vs) = self.versions.get(model) {
            if let Some(v) = vs.iter().find(|v| &***v == version) {
                return v.clone();
            }
        }
        let mut vs = self.versions.entry(Arc::from(model)).or_default();
        if let Some(v) = vs.iter().find(|v| &***v == version) {
            return v.clone();
        }
        if vs.len() >= self.max_versions && !reserved {
            return Arc::from(OTHER);
        }
        let v: Arc<str> = Arc::from(version);
        vs.push(v.clone());
        v
    }

    /// The version labels of the model labelled `model`, in the order they were given.
    pub fn versions(&self, model: &str) -> Vec<Arc<str>> {
        self.versions
            .get(model)
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    /// Gives `name` a slot of its own whatever the count (a configured or baselined model;
    /// these come from the operator, not from traffic). Returns its label value.
    pub fn reserve(&self, name: &str) -> Arc<str> {
        let Some(name) = self.clean(name) else {
            return Arc::from(OTHER);
        };
        self.names
            .entry(name.clone())
            .or_insert_with(|| Arc::from(name.as_str()))
            .clone()
    }

    /// The label value for `name`: itself while there is room, else `__other__`; names
    /// longer than the limit, or holding control characters, are `__other__` too.
    pub fn fold(&self, name: &str) -> Arc<str> {
        let Some(name) = self.clean(name) else {
            return Arc::from(OTHER);
        };
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

    /// `name` when it may be a label value on its own.
    fn clean(&self, name: &str) -> Option<String> {
        (name.len() <= self.max_name_bytes && !name.chars().any(char::is_control))
            .then(|| name.to_string())
    }

    /// Names seen so far.
    pub fn names(&self) -> Vec<String> {
        self.names.iter().map(|e| e.key().clone()).collect()
    }
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

    #[test]
    fn long_names_fold_into_other() {
        let n = ModelNames::new(100);
        assert_eq!(&*n.fold(&"m".repeat(MAX_NAME_BYTES)), "m".repeat(128));
        assert_eq!(&*n.fold(&"m".repeat(MAX_NAME_BYTES + 1)), OTHER);
        // Bytes, not characters: 65 two-byte characters are 130 bytes.
        assert_eq!(&*n.fold(&"é".repeat(65)), OTHER);
        // Quotes, backslashes and `#` are escaped by the exposition; control characters
        // have no business in a model name.
        assert_eq!(&*n.fold(r#"a"b\c # {d"#), r#"a"b\c # {d"#);
        assert_eq!(&*n.fold("bad\nname"), OTHER);
        assert_eq!(&*n.fold("a\u{0}b"), OTHER);
        assert_eq!(&*n.reserve(&"r".repeat(500)), OTHER);
    }

    #[test]
    fn versions_are_bounded_per_model() {
        let n = ModelNames::new(4).with_max_versions(2);
        n.reserve_version("iris", "stable");
        assert_eq!(&*n.fold_version("iris", "v1"), "v1");
        // `stable` was reserved, `v1` took the second slot: the rest fold.
        assert_eq!(&*n.fold_version("iris", "v2"), OTHER);
        assert_eq!(&*n.fold_version("iris", "stable"), "stable");
        assert_eq!(&*n.fold_version("iris", "v1"), "v1");
        // Per model: another model has slots of its own.
        assert_eq!(&*n.fold_version("wine", "v2"), "v2");
        assert_eq!(&*n.fold_version("wine", OTHER), OTHER);
        assert_eq!(&*n.fold_version("wine", "bad\nversion"), OTHER);
        assert_eq!(&*n.fold_version("wine", &"v".repeat(500)), OTHER);
        assert_eq!(n.versions("iris").len(), 2);
        assert_eq!(n.versions("wine").len(), 1);
        // A flood of junk versions keeps the map at its bound.
        for i in 0..1000 {
            n.fold_version("wine", &format!("junk{i}"));
        }
        assert_eq!(n.versions("wine").len(), 2);
    }

    #[test]
    fn reserved_names_keep_their_slot_after_a_flood() {
        // The v1 finding: 40 junk names after a restart took all 32 slots, and the real
        // model's traffic was counted as `__other__`.
        let n = ModelNames::new(32);
        n.reserve("default");
        n.reserve("iris");
        for i in 0..40 {
            n.fold(&format!("junk{i}"));
        }
        assert_eq!(&*n.fold("iris"), "iris");
        assert_eq!(&*n.fold("default"), "default");
        assert_eq!(&*n.fold("junk39"), OTHER);
        assert_eq!(n.names().len(), 32);
    }
}
