//! The configuration's key tree, read from the types themselves.
//!
//! [`Config`]'s `Deserialize` impl is driven with a [`Probe`] deserializer that plays every
//! field back: a struct gives its field names and each field is probed in turn, a map gives
//! one entry named `<name>`, an `Option` is probed as present. So the list of sections that
//! `MLMON_*` variables may address, and the keys that take comma-separated lists, cannot
//! drift from the structs (a hand-kept copy once left `MLMON_EXPLAIN__*` silently ignored).

use std::cell::RefCell;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::Config;

/// What a key holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// One value: number, string, boolean, duration, enum.
    Value,
    /// A list (`baseline.files`); from the environment it is written comma-separated.
    List,
}

/// One settable key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Dotted path, e.g. `drift.window`; a map entry shows as `<name>`
    /// (`models.<name>.thresholds.psi.warning`).
    pub path: String,
    /// What it holds.
    pub kind: KeyKind,
    /// The values an enumerated key accepts (`model.task`: `auto`, `classification`, …);
    /// empty for other keys.
    pub choices: &'static [&'static str],
}

/// The placeholder segment for map entries (`models.<name>`).
pub const ENTRY: &str = "<name>";

/// Every settable key of [`Config`], in declaration order.
pub fn keys() -> Result<&'static [Key], String> {
    static KEYS: OnceLock<Result<Vec<Key>, String>> = OnceLock::new();
    KEYS.get_or_init(probe::<Config>)
        .as_ref()
        .map(Vec::as_slice)
        .map_err(Clone::clone)
}

/// The top-level keys of [`Config`] (`listen`, `proxy`, `drift`, …): what the first segment of
/// an `MLMON_` variable must be.
pub fn sections() -> Result<Vec<&'static str>, String> {
    let mut out: Vec<&'static str> = Vec::new();
    for k in keys()? {
        let first = k.path.split('.').next().unwrap_or_default();
        if !out.contains(&first) {
            out.push(first);
        }
    }
    Ok(out)
}

/// Plays `T`'s `Deserialize` impl against the probe and returns the keys it asked for.
fn probe<'de, T: Deserialize<'de>>() -> Result<Vec<Key>, String> {
    let found = RefCell::new(Vec::new());
    T::deserialize(Probe {
        path: String::new(),
        found: &found,
    })
    .map_err(|e| e.0)?;
    Ok(found.into_inner())
}

/// The probe's error: only raised if a type asks for something the probe cannot play back.
#[derive(Debug)]
struct ProbeError(String);

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        ProbeError(msg.to_string())
    }
}

/// A deserializer standing at `path` that records what is asked of it.
struct Probe<'a> {
    path: String,
    found: &'a RefCell<Vec<Key>>,
}

impl<'a> Probe<'a> {
    fn child(&self, segment: &str) -> Probe<'a> {
        Probe {
            path: if self.path.is_empty() {
                segment.to_string()
            } else {
                format!("{}.{segment}", self.path)
            },
            found: self.found,
        }
    }

    fn leaf(&self, kind: KeyKind) {
        self.choice(kind, &[]);
    }

    fn choice(&self, kind: KeyKind, choices: &'static [&'static str]) {
        self.found.borrow_mut().push(Key {
            path: self.path.clone(),
            kind,
            choices,
        });
    }
}

macro_rules! leaf_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
            self.leaf(KeyKind::Value);
            visitor.visit_u64(1)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ProbeError> {
        Err(ProbeError(format!(
            "{}: a self-describing type cannot be probed; give it a concrete type",
            self.path
        )))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.leaf(KeyKind::Value);
        visitor.visit_bool(false)
    }

    leaf_number!(deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_f32 deserialize_f64);

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.leaf(KeyKind::Value);
        visitor.visit_char('x')
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.leaf(KeyKind::Value);
        // A string every string-typed field accepts, durations included.
        visitor.visit_str("1s")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.leaf(KeyKind::Value);
        visitor.visit_bytes(b"")
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.leaf(KeyKind::Value);
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.leaf(KeyKind::List);
        visitor.visit_seq(de::value::SeqDeserializer::<_, ProbeError>::new(
            std::iter::empty::<u8>(),
        ))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_map(Fields {
            names: &[ENTRY],
            next: 0,
            probe: self,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        visitor.visit_map(Fields {
            names: fields,
            next: 0,
            probe: self,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ProbeError> {
        self.choice(KeyKind::Value, variants);
        let first = variants.first().copied().unwrap_or_default();
        visitor.visit_enum(first.into_deserializer())
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ProbeError> {
        visitor.visit_unit()
    }
}

/// Hands a struct (or map) visitor each of its fields, every value a probe one level down.
struct Fields<'a> {
    names: &'static [&'static str],
    next: usize,
    probe: Probe<'a>,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = ProbeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ProbeError> {
        match self.names.get(self.next) {
            None => Ok(None),
            Some(name) => seed
                .deserialize(IntoDeserializer::<ProbeError>::into_deserializer(*name))
                .map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ProbeError> {
        let name = self.names.get(self.next).copied().unwrap_or_default();
        self.next += 1;
        seed.deserialize(self.probe.child(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths() -> Vec<String> {
        keys().unwrap().iter().map(|k| k.path.clone()).collect()
    }

    #[test]
    fn every_section_of_config_is_found() {
        let s = sections().unwrap();
        for expected in [
            "listen",
            "upstream",
            "admin_listen",
            "proxy",
            "server",
            "model",
            "payload",
            "capture",
            "baseline",
            "drift",
            "thresholds",
            "models",
            "sla",
            "feedback",
            "performance",
            "admin",
            "events",
            "privacy",
            "limits",
            "anomaly",
            "explain",
            "sink",
            "shadow",
            "log",
        ] {
            assert!(s.contains(&expected), "{expected} missing from {s:?}");
        }
        assert_eq!(s.len(), 24, "{s:?}");
    }

    #[test]
    fn leaves_lists_and_map_entries() {
        let p = paths();
        for expected in [
            "drift.window",
            "explain.interval",
            "thresholds.psi.warning",
            "thresholds.data_quality.critical",
            "thresholds.latency_p95.critical",
            "thresholds.js.warning",
            "models.<name>.thresholds.psi.critical",
            "payload.request_pointer",
            "model.task",
            "admin.token",
            "server.header_timeout",
        ] {
            assert!(p.contains(&expected.to_string()), "{expected} missing");
        }
        assert!(
            !p.iter().any(|k| k.ends_with(".worse")),
            "direction is no key"
        );
        let lists: Vec<&str> = keys()
            .unwrap()
            .iter()
            .filter(|k| k.kind == KeyKind::List)
            .map(|k| k.path.as_str())
            .collect();
        assert_eq!(
            lists,
            ["payload.feature_names", "baseline.files", "explain.methods"]
        );
        let task = keys()
            .unwrap()
            .iter()
            .find(|k| k.path == "model.task")
            .unwrap();
        assert_eq!(task.choices, ["auto", "classification", "regression"]);
    }
}
