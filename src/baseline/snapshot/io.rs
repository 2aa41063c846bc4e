//! Loading, writing and hashing snapshots.

use std::io::Write;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Snapshot, SnapshotError};

impl Snapshot {
    /// Reads and checks a snapshot file.
    pub fn load(path: &Path) -> Result<Snapshot, SnapshotError> {
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| SnapshotError::Io {
            file: file.clone(),
            source,
        })?;
        Snapshot::from_json_bytes(&bytes, &file)
    }

    /// Parses and checks a snapshot; `origin` names the source in errors
    /// (a file name, or e.g. `request body`).
    pub fn from_json_bytes(bytes: &[u8], origin: &str) -> Result<Snapshot, SnapshotError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut snapshot: Snapshot =
            serde_path_to_error::deserialize(&mut de).map_err(|e| SnapshotError::Parse {
                file: origin.to_string(),
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        de.end().map_err(|e| SnapshotError::Parse {
            file: origin.to_string(),
            path: String::new(),
            message: e.to_string(),
        })?;
        snapshot
            .validate()
            .map_err(|(path, message)| SnapshotError::Invalid {
                file: origin.to_string(),
                path,
                message,
            })?;
        for (_, _, entry) in snapshot.entries_mut() {
            entry.sample.sort_by(f64::total_cmp);
        }
        if snapshot.id.is_empty() {
            snapshot.id = snapshot.content_id()?;
        }
        Ok(snapshot)
    }

    /// The snapshot as JSON: objects indented, arrays of numbers kept on one line.
    pub fn to_json(&self) -> Result<String, SnapshotError> {
        let mut out = Vec::new();
        let mut ser =
            serde_json::Serializer::with_formatter(&mut out, SnapshotFormatter::default());
        self.serialize(&mut ser).map_err(SnapshotError::Serialize)?;
        out.push(b'\n');
        String::from_utf8(out).map_err(|e| {
            SnapshotError::Serialize(serde::ser::Error::custom(format!("invalid UTF-8: {e}")))
        })
    }

    /// Writes the snapshot to `path` (through a temporary file renamed into
    /// place, so a reader never sees half a snapshot).
    pub fn save(&self, path: &Path) -> Result<(), SnapshotError> {
        let file = path.display().to_string();
        let io = |source| SnapshotError::Io {
            file: file.clone(),
            source,
        };
        let json = self.to_json()?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "baseline.json".to_string());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(json.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// A content hash: the first 16 hex digits of the SHA-256 of the compact
    /// JSON of the snapshot without its `id` and `created_at`, so two builds of
    /// the same data with the same options get the same id.
    pub fn content_id(&self) -> Result<String, SnapshotError> {
        let mut copy = self.clone();
        copy.id = String::new();
        copy.created_at = None;
        let bytes = serde_json::to_vec(&copy).map_err(SnapshotError::Serialize)?;
        let digest = Sha256::digest(&bytes);
        Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
    }
}

/// A `serde_json` formatter that indents objects but writes arrays on one
/// line, so a 5000-value sample stays one line of the file.
#[derive(Debug, Default)]
struct SnapshotFormatter {
    /// Current object nesting depth.
    indent: usize,
    /// Whether the current object has written a member.
    has_value: bool,
}

impl SnapshotFormatter {
    fn newline_indent<W: ?Sized + Write>(&self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.indent {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for SnapshotFormatter {
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.indent -= 1;
        if self.has_value {
            self.newline_indent(w)?;
        }
        self.has_value = true;
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline_indent(w)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
}
