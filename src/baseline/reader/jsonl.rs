//! JSON Lines: one object per line, keys in document order.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::text::{open_text, TextInput};
use super::{Cell, ReadError, RowSource, SourcePosition, MAX_COLUMNS};
use crate::baseline::snapshot::bool_text;

/// JSON Lines: one object per line.
pub struct JsonlSource {
    /// The file, for messages.
    file: String,
    /// Buffered reader.
    reader: BufReader<Box<dyn Read>>,
    /// Reused line buffer.
    line: String,
    /// Current 1-based line number.
    line_no: u64,
    /// Column names in first-seen order.
    columns: Vec<String>,
    /// Name → index into `columns`.
    index: HashMap<String, usize>,
    /// Per column, the last row (1-based) that carried it (duplicate keys).
    last_row: Vec<u64>,
    /// Objects read so far.
    rows_read: u64,
    /// Bytes read from the file.
    bytes_read: Arc<AtomicU64>,
    /// File size in bytes.
    size: u64,
}

impl JsonlSource {
    /// Opens a JSON Lines (or `.gz`-compressed) file.
    pub fn open(path: &Path) -> Result<JsonlSource, ReadError> {
        let file = path.display().to_string();
        let TextInput {
            reader,
            bytes_read,
            size,
        } = open_text(path, &file)?;
        Ok(JsonlSource {
            file,
            reader: BufReader::with_capacity(1 << 16, reader),
            line: String::new(),
            line_no: 0,
            columns: Vec::new(),
            index: HashMap::new(),
            last_row: Vec::new(),
            rows_read: 0,
            bytes_read,
            size,
        })
    }

    fn json_error(&self, message: String) -> ReadError {
        ReadError::Json {
            file: self.file.clone(),
            line: self.line_no,
            message,
        }
    }
}

impl RowSource for JsonlSource {
    fn origin(&self) -> &str {
        &self.file
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next_row(&mut self, visit: &mut dyn FnMut(usize, Cell<'_>)) -> Result<bool, ReadError> {
        loop {
            self.line.clear();
            let n = self.reader.read_line(&mut self.line).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    ReadError::Json {
                        file: self.file.clone(),
                        line: self.line_no + 1,
                        message: "not valid UTF-8".into(),
                    }
                } else {
                    ReadError::Io {
                        file: self.file.clone(),
                        source: e,
                    }
                }
            })?;
            if n == 0 {
                return Ok(false);
            }
            self.line_no += 1;
            let text = self.line.trim();
            let text = if self.line_no == 1 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            if text.is_empty() {
                continue;
            }
            let kind = match text.as_bytes()[0] {
                b'{' => None,
                b'[' => Some("an array"),
                b'"' => Some("a string"),
                b't' | b'f' => Some("a boolean"),
                b'n' => Some("null"),
                _ => Some("a number"),
            };
            if let Some(kind) = kind {
                return Err(self.json_error(format!("expected a JSON object, found {kind}")));
            }
            // Keys in document order (serde_json's own map would sort them).
            let object: JsonLine = serde_json::from_str(text)
                .map_err(|e| self.json_error(format!("invalid JSON: {e}")))?;
            self.rows_read += 1;
            for (key, value) in &object.0 {
                let idx = match self.index.get(key) {
                    Some(i) => *i,
                    None => {
                        if self.columns.len() >= MAX_COLUMNS {
                            return Err(ReadError::TooManyColumns {
                                file: self.file.clone(),
                                limit: MAX_COLUMNS,
                            });
                        }
                        self.columns.push(key.clone());
                        self.index.insert(key.clone(), self.columns.len() - 1);
                        self.last_row.push(0);
                        self.columns.len() - 1
                    }
                };
                // Rows are numbered from 1, so 0 means "not seen in this row".
                if self.last_row[idx] == self.rows_read {
                    return Err(self.json_error(format!("key {key:?} appears twice")));
                }
                self.last_row[idx] = self.rows_read;
                let cell = match value {
                    JsonScalar::Null => Cell::Missing,
                    JsonScalar::Number(v) if v.is_finite() => Cell::Number(*v),
                    JsonScalar::Number(_) => Cell::Missing,
                    JsonScalar::Text(s) => Cell::Text(s),
                    JsonScalar::Bool(b) => Cell::Text(bool_text(*b)),
                    JsonScalar::Nested(kind) => {
                        return Err(self.json_error(format!(
                            "key {key:?} holds {kind}, not a number, string, boolean or null (exclude the column)"
                        )))
                    }
                };
                visit(idx, cell);
            }
            return Ok(true);
        }
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            done: self.bytes_read.load(Ordering::Relaxed),
            total: Some(self.size),
            bytes: true,
        }
    }
}

/// One JSON Lines object: its members in document order.
struct JsonLine(Vec<(String, JsonScalar)>);

/// A member value of a JSON Lines object.
enum JsonScalar {
    /// `null`.
    Null,
    /// A number.
    Number(f64),
    /// A boolean (read as the text `true` / `false`).
    Bool(bool),
    /// A string.
    Text(String),
    /// An array or object (its kind, for the error message).
    Nested(&'static str),
}

impl<'de> serde::Deserialize<'de> for JsonLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonLine;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<JsonLine, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, JsonScalar>()? {
                    out.push(entry);
                }
                Ok(JsonLine(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> serde::Deserialize<'de> for JsonScalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonScalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Null)
            }
            fn visit_none<E>(self) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Bool(b))
            }
            fn visit_i64<E>(self, v: i64) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Number(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<JsonScalar, E> {
                Ok(JsonScalar::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<JsonScalar, A::Error> {
                while s.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(JsonScalar::Nested("an array"))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<JsonScalar, A::Error> {
                while m
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(JsonScalar::Nested("an object"))
            }
        }
        d.deserialize_any(V)
    }
}
