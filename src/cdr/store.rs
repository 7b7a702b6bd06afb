//! The append-only record file. Each record is written with a single
//! `write` of one complete line to a file opened for append, then
//! (optionally) fsynced. A crash can only leave a torn last line; opening
//! the store cuts such a tail off and readers skip any line that does not
//! parse, so the file always stays readable.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;
use uuid::Uuid;

use crate::wire::CallRecord;

/// File name of the records inside the data directory.
pub const RECORDS_FILE: &str = "calls.jsonl";

#[derive(Debug, Error)]
pub enum CdrError {
    #[error("call records {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The writer side of the record file.
#[derive(Debug)]
pub struct CdrStore {
    path: PathBuf,
    file: File,
    fsync: bool,
    /// Bytes cut from a torn tail when the store was opened.
    pub repaired_bytes: u64,
}

impl CdrStore {
    /// Opens (creating) `<dir>/calls.jsonl`, cutting off a torn last line.
    pub fn open(dir: &Path, fsync: bool) -> Result<Self, CdrError> {
        let path = dir.join(RECORDS_FILE);
        let io = |source| CdrError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let keep = complete_prefix_len(&mut file, len).map_err(io)?;
        if keep < len {
            file.set_len(keep).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(CdrStore {
            path,
            file,
            fsync,
            repaired_bytes: len - keep,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record durably.
    pub fn append(&mut self, record: &CallRecord) -> Result<(), CdrError> {
        let mut line = serde_json::to_vec(record).expect("records serialise");
        line.push(b'\n');
        let io = |source| CdrError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&line).map_err(io)?;
        if self.fsync {
            self.file.sync_data().map_err(io)?;
        }
        Ok(())
    }

    /// Finds the record of `call_id` in the file at `path`.
    pub fn find(dir: &Path, call_id: Uuid) -> Result<Option<CallRecord>, CdrError> {
        let path = dir.join(RECORDS_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CdrError::Io { path, source }),
        };
        let needle = call_id.to_string();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|source| CdrError::Io {
                path: path.clone(),
                source,
            })?;
            // Cheap filter before parsing; a torn or foreign line is skipped.
            if !line.contains(&needle) {
                continue;
            }
            if let Ok(rec) = serde_json::from_str::<CallRecord>(&line) {
                if rec.call_id == call_id {
                    return Ok(Some(rec));
                }
            }
        }
        Ok(None)
    }
}

impl CdrStore {
    /// Ids of every recorded call, so ids are never reused across restarts.
    pub fn call_ids(dir: &Path) -> Result<std::collections::HashSet<Uuid>, CdrError> {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            call_id: Uuid,
        }
        let path = dir.join(RECORDS_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
            Err(source) => return Err(CdrError::Io { path, source }),
        };
        let mut ids = std::collections::HashSet::new();
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|source| CdrError::Io {
                path: path.clone(),
                source,
            })?;
            if let Ok(r) = serde_json::from_str::<IdOnly>(&line) {
                ids.insert(r.call_id);
            }
        }
        Ok(ids)
    }
}

/// Length of the file up to and including its last newline.
fn complete_prefix_len(file: &mut File, len: u64) -> std::io::Result<u64> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|b| *b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{CallKind, EndReason, MediaCounts, PartyRef};

    fn record(n: u128) -> CallRecord {
        CallRecord {
            call_id: Uuid::from_u128(n),
            kind: CallKind::Direct,
            caller: PartyRef {
                id: Uuid::from_u128(1),
                name: "alice".into(),
            },
            parties: vec![],
            created_at_ms: 1,
            answered_at_ms: None,
            ended_at_ms: 2,
            duration_ms: 0,
            end_reason: EndReason::Cancelled,
            events: vec![],
            media: MediaCounts::default(),
        }
    }

    #[test]
    fn append_find_and_repair_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = CdrStore::open(dir.path(), true).unwrap();
        store.append(&record(1)).unwrap();
        store.append(&record(2)).unwrap();
        drop(store);
        // A crash mid-write: half a line at the end.
        let path = dir.path().join(RECORDS_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"call_id":"00000000-0000-0000-0000-00000000000"#)
            .unwrap();
        drop(f);
        // Readers still find complete records.
        assert_eq!(
            CdrStore::find(dir.path(), Uuid::from_u128(2)).unwrap(),
            Some(record(2))
        );
        let mut store = CdrStore::open(dir.path(), true).unwrap();
        assert!(store.repaired_bytes > 0);
        store.append(&record(3)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        for line in text.lines() {
            serde_json::from_str::<CallRecord>(line).unwrap();
        }
        assert_eq!(
            CdrStore::find(dir.path(), Uuid::from_u128(3)).unwrap(),
            Some(record(3))
        );
        assert_eq!(
            CdrStore::find(dir.path(), Uuid::from_u128(9)).unwrap(),
            None
        );
    }
}
