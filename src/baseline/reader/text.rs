//! The input of the text formats: the file's bytes, counted for progress,
//! decompressed when the name ends in `.gz`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::ReadError;

/// A reader that counts the bytes taken from the file, for progress.
struct CountingReader<R> {
    /// The wrapped reader.
    inner: R,
    /// Bytes read so far, shared with the source that reports progress.
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An opened text input.
pub(super) struct TextInput {
    /// The (decompressed) bytes.
    pub(super) reader: Box<dyn Read>,
    /// Bytes taken from the file so far.
    pub(super) bytes_read: Arc<AtomicU64>,
    /// File size in bytes.
    pub(super) size: u64,
}

/// Opens a text file, decompressing `.gz`.
pub(super) fn open_text(path: &Path, file: &str) -> Result<TextInput, ReadError> {
    let io = |source| ReadError::Io {
        file: file.to_string(),
        source,
    };
    let f = File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let count = Arc::new(AtomicU64::new(0));
    let counted = CountingReader {
        inner: f,
        count: Arc::clone(&count),
    };
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            1 << 16,
            counted,
        )))
    } else {
        Box::new(counted)
    };
    Ok(TextInput {
        reader,
        bytes_read: count,
        size,
    })
}
