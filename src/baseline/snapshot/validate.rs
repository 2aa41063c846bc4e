//! The checks a snapshot passes on load and after a build; each error is
//! (JSON path, message).

use super::{
    Bins, EntryRole, FeatureBaseline, FeatureType, JointSample, NamedMap, ProbabilityInfo,
    Quantiles, Snapshot, Thresholds, FORMAT_VERSION, MAX_BINS, MAX_CATEGORIES, MAX_JOINT_CELLS,
    MAX_SAMPLE_LEN, MIN_FORMAT_VERSION, PROPORTION_SUM_TOLERANCE,
};

impl JointSample {
    /// Checks the sample against its snapshot; the error is (JSON path, message).
    fn validate(&self, snapshot: &Snapshot) -> Result<(), (String, String)> {
        let at = |f: &str| format!("joint_sample.{f}");
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let known = match c.as_str() {
                "prediction" if snapshot.prediction.is_some() => true,
                "target" if snapshot.target.is_some() => true,
                name => {
                    snapshot.features.get(name).is_some()
                        || snapshot
                            .probability
                            .as_ref()
                            .is_some_and(|p| p.columns.iter().any(|c| c == name))
                }
            };
            if !known {
                return Err((
                    at(&format!("columns[{i}]")),
                    format!(
                        "{c:?} is not a feature, prediction, target or probability column of this snapshot"
                    ),
                ));
            }
            if !seen.insert(c.as_str()) {
                return Err((at(&format!("columns[{i}]")), format!("{c:?} appears twice")));
            }
        }
        if self.rows.len().saturating_mul(self.columns.len()) > MAX_JOINT_CELLS {
            return Err((
                at("rows"),
                format!(
                    "{} rows of {} columns exceed the limit of {MAX_JOINT_CELLS} cells",
                    self.rows.len(),
                    self.columns.len()
                ),
            ));
        }
        let ragged = if !self.rows.is_empty() && self.rows.width() != self.columns.len() {
            Some((0, self.rows.width()))
        } else {
            self.rows.ragged()
        };
        if let Some((i, len)) = ragged {
            return Err((
                at(&format!("rows[{i}]")),
                format!(
                    "has {len} cells, expected one per column ({})",
                    self.columns.len()
                ),
            ));
        }
        for (i, r) in self.rows.iter().enumerate() {
            if let Some(j) = r.iter().position(|v| v.is_some_and(|v| !v.is_finite())) {
                return Err((
                    at(&format!("rows[{i}][{j}]")),
                    "must be a finite number or null".into(),
                ));
            }
        }
        Ok(())
    }
}

