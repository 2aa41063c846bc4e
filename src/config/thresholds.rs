//! The `thresholds` section and the one warning/critical type every analysis shares.
//!
//! A [`Level`] carries its direction ([`Worse`]): most figures get worse as they grow (PSI,
//! error rate), a few as they shrink (the data quality score, p-values). The direction is a
//! property of the metric, fixed by the code, never a setting: the file only gives
//! `{warning, critical}`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::Invalid;

/// Which way a figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Worse {
    /// Larger values are worse: the status applies at or above a level (PSI, error rate).
    #[default]
    Higher,
    /// Smaller values are worse: the status applies at or below a level (quality score,
    /// p-values).
    Lower,
}

/// Where a value stands against a [`Level`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Better than the warning level.
    Ok,
    /// At or past the warning level.
    Warning,
    /// At or past the critical level.
    Critical,
}

impl Status {
    /// 0, 1 or 2, as the `*_status` gauges export it.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
        }
    }
}

/// A warning/critical pair and the direction in which the figure gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Value at or past which the status is `warning`.
    pub warning: f64,
    /// Value at or past which the status is `critical`.
    pub critical: f64,
    /// Which way is worse; set by the code for each metric, not read from the file.
    #[serde(skip)]
    pub worse: Worse,
}

impl Level {
    /// A level where larger values are worse.
    pub const fn higher(warning: f64, critical: f64) -> Level {
        Level {
            warning,
            critical,
            worse: Worse::Higher,
        }
    }

    /// A level where smaller values are worse.
    pub const fn lower(warning: f64, critical: f64) -> Level {
        Level {
            warning,
            critical,
            worse: Worse::Lower,
        }
    }

    /// Where `value` stands. A NaN (no figure) is `Ok`: nothing to alarm on.
    pub fn classify(&self, value: f64) -> Status {
        let past = |level: f64| match self.worse {
            Worse::Higher => value >= level,
            Worse::Lower => value <= level,
        };
        if past(self.critical) {
            Status::Critical
        } else if past(self.warning) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// 0 ok, 1 warning, 2 critical (as [`Level::classify`]).
    pub fn status(&self, value: f64) -> u8 {
        self.classify(value).code()
    }

    /// Whether both levels are finite and `warning` is not worse than `critical`.
    pub fn is_ordered(&self) -> bool {
        self.warning.is_finite()
            && self.critical.is_finite()
            && match self.worse {
                Worse::Higher => self.warning <= self.critical,
                Worse::Lower => self.warning >= self.critical,
            }
    }

    fn check(&self, key: &str) -> Result<(), Invalid> {
        if self.is_ordered() {
            return Ok(());
        }
        let order = match self.worse {
            Worse::Higher => "higher is worse: warning must be at most critical",
            Worse::Lower => "lower is worse: warning must be at least critical",
        };
        Err(Invalid::new(
            key,
            format!(
                "warning {} and critical {} do not work ({order}, both finite)",
                self.warning, self.critical
            ),
        ))
    }
}

/// Deserializes a level where lower is worse (the quality score).
fn lower_is_worse<'de, D: Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
    let l = Level::deserialize(d)?;
    Ok(Level::lower(l.warning, l.critical))
}

/// A warning/critical pair of durations where longer is worse.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationLevel {
    /// Latency at or above which the status is `warning`.
    #[serde(with = "humantime_serde")]
    pub warning: Duration,
    /// Latency at or above which the status is `critical`.
    #[serde(with = "humantime_serde")]
    pub critical: Duration,
}

impl DurationLevel {
    /// The same pair in seconds, larger is worse.
    pub fn seconds(&self) -> Level {
        Level::higher(self.warning.as_secs_f64(), self.critical.as_secs_f64())
    }
}

/// The `thresholds` section (SPEC section 5 defaults).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Population stability index.
    pub psi: Level,
    /// Jensen–Shannon divergence (base 2); unset: not used for status.
    pub js: Option<Level>,
    /// KS statistic D; unset: not used for status.
    pub ks_statistic: Option<Level>,
    /// Window p95 latency.
    pub latency_p95: DurationLevel,
    /// Share of anomalous rows.
    pub anomaly_rate: Level,
    /// Share of 5xx and failed requests.
    pub error_rate: Level,
    /// Share of features drifted (model drift score).
    pub drift_score: Level,
    /// Data quality score (lower is worse; `warning`/`critical` are the levels at or below
    /// which the status applies).
    #[serde(deserialize_with = "lower_is_worse")]
    pub data_quality: Level,
    /// Relative drop of the primary performance metric (accuracy, or R²) from the
    /// baseline's reference, for model health.
    pub performance_drop: Level,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            psi: Level::higher(0.1, 0.2),
            js: None,
            ks_statistic: None,
            latency_p95: DurationLevel {
                warning: Duration::from_millis(50),
                critical: Duration::from_millis(100),
            },
            anomaly_rate: Level::higher(0.005, 0.01),
            error_rate: Level::higher(0.001, 0.01),
            drift_score: Level::higher(0.2, 0.5),
            data_quality: Level::lower(0.9, 0.75),
            performance_drop: Level::higher(0.05, 0.1),
        }
    }
}

