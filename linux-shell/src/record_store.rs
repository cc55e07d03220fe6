//! The persistent record: the core's bytes, stored atomically.
//!
//! `store` writes a temporary file next to the record, fsyncs it, renames it over the record and
//! fsyncs the directory, so after a power cut the file holds either the old or the new bytes,
//! never a mix. The bytes are opaque here; `eyas_core::record` checks their CRC when decoding.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Largest record file read back (the core's records are far smaller).
pub const MAX_RECORD_FILE: u64 = 4096;

/// The record file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordStore {
    path: PathBuf,
}

fn ctx(what: &str, path: &Path, e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

impl RecordStore {
    /// A store at `path` (the directory is created on the first `store`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The record file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".tmp");
        self.dir().join(name)
    }

    /// The stored bytes, `None` when there is no record.
    pub fn load(&self) -> std::io::Result<Option<Vec<u8>>> {
        match File::open(&self.path) {
            Ok(f) => {
                let len = f
                    .metadata()
                    .map_err(|e| ctx("cannot stat", &self.path, &e))?
                    .len();
                if len > MAX_RECORD_FILE {
                    return Err(std::io::Error::new(
                        ErrorKind::InvalidData,
                        format!(
                            "{}: {len} bytes is not a record; delete it to start over",
                            self.path.display()
                        ),
                    ));
                }
                std::fs::read(&self.path)
                    .map(Some)
                    .map_err(|e| ctx("cannot read", &self.path, &e))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ctx("cannot open", &self.path, &e)),
        }
    }

    /// Replaces the record with `bytes`, durably and atomically.
    pub fn store(&self, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.dir();
        std::fs::create_dir_all(&dir).map_err(|e| ctx("cannot create", &dir, &e))?;
        let tmp = self.temp_path();
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| ctx("cannot create", &tmp, &e))?;
            f.write_all(bytes)
                .map_err(|e| ctx("cannot write", &tmp, &e))?;
            f.sync_all().map_err(|e| ctx("cannot fsync", &tmp, &e))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| ctx("cannot rename onto", &self.path, &e))?;
        sync_dir(&dir)
    }

    /// Removes the record (and a stale temporary file), durably.
    pub fn clear(&self) -> std::io::Result<()> {
        for p in [self.temp_path(), self.path.clone()] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(ctx("cannot remove", &p, &e)),
            }
        }
        let dir = self.dir();
        if dir.exists() { sync_dir(&dir) } else { Ok(()) }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ctx("cannot fsync directory", dir, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_load_replace_clear() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = RecordStore::new(dir.path().join("sub/record.bin"));
        assert_eq!(store.load().expect("load"), None);
        store.store(b"first").expect("store");
        assert_eq!(store.load().expect("load").as_deref(), Some(&b"first"[..]));
        store.store(b"second, longer").expect("store");
        assert_eq!(
            store.load().expect("load").as_deref(),
            Some(&b"second, longer"[..])
        );
        assert!(!store.temp_path().exists(), "no temporary file left behind");
        store.clear().expect("clear");
        assert_eq!(store.load().expect("load"), None);
        store.clear().expect("clearing twice is fine");
    }

    #[test]
    fn a_stale_temp_file_does_not_count() {
        // A power cut between write and rename leaves only the temp file: the old record holds.
        let dir = tempfile::tempdir().expect("tmp");
        let store = RecordStore::new(dir.path().join("record.bin"));
        store.store(b"old").expect("store");
        std::fs::write(store.temp_path(), b"half-written").expect("write");
        assert_eq!(store.load().expect("load").as_deref(), Some(&b"old"[..]));
        store.store(b"new").expect("store over a stale temp file");
        assert_eq!(store.load().expect("load").as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn oversized_file_and_unwritable_dir_are_explained() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("record.bin");
        std::fs::write(&path, vec![0u8; 5000]).expect("write");
        let e = RecordStore::new(&path).load().expect_err("too big");
        assert!(e.to_string().contains("delete it"), "{e}");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let e = RecordStore::new(blocker.join("record.bin"))
            .store(b"x")
            .expect_err("parent is a file");
        assert!(e.to_string().contains("cannot create"), "{e}");
    }

    #[test]
    fn core_records_round_trip_through_the_file() {
        use eyas_core::record::{Phase, RECORD_MAX_LEN, Record};
        let dir = tempfile::tempdir().expect("tmp");
        let store = RecordStore::new(dir.path().join("record.bin"));
        let rec = Record::new(eyas_core::ddi::ActionId(42), Phase::Rebooting);
        let mut buf = [0u8; RECORD_MAX_LEN];
        let bytes = rec.encode(&mut buf).expect("encode");
        store.store(bytes).expect("store");
        let back = store.load().expect("load").expect("present");
        assert_eq!(Record::decode(&back).expect("decode"), rec);
    }
}
