//! A small JSON document model for the adapters.
//!
//! Why not `serde_json::Value`: without serde_json's `preserve_order` feature its objects are
//! sorted maps, which would lose the order in which a request carried its features, and every
//! string would be copied. [`Json`] keeps object members in wire order and borrows strings
//! from the body whenever they contain no escapes, so parsing a captured body costs one pass
//! and few allocations.
//!
//! Duplicate object keys keep the position of their first occurrence and the value of the
//! last one, as Python's `json` module does.
//!
//! Nesting depth is bounded by serde_json's recursion limit (128), which also bounds every
//! recursive walk over a [`Json`] in this module tree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{PayloadError, Side};

/// One JSON value, borrowing strings from the body where it can.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// Any JSON number, as `f64` (integers beyond 2^53 lose precision, as they would as features).
    Num(f64),
    /// A string.
    Str(Cow<'a, str>),
    /// An array.
    Arr(Vec<Json<'a>>),
    /// An object, members in wire order, keys unique.
    Obj(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    /// The member `key` of an object.
    pub(crate) fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The members of an object.
    pub(crate) fn as_object(&self) -> Option<&[(Cow<'a, str>, Json<'a>)]> {
        match self {
            Json::Obj(members) => Some(members),
            _ => None,
        }
    }

    /// The items of an array.
    pub(crate) fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Arr(items) => Some(items),
            _ => None,
        }
    }

    /// The text of a string.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a number.
    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }

    /// Whether this is a scalar (not an array or object).
    pub(crate) fn is_scalar(&self) -> bool {
        !matches!(self, Json::Arr(_) | Json::Obj(_))
    }

    /// A short name of the value's kind, for error messages (never the value itself, which
    /// may be private data).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Num(_) => "number",
            Json::Str(_) => "string",
            Json::Arr(_) => "array",
            Json::Obj(_) => "object",
        }
    }

    /// A short description of a body's top level for error messages: its kind and, for an
    /// object, its first keys (keys are schema, not data).
    pub(crate) fn describe(&self) -> String {
        match self {
            Json::Obj(members) => {
                let keys: Vec<&str> = members.iter().take(5).map(|(k, _)| k.as_ref()).collect();
                format!("an object with keys [{}]", keys.join(", "))
            }
            other => format!("a {}", other.kind()),
        }
    }

    /// Resolves an RFC 6901 JSON pointer, with the same rules as `serde_json::Value::pointer`:
    /// `""` is the whole document, anything else starts with `/`; `~1` is `/` and `~0` is `~`;
    /// array indices are decimal without sign or leading zeros.
    pub(crate) fn pointer(&self, pointer: &str) -> Option<&Json<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let rest = pointer.strip_prefix('/')?;
        let mut target = self;
        for raw in rest.split('/') {
            let token: Cow<'_, str> = if raw.contains('~') {
                Cow::Owned(raw.replace("~1", "/").replace("~0", "~"))
            } else {
                Cow::Borrowed(raw)
            };
            target = match target {
                Json::Obj(_) => target.get(&token)?,
                Json::Arr(items) => items.get(parse_index(&token)?)?,
                _ => return None,
            };
        }
        Some(target)
    }
}

fn parse_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

/// Parses a body. Accepts a UTF-8 byte-order mark and, like Python's `json` module and
/// TensorFlow Serving, the non-standard tokens `NaN`, `Infinity` and `-Infinity` (read as
/// `null`, i.e. missing). The lenient path costs nothing for standard JSON: it only runs
/// after a strict parse failed.
///
/// `scratch` holds the rewritten body when the lenient path was needed; the returned value
/// may borrow from it.
pub(crate) fn parse_body<'a>(
    bytes: &'a [u8],
    side: Side,
    scratch: &'a mut Option<Vec<u8>>,
) -> Result<Json<'a>, PayloadError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(PayloadError::EmptyBody { side });
    }
    match strict(bytes) {
        Ok(v) => Ok(v),
        Err(first) => {
            let invalid = |e: serde_json::Error| PayloadError::InvalidJson {
                side,
                detail: e.to_string(),
            };
            match replace_non_finite(bytes) {
                Some(rewritten) => {
                    let rewritten: &'a [u8] = scratch.insert(rewritten);
                    strict(rewritten).map_err(|_| invalid(first))
                }
                None => Err(invalid(first)),
            }
        }
    }
}

/// Standard JSON. A body that is valid UTF-8 as a whole (as every JSON text must be) is read
/// as text, so serde_json does not check each string's UTF-8 again (one vectorized check of the
/// body instead of one per key and string: about 2 % of the analysis thread's instructions on
/// an 8x10 OIP exchange); anything else is read as bytes, for serde_json's error and position.
fn strict<'a>(bytes: &'a [u8]) -> Result<Json<'a>, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str::<Json<'a>>(text),
        Err(_) => serde_json::from_slice::<Json<'a>>(bytes),
    }
}