impl Thresholds {
    /// Checks every pair; `prefix` is the section's key (`thresholds`, `models.x.thresholds`).
    pub(super) fn check(&self, prefix: &str) -> Result<(), Invalid> {
        let levels = [
            ("psi", Some(self.psi)),
            ("js", self.js),
            ("ks_statistic", self.ks_statistic),
            ("anomaly_rate", Some(self.anomaly_rate)),
            ("error_rate", Some(self.error_rate)),
            ("drift_score", Some(self.drift_score)),
            ("data_quality", Some(self.data_quality)),
            ("performance_drop", Some(self.performance_drop)),
        ];
        for (name, level) in levels {
            if let Some(l) = level {
                l.check(&format!("{prefix}.{name}"))?;
            }
        }
        if self.latency_p95.warning > self.latency_p95.critical {
            return Err(Invalid::new(
                &format!("{prefix}.latency_p95"),
                format!(
                    "warning {} is longer than critical {}",
                    humantime::format_duration(self.latency_p95.warning),
                    humantime::format_duration(self.latency_p95.critical)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_is_worse_counts_from_the_top() {
        let l = Level::higher(0.1, 0.2);
        assert_eq!(l.classify(0.05), Status::Ok);
        assert_eq!(l.classify(0.1), Status::Warning, "at the level counts");
        assert_eq!(l.classify(0.15), Status::Warning);
        assert_eq!(l.classify(0.2), Status::Critical);
        assert_eq!(l.classify(7.0), Status::Critical);
        assert_eq!(l.status(0.15), 1);
    }

    #[test]
    fn lower_is_worse_counts_from_the_bottom() {
        let l = Level::lower(0.9, 0.75);
        assert_eq!(l.classify(0.99), Status::Ok);
        assert_eq!(l.classify(0.9), Status::Warning);
        assert_eq!(l.classify(0.8), Status::Warning);
        assert_eq!(l.classify(0.75), Status::Critical);
        assert_eq!(l.classify(0.0), Status::Critical);
        assert_eq!(l.status(0.5), 2);
    }

    #[test]
    fn nan_is_ok_in_both_directions() {
        assert_eq!(Level::higher(0.1, 0.2).classify(f64::NAN), Status::Ok);
        assert_eq!(Level::lower(0.9, 0.75).classify(f64::NAN), Status::Ok);
    }

    #[test]
    fn order_depends_on_direction() {
        assert!(Level::higher(0.1, 0.2).is_ordered());
        assert!(!Level::higher(0.3, 0.2).is_ordered());
        assert!(Level::lower(0.9, 0.75).is_ordered());
        assert!(!Level::lower(0.7, 0.75).is_ordered());
        assert!(!Level::higher(f64::NAN, 0.2).is_ordered());
        assert!(!Level::higher(0.1, f64::INFINITY).is_ordered());
    }

    #[test]
    fn data_quality_read_from_a_file_keeps_lower_is_worse() {
        let t: Thresholds = serde_json::from_str(
            r#"{"data_quality": {"warning": 0.8, "critical": 0.6}, "psi": {"warning": 0.2, "critical": 0.3}}"#,
        )
        .unwrap();
        assert_eq!(t.data_quality, Level::lower(0.8, 0.6));
        assert_eq!(t.data_quality.classify(0.7), Status::Warning);
        assert_eq!(t.psi, Level::higher(0.2, 0.3));
        assert_eq!(Thresholds::default().data_quality.worse, Worse::Lower);
    }

    #[test]
    fn direction_is_not_a_setting() {
        let err =
            serde_json::from_str::<Level>(r#"{"warning": 0.8, "critical": 0.6, "worse": "lower"}"#)
                .unwrap_err()
                .to_string();
        assert!(err.contains("unknown field `worse`"), "{err}");
    }
}
