//! `mlmon baseline show`: a human summary of a snapshot.

use std::fmt::Write;

use super::snapshot::{EntryRole, FeatureBaseline, FeatureType, Snapshot};

/// Longest feature name shown in full; longer names are shortened with `…`.
const NAME_WIDTH: usize = 32;
/// Categories listed per categorical feature.
const TOP_CATEGORIES: usize = 3;

/// A plain-text summary: model, rows, then one line per feature with type,
/// missing %, mean and std (numeric) or the top categories (categorical),
/// number of bins and reference sample size; then the build notes.
/// `origin` names the file in the heading.
pub fn render(snapshot: &Snapshot, origin: &str) -> String {
    let mut out = String::new();
    let s = snapshot;
    let _ = writeln!(out, "Baseline snapshot {origin}");
    let model = match &s.model.version {
        Some(v) => format!("{} (version {v})", s.model.name),
        None => s.model.name.clone(),
    };
    let mut head: Vec<(&str, String)> = vec![
        ("model", model),
        ("id", s.id.clone()),
        ("rows", group_thousands(s.row_count)),
    ];
    if let Some(c) = &s.created_at {
        head.push(("created", c.clone()));
    }
    if let Some(src) = &s.source {
        head.push(("source", src.clone()));
    }
    if let Some(b) = &s.build {
        let mut parts = Vec::new();
        if let Some(t) = &b.tool {
            parts.push(t.clone());
        }
        if let Some(n) = b.bins {
            parts.push(format!("{n} bins"));
        }
        if let Some(n) = b.sample_size {
            parts.push(format!("sample size {n}"));
        }
        if let Some(n) = b.seed {
            parts.push(format!("seed {n}"));
        }
        if !parts.is_empty() {
            head.push(("built with", parts.join(", ")));
        }
    }
    if let Some(p) = &s.probability {
        let mut line = p.columns.join(", ");
        if !p.classes.is_empty() {
            let _ = write!(line, " (classes {})", p.classes.join(", "));
        }
        head.push(("probability", line));
    }
    for (k, v) in &head {
        let _ = writeln!(out, "  {k:<11} {v}");
    }

    let inputs: Vec<(&str, &FeatureBaseline)> = s
        .entries()
        .filter(|(_, r, _)| *r == EntryRole::Input)
        .map(|(n, _, f)| (n, f))
        .collect();
    let outputs: Vec<(&str, &FeatureBaseline)> = s
        .entries()
        .filter(|(_, r, _)| *r != EntryRole::Input)
        .map(|(n, _, f)| (n, f))
        .collect();
    let _ = writeln!(out);
    let _ = writeln!(out, "Features ({})", inputs.len());
    table(&mut out, &inputs);
    if !outputs.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Prediction and target");
        table(&mut out, &outputs);
    }

    let mut notes: Vec<String> = s.notes.clone();
    for (name, role, f) in s.entries() {
        let label = match role {
            EntryRole::Input => name.to_string(),
            _ => format!("({name})"),
        };
        notes.extend(f.notes.iter().map(|n| format!("{label}: {n}")));
    }
    if !notes.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Notes");
        for n in notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

fn table(out: &mut String, rows: &[(&str, &FeatureBaseline)]) {
    let header = [
        "name",
        "type",
        "missing",
        "mean / top categories",
        "std",
        "bins",
        "sample",
    ];
    let mut cells: Vec<[String; 7]> = Vec::new();
    for (name, f) in rows {
        let st = &f.stats;
        let (summary, std, bins, sample) = match f.kind {
            FeatureType::Numeric => (
                st.mean.map(fmt_num).unwrap_or_else(|| "-".into()),
                st.std.map(fmt_num).unwrap_or_else(|| "-".into()),
                f.bins
                    .as_ref()
                    .map(|b| b.proportions.len().to_string())
                    .unwrap_or_else(|| "-".into()),
                f.sample.len().to_string(),
            ),
            FeatureType::Categorical => (top_categories(f), "-".into(), "-".into(), "-".into()),
        };
        cells.push([
            shorten(name, NAME_WIDTH),
            f.kind.as_str().to_string(),
            format!("{:.1}%", st.missing_ratio * 100.0),
            summary,
            std,
            bins,
            sample,
        ]);
    }
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Text columns left-aligned, numbers right-aligned.
    let right = [false, false, true, false, true, true, true];
    let line = |out: &mut String, row: &[String]| {
        let mut parts = Vec::new();
        for (i, c) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            if right[i] {
                parts.push(format!("{}{c}", " ".repeat(pad)));
            } else {
                parts.push(format!("{c}{}", " ".repeat(pad)));
            }
        }
        let _ = writeln!(out, "  {}", parts.join("  ").trim_end());
    };
    line(out, &header.map(String::from));
    for row in &cells {
        line(out, row);
    }
}

fn top_categories(f: &FeatureBaseline) -> String {
    let Some(cats) = &f.categories else {
        return "-".into();
    };
    if cats.is_empty() {
        return "-".into();
    }
    let mut sorted: Vec<(&str, f64)> = cats.iter().map(|(k, p)| (k, *p)).collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut parts: Vec<String> = sorted
        .iter()
        .take(TOP_CATEGORIES)
        .map(|(k, p)| format!("{} {:.0}%", shorten(k, 16), p * 100.0))
        .collect();
    if sorted.len() > TOP_CATEGORIES {
        parts.push(format!("+{} more", sorted.len() - TOP_CATEGORIES));
    }
    parts.join(", ")
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Four significant digits, scientific notation for very large or small magnitudes.
fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        format!("{v:.3e}")
    } else {
        let digits = if a == 0.0 {
            0
        } else {
            (3 - a.log10().floor() as i32).max(0) as usize
        };
        let s = format!("{v:.digits$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_readable() {
        assert_eq!(fmt_num(38.2345), "38.23");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(1234.5678), "1235");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(2.5e7), "2.500e7");
        assert_eq!(fmt_num(-0.00012), "-1.200e-4");
        assert_eq!(group_thousands(1_000_000), "1,000,000");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(shorten("abcdef", 4), "abc…");
    }

    use crate::baseline::test_support::*;

    #[test]
    fn show_summarises_model_rows_and_features() {
        let snap = build("data.csv", &fixture_options());
        let text = super::render(&snap, "baseline.json");
        let exp = expected();
        assert!(
            text.starts_with("Baseline snapshot baseline.json\n"),
            "{text}"
        );
        assert!(text.contains("  model       credit-risk\n"), "{text}");
        assert!(
            text.contains(&format!("  id          {}\n", snap.id)),
            "{text}"
        );
        assert!(text.contains("  rows        2,000\n"), "{text}");
        assert!(text.contains("Features (11)"), "{text}");
        let line = |name: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
                .to_string()
        };
        let age = line("age");
        let missing = format!("{:.1}%", f(&exp["columns"]["age"]["missing_ratio"]) * 100.0);
        assert!(age.contains("numeric") && age.contains(&missing), "{age}");
        assert!(
            age.contains(&format!("{:.2}", f(&exp["columns"]["age"]["mean"]))),
            "{age}"
        );
        assert!(
            age.contains(" 10 ") && age.trim_end().ends_with("1934"),
            "{age}"
        );
        let country = line("country");
        assert!(
            country.contains("categorical") && country.contains("US 39%, DE 21%, FR 15%, +4 more"),
            "{country}"
        );
        assert!(text.contains("Prediction and target"), "{text}");
        assert!(line("prediction").contains("numeric"));
        assert!(
            text.contains("Notes\n") && text.contains("  - mixed: treated as categorical"),
            "{text}"
        );
    }
}