/// Rewrites `NaN`, `Infinity`, `-Infinity` and numbers beyond f64's range outside strings
/// to `null`; `None` when there were none.
fn replace_non_finite(bytes: &[u8]) -> Option<Vec<u8>> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if let Some(token) = TOKENS.iter().find(|t| bytes[i..].starts_with(t)) {
            let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
            buf.extend_from_slice(&bytes[copied..i]);
            buf.extend_from_slice(b"null");
            i += token.len();
            copied = i;
            continue;
        }
        // A number outside f64's range (`1e400`) is one missing value, not a batch that
        // cannot be read (issue 11, finding 13).
        if b == b'-' || b.is_ascii_digit() {
            let end = bytes[i..]
                .iter()
                .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .map_or(bytes.len(), |n| i + n);
            let overflows = std::str::from_utf8(&bytes[i..end])
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(f64::is_infinite);
            if overflows {
                let buf = out.get_or_insert_with(|| Vec::with_capacity(bytes.len()));
                buf.extend_from_slice(&bytes[copied..i]);
                buf.extend_from_slice(b"null");
                copied = end;
            }
            i = end;
            continue;
        }
        i += 1;
    }
    let mut buf = out?;
    buf.extend_from_slice(&bytes[copied..]);
    Some(buf)
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Json::Num(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Json::Num(v as f64))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Json::Num(v))
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // serde_json gives no size hint: starting at 8 spares the small arrays of a
        // payload (shapes, a batch's column) the first three reallocations.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(4096));
        while let Some(item) = seq.next_element::<Json<'de>>()? {
            items.push(item);
        }
        Ok(Json::Arr(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Json<'de>)> = Vec::with_capacity(4);
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value = map.next_value::<Json<'de>>()?;
            members.push((key, value));
        }
        dedupe_last_wins(&mut members);
        Ok(Json::Obj(members))
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Removes duplicate keys: the first position is kept with the last value.
fn dedupe_last_wins<V>(members: &mut Vec<(Cow<'_, str>, V)>) {
    const LINEAR_LIMIT: usize = 16;
    let n = members.len();
    if n < 2 {
        return;
    }
    let has_duplicates = if n <= LINEAR_LIMIT {
        (1..n).any(|i| members[..i].iter().any(|(k, _)| *k == members[i].0))
    } else {
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_unstable_by(|&a, &b| members[a].0.cmp(&members[b].0));
        order.windows(2).any(|w| members[w[0]].0 == members[w[1]].0)
    };
    if !has_duplicates {
        return;
    }
    let mut out: Vec<(Cow<'_, str>, V)> = Vec::with_capacity(n);
    let mut index: std::collections::HashMap<String, usize> =
        std::collections::HashMap::with_capacity(n);
    for (k, v) in members.drain(..) {
        match index.get(k.as_ref()) {
            Some(&at) => out[at].1 = v,
            None => {
                index.insert(k.to_string(), out.len());
                out.push((k, v));
            }
        }
    }
    *members = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Json<'_>, PayloadError> {
        // The scratch buffer is leaked on purpose so the test can return a borrowed value.
        let scratch: &mut Option<Vec<u8>> = Box::leak(Box::new(None));
        parse_body(text.as_bytes(), Side::Request, scratch)
    }

    #[test]
    fn object_members_keep_wire_order() {
        let v = parse(r#"{"zeta": 1, "alpha": 2, "mid": 3}"#).unwrap();
        let keys: Vec<&str> = v
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_ref())
            .collect();
        assert_eq!(keys, ["zeta", "alpha", "mid"]);
    }

    #[test]
    fn unescaped_strings_are_borrowed_and_escaped_ones_decoded() {
        let v = parse(r#"{"plain": "abc", "esc": "a\"b\u00e9"}"#).unwrap();
        assert!(matches!(
            v.get("plain"),
            Some(Json::Str(Cow::Borrowed("abc")))
        ));
        assert_eq!(v.get("esc").and_then(Json::as_str), Some("a\"bé"));
    }

    #[test]
    fn bodies_read_as_text_or_as_bytes_parse_alike() {
        // Valid UTF-8 is read as text (serde_json skips its per-string check); the same
        // document must come out, escapes, non-ASCII and the lenient tokens included.
        let text = "{\"caf\u{e9}\": [1.5, -2e3, NaN], \"s\": \"\\u00e9\\n\u{1F600}\", \"n\": null}";
        let scratch = &mut None;
        let as_text = parse_body(text.as_bytes(), Side::Request, scratch).unwrap();
        assert_eq!(
            as_text.get("s").and_then(Json::as_str),
            Some("\u{e9}\n\u{1F600}")
        );
        assert_eq!(
            as_text.get("caf\u{e9}"),
            Some(&Json::Arr(vec![
                Json::Num(1.5),
                Json::Num(-2000.0),
                Json::Null
            ]))
        );
        // Invalid UTF-8 inside a string is still refused, with serde_json's position.
        let mut bad = br#"{"a": "x"#.to_vec();
        bad.extend_from_slice(&[0xFF, 0xFE]);
        bad.extend_from_slice(br#"y"}"#);
        match parse_body(&bad, Side::Request, &mut None) {
            Err(PayloadError::InvalidJson { detail, .. }) => {
                assert!(detail.contains("line 1"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_keys_keep_first_position_and_last_value() {
        let v = parse(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(
            v,
            Json::Obj(vec![
                ("a".into(), Json::Num(3.0)),
                ("b".into(), Json::Num(2.0))
            ])
        );
        // Past the linear-scan size the sorted path must agree.
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{i}\": {i},"));
        }
        text.push_str("\"k7\": 700}");
        let v = parse(&text).unwrap();
        let members = v.as_object().unwrap();
        assert_eq!(members.len(), 40);
        assert_eq!(members[7], ("k7".into(), Json::Num(700.0)));
    }

    #[test]
    fn non_finite_tokens_read_as_null_outside_strings_only() {
        let v = parse(r#"{"x": [1.0, NaN, Infinity, -Infinity], "s": "NaN Infinity"}"#).unwrap();
        assert_eq!(
            v.get("x"),
            Some(&Json::Arr(vec![
                Json::Num(1.0),
                Json::Null,
                Json::Null,
                Json::Null
            ]))
        );
        assert_eq!(v.get("s").and_then(Json::as_str), Some("NaN Infinity"));
        // An escaped quote must not end the string early.
        let v = parse(r#"["a\"NaN", NaN]"#).unwrap();
        assert_eq!(v, Json::Arr(vec![Json::Str("a\"NaN".into()), Json::Null]));
    }

    #[test]
    fn a_number_beyond_f64_is_one_missing_value_not_an_invalid_batch() {
        // v1: one `1e400` made the whole batch invalid_json.
        let v = parse(r#"{"x": [1.5, 1e400, -2E+999, 3e-5], "s": "1e400"}"#).unwrap();
        assert_eq!(
            v.get("x"),
            Some(&Json::Arr(vec![
                Json::Num(1.5),
                Json::Null,
                Json::Null,
                Json::Num(3e-5)
            ]))
        );
        assert_eq!(v.get("s").and_then(Json::as_str), Some("1e400"));
    }

    #[test]
    fn invalid_json_reports_the_strict_parser_error() {
        let err = parse(r#"{"a": nan}"#).unwrap_err();
        assert_eq!(err.reason(), "invalid_json");
        let err = parse("{\"a\": 1").unwrap_err();
        assert_eq!(err.reason(), "invalid_json");
    }

    #[test]
    fn empty_and_bom_bodies() {
        assert_eq!(parse("  \n").unwrap_err().reason(), "empty_body");
        let mut scratch = None;
        let v = parse_body(b"\xEF\xBB\xBF[1]", Side::Response, &mut scratch).unwrap();
        assert_eq!(v, Json::Arr(vec![Json::Num(1.0)]));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(parse(&text).unwrap_err().reason(), "invalid_json");
        let text = "{\"a\":".repeat(50_000) + "1" + &"}".repeat(50_000);
        assert_eq!(parse(&text).unwrap_err().reason(), "invalid_json");
    }

    #[test]
    fn pointer_follows_rfc6901_like_serde_json() {
        let text = r#"{"a/b": {"m~n": [10, 20, {"": 5}]}, "0": "zero"}"#;
        let ours = parse(text).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
        for p in [
            "",
            "/a~1b",
            "/a~1b/m~0n",
            "/a~1b/m~0n/1",
            "/a~1b/m~0n/2/",
            "/0",
            "/a~1b/m~0n/01",
            "/a~1b/m~0n/+1",
            "/a~1b/m~0n/-",
            "/a~1b/m~0n/3",
            "a~1b",
            "/missing",
            "/0/x",
        ] {
            let expected = theirs.pointer(p).map(|v| v.to_string());
            let got = ours.pointer(p).map(|v| format!("{v:?}"));
            assert_eq!(expected.is_some(), got.is_some(), "pointer {p:?}");
        }
        assert_eq!(ours.pointer("/a~1b/m~0n/1"), Some(&Json::Num(20.0)));
        assert_eq!(ours.pointer("/a~1b/m~0n/2/"), Some(&Json::Num(5.0)));
    }
}
