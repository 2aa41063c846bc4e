//! Category keys: one spelling per value, shared by the builder and the
//! drift engine.

use std::borrow::Cow;

use crate::record::FeatureValue;

/// The category key of a value, shared by the builder and the drift engine
/// so that baseline and live traffic agree: text that parses as a finite
/// number and JSON numbers both become the number's shortest decimal form
/// (`"1.0"`, `"01"` and `1` all give `"1"`); booleans are one type everywhere:
/// the text `true`/`True`/`TRUE` (any case) gives `"true"`, likewise `"false"`
/// (JSON and Parquet booleans arrive as that text); other text is kept as is;
/// missing values (and NaN) have no key.
pub fn category_key(value: &FeatureValue) -> Option<Cow<'_, str>> {
    match value {
        FeatureValue::Missing => None,
        FeatureValue::Number(v) => v.is_finite().then(|| Cow::Owned(format_number(*v))),
        FeatureValue::Text(s) => text_category_key(s),
    }
}

/// [`category_key`] for a text cell.
pub(crate) fn text_category_key(s: &str) -> Option<Cow<'_, str>> {
    if let Some(b) = bool_key(s) {
        return Some(Cow::Borrowed(b));
    }
    match parse_number(s) {
        ParsedText::Number(v) => Some(Cow::Owned(format_number(v))),
        ParsedText::NonFinite => None,
        ParsedText::Text => Some(Cow::Borrowed(s)),
    }
}

/// The shortest decimal that reads back as `v` (`-0` becomes `0`).
pub(crate) fn format_number(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    format!("{v}")
}

/// What a text cell holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ParsedText {
    /// A finite number (surrounding whitespace ignored).
    Number(f64),
    /// NaN or an infinity: counted as missing.
    NonFinite,
    /// Anything else.
    Text,
}

/// Parses a text cell as a number.
#[inline]
pub(crate) fn parse_number(s: &str) -> ParsedText {
    let t = s.trim();
    match t.as_bytes().first() {
        // Quick reject: numbers start with a digit, a sign, '.', or are inf/nan.
        Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'i' | b'I' | b'n' | b'N') => {}
        _ => return ParsedText::Text,
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => ParsedText::Number(v),
        Ok(_) => ParsedText::NonFinite,
        Err(_) => ParsedText::Text,
    }
}

/// The spelling of a boolean value: `"true"` / `"false"` for the JSON and Parquet
/// booleans and for text equal to either in any case (`True`, `TRUE`, as pandas and
/// spreadsheets write them), surrounding whitespace ignored; `None` otherwise.
#[inline]
pub(crate) fn bool_key(s: &str) -> Option<&'static str> {
    let t = s.trim();
    if t.len() == 4 && t.eq_ignore_ascii_case("true") {
        Some("true")
    } else if t.len() == 5 && t.eq_ignore_ascii_case("false") {
        Some("false")
    } else {
        None
    }
}

/// The value of a boolean (JSON, Parquet): the text `true` or `false`.
pub(crate) fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}