impl ProbabilityInfo {
    /// Checks the score columns and classes against their snapshot.
    fn validate(&self, snapshot: &Snapshot) -> Result<(), (String, String)> {
        let at = |f: String| format!("probability.{f}");
        if self.columns.is_empty() {
            return Err((at("columns".into()), "must name at least one column".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let clash = c.is_empty()
                || snapshot.features.get(c).is_some()
                || (c == "prediction" && snapshot.prediction.is_some())
                || (c == "target" && snapshot.target.is_some());
            if clash {
                return Err((
                    at(format!("columns[{i}]")),
                    format!("{c:?} must be a non-empty name that is not a feature, the prediction or the target"),
                ));
            }
            if !seen.insert(c.as_str()) {
                return Err((at(format!("columns[{i}]")), format!("{c:?} appears twice")));
            }
        }
        if !self.classes.is_empty() {
            let want = if self.columns.len() == 1 {
                2
            } else {
                self.columns.len()
            };
            if self.classes.len() != want {
                return Err((
                    at("classes".into()),
                    format!(
                        "{} classes for {} column(s); expected {want} (one per column, or [negative, positive] for one column)",
                        self.classes.len(),
                        self.columns.len()
                    ),
                ));
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(i) = self.classes.iter().position(|c| !seen.insert(c.as_str())) {
                return Err((at(format!("classes[{i}]")), "appears twice".into()));
            }
        }
        Ok(())
    }
}

impl Snapshot {
    /// Checks every value; the error is (JSON path, message).
    pub(crate) fn validate(&self) -> Result<(), (String, String)> {
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&self.format_version) {
            return Err((
                "format_version".into(),
                format!(
                    "unsupported format_version {} (this mlmon reads {MIN_FORMAT_VERSION} to {FORMAT_VERSION})",
                    self.format_version
                ),
            ));
        }
        if self.model.name.trim().is_empty() {
            return Err(("model.name".into(), "must not be empty".into()));
        }
        if self.features.is_empty() && self.prediction.is_none() {
            return Err((
                "features".into(),
                "a snapshot needs at least one feature or a prediction".into(),
            ));
        }
        if self.features.names().any(|n| n.is_empty()) {
            return Err(("features".into(), "feature names must not be empty".into()));
        }
        for (name, entry) in [("prediction", &self.prediction), ("target", &self.target)] {
            if entry.is_some() && self.features.get(name).is_some() {
                return Err((
                    format!("features.{name}"),
                    format!(
                        "a feature cannot be named \"{name}\" when the snapshot has a {name} entry"
                    ),
                ));
            }
        }
        let prefix = |name: &str, role: EntryRole| match role {
            EntryRole::Input => format!("features.{name}"),
            _ => name.to_string(),
        };
        for (name, role, entry) in self.entries() {
            entry.validate(&prefix(name, role))?;
        }
        if let Some(p) = &self.probability {
            p.validate(self)?;
        }
        if let Some(j) = &self.joint_sample {
            j.validate(self)?;
        }
        Ok(())
    }
}

impl FeatureBaseline {
    /// Checks one entry; `at` is its JSON path.
    fn validate(&self, at: &str) -> Result<(), (String, String)> {
        let err = |field: &str, msg: String| Err((format!("{at}.{field}"), msg));
        let s = &self.stats;
        if !(0.0..=1.0).contains(&s.missing_ratio) {
            return err(
                "stats.missing_ratio",
                format!("{} is outside [0, 1]", s.missing_ratio),
            );
        }
        if let Some(std) = s.std {
            if std < 0.0 {
                return err("stats.std", format!("{std} is negative"));
            }
        }
        if let (Some(min), Some(max)) = (s.min, s.max) {
            if min > max {
                return err("stats.min", format!("min {min} is greater than max {max}"));
            }
        }
        if let Some(q) = &s.quantiles {
            let v = q.values();
            for i in 1..v.len() {
                if v[i] < v[i - 1] {
                    return err(
                        &format!("stats.quantiles.{}", Quantiles::NAMES[i]),
                        format!(
                            "{} is below {} = {} (quantiles must not decrease)",
                            v[i],
                            Quantiles::NAMES[i - 1],
                            v[i - 1]
                        ),
                    );
                }
            }
        }
        match self.kind {
            FeatureType::Numeric => {
                if self.categories.is_some() {
                    return err(
                        "categories",
                        "only categorical features have categories".into(),
                    );
                }
                let Some(bins) = &self.bins else {
                    return Err((at.to_string(), "numeric features need \"bins\"".into()));
                };
                validate_bins(bins).map_err(|(f, m)| (format!("{at}.bins.{f}"), m))?;
                if s.count > 0 {
                    for (field, value) in [("mean", s.mean), ("min", s.min), ("max", s.max)] {
                        if value.is_none() {
                            return err(
                                "stats",
                                format!("numeric features with values need \"{field}\""),
                            );
                        }
                    }
                    if self.sample.is_empty() {
                        return err(
                            "sample",
                            "numeric features with values need a non-empty reference sample".into(),
                        );
                    }
                }
                if self.sample.len() > MAX_SAMPLE_LEN {
                    return err(
                        "sample",
                        format!(
                            "{} values, more than the {MAX_SAMPLE_LEN} accepted",
                            self.sample.len()
                        ),
                    );
                }
                // JSON cannot carry NaN or infinities, but a snapshot built
                // in memory could; refuse them here too.
                if let Some(i) = self.sample.iter().position(|v| !v.is_finite()) {
                    return err(&format!("sample[{i}]"), "must be a finite number".into());
                }
                if let Some(sketch) = &self.sketch {
                    if sketch.count() != s.count {
                        return err(
                            "sketch.count",
                            format!(
                                "{} values, but stats.count is {} (the sketch holds every non-missing value)",
                                sketch.count(),
                                s.count
                            ),
                        );
                    }
                }
            }
            FeatureType::Categorical => {
                if self.bins.is_some() {
                    return err("bins", "only numeric features have bins".into());
                }
                if !self.sample.is_empty() {
                    return err(
                        "sample",
                        "only numeric features have a reference sample".into(),
                    );
                }
                if self.sketch.is_some() {
                    return err("sketch", "only numeric features have a sketch".into());
                }
                let Some(categories) = &self.categories else {
                    return Err((
                        at.to_string(),
                        "categorical features need \"categories\"".into(),
                    ));
                };
                validate_categories(categories, s.count)
                    .map_err(|(f, m)| (format!("{at}.categories{f}"), m))?;
            }
        }
        if let Some(t) = &self.thresholds {
            validate_thresholds(t).map_err(|(f, m)| (format!("{at}.thresholds.{f}"), m))?;
        }
        if let Some(imp) = self.importance {
            if !imp.is_finite() || imp < 0.0 {
                return err("importance", format!("{imp} must be a non-negative number"));
            }
        }
        Ok(())
    }
}

fn validate_bins(bins: &Bins) -> Result<(), (String, String)> {
    if bins.edges.len() >= MAX_BINS {
        return Err((
            "edges".into(),
            format!(
                "{} edges, at most {} accepted",
                bins.edges.len(),
                MAX_BINS - 1
            ),
        ));
    }
    for (i, e) in bins.edges.iter().enumerate() {
        if !e.is_finite() {
            return Err((format!("edges[{i}]"), "must be a finite number".into()));
        }
        if i > 0 && *e <= bins.edges[i - 1] {
            return Err((
                format!("edges[{i}]"),
                format!(
                    "{e} is not greater than edges[{}] = {} (edges must be strictly increasing)",
                    i - 1,
                    bins.edges[i - 1]
                ),
            ));
        }
    }
    let expected = bins.edges.len() + 1;
    if bins.proportions.len() != expected {
        return Err((
            "proportions".into(),
            format!(
                "expected {expected} values ({} edges + 1), found {}",
                bins.edges.len(),
                bins.proportions.len()
            ),
        ));
    }
    check_proportions(bins.proportions.iter().copied(), |i| {
        format!("proportions[{i}]")
    })
    .map_err(|(f, m)| {
        if f.is_empty() {
            ("proportions".into(), m)
        } else {
            (f, m)
        }
    })
}

fn validate_categories(categories: &NamedMap<f64>, count: u64) -> Result<(), (String, String)> {
    if categories.len() > MAX_CATEGORIES {
        return Err((
            String::new(),
            format!(
                "{} categories, at most {MAX_CATEGORIES} accepted",
                categories.len()
            ),
        ));
    }
    if categories.is_empty() {
        if count > 0 {
            return Err((
                String::new(),
                "categorical features with values need at least one category".into(),
            ));
        }
        return Ok(());
    }
    let names: Vec<&str> = categories.names().collect();
    check_proportions(categories.iter().map(|(_, p)| *p), |i| {
        format!(".{}", names.get(i).copied().unwrap_or_default())
    })
}

/// Values must be finite, non-negative and add up to 1; the error path is
/// `name(i)` for one value, empty for the sum.
fn check_proportions(
    values: impl Iterator<Item = f64>,
    name: impl Fn(usize) -> String,
) -> Result<(), (String, String)> {
    let mut sum = 0.0;
    for (i, p) in values.enumerate() {
        if !p.is_finite() || p < 0.0 {
            return Err((name(i), format!("{p} must be a non-negative number")));
        }
        sum += p;
    }
    if (sum - 1.0).abs() > PROPORTION_SUM_TOLERANCE {
        return Err((
            String::new(),
            format!("proportions add up to {sum}, expected 1 (±{PROPORTION_SUM_TOLERANCE})"),
        ));
    }
    Ok(())
}

fn validate_thresholds(t: &Thresholds) -> Result<(), (String, String)> {
    let higher_is_worse = [
        ("psi", t.psi),
        ("js_divergence", t.js_divergence),
        ("ks_statistic", t.ks_statistic),
        ("wasserstein", t.wasserstein),
    ];
    for (name, pair) in higher_is_worse {
        if let Some(p) = pair {
            for (level, v) in [("warning", p.warning), ("critical", p.critical)] {
                if !v.is_finite() || v < 0.0 {
                    return Err((
                        format!("{name}.{level}"),
                        format!("{v} must be non-negative"),
                    ));
                }
            }
            if p.warning > p.critical {
                return Err((
                    name.to_string(),
                    format!(
                        "warning {} is above critical {} (higher {name} is worse)",
                        p.warning, p.critical
                    ),
                ));
            }
        }
    }
    for (name, pair) in [("ks_pvalue", t.ks_pvalue), ("chi2_pvalue", t.chi2_pvalue)] {
        if let Some(p) = pair {
            for (level, v) in [("warning", p.warning), ("critical", p.critical)] {
                if !(0.0..=1.0).contains(&v) {
                    return Err((format!("{name}.{level}"), format!("{v} is outside [0, 1]")));
                }
            }
            if p.warning < p.critical {
                return Err((
                    name.to_string(),
                    format!(
                        "warning {} is below critical {} (a lower p-value is worse)",
                        p.warning, p.critical
                    ),
                ));
            }
        }
    }
    Ok(())
}
