//! A plugin's key-value space, kept by the host across reloads and
//! failures and, when the switch has a data directory, across restarts:
//! every change rewrites `<data_dir>/plugin-state/<plugin>.json` (written
//! to a temporary file, then renamed, so a crash leaves the old or the new
//! version, never a torn one). Spaces are small (plugin state, not data),
//! so rewriting the whole file is simpler than a log and cheap enough.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tracing::warn;

/// A shared handle to one plugin's space.
pub type KvSpace = Arc<KvStore>;

#[derive(Debug, Default)]
pub struct KvStore {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
    file: Option<PathBuf>,
}

impl KvStore {
    /// A space persisted in `file`, loaded from it when it exists. A file
    /// that cannot be read is reported and set aside, not fatal: the plugin
    /// starts empty rather than the switch not starting.
    pub fn persistent(file: PathBuf) -> Self {
        let map = match std::fs::read(&file) {
            Ok(bytes) => match decode(&bytes) {
                Ok(map) => map,
                Err(e) => {
                    let aside = file.with_extension("json.corrupt");
                    warn!(file = %file.display(), error = %e, aside = %aside.display(), "plugin state unreadable; starting empty");
                    let _ = std::fs::rename(&file, &aside);
                    BTreeMap::new()
                }
            },
            Err(_) => BTreeMap::new(),
        };
        KvStore {
            map: Mutex::new(map),
            file: Some(file),
        }
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.map.lock().expect("kv lock").get(key).cloned()
    }

    pub fn set(&self, key: String, value: Vec<u8>) {
        let mut map = self.map.lock().expect("kv lock");
        map.insert(key, value);
        self.save(&map);
    }

    pub fn delete(&self, key: &str) {
        let mut map = self.map.lock().expect("kv lock");
        if map.remove(key).is_some() {
            self.save(&map);
        }
    }

    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.map
            .lock()
            .expect("kv lock")
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn save(&self, map: &BTreeMap<String, Vec<u8>>) {
        let Some(file) = &self.file else { return };
        let text = encode(map);
        let tmp = file.with_extension("json.tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, file)) {
            warn!(file = %file.display(), error = %e, "could not save plugin state");
        }
    }
}

/// Values are bytes: stored as hex strings in a JSON object.
fn encode(map: &BTreeMap<String, Vec<u8>>) -> String {
    let object: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(hex::encode(v))))
        .collect();
    serde_json::Value::Object(object).to_string()
}

fn decode(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let object: BTreeMap<String, String> =
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    object
        .into_iter()
        .map(|(k, v)| {
            hex::decode(&v)
                .map(|b| (k.clone(), b))
                .map_err(|e| format!("value of `{k}`: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_reopen_and_sets_aside_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        let kv = KvStore::persistent(file.clone());
        kv.set("a/1".into(), b"one".to_vec());
        kv.set("a/2".into(), vec![0, 255]);
        kv.set("b".into(), b"x".to_vec());
        kv.delete("b");
        let again = KvStore::persistent(file.clone());
        assert_eq!(again.get("a/1").as_deref(), Some(&b"one"[..]));
        assert_eq!(again.get("a/2"), Some(vec![0, 255]));
        assert_eq!(again.get("b"), None);
        assert_eq!(again.keys("a/"), vec!["a/1".to_string(), "a/2".to_string()]);

        std::fs::write(&file, b"{not json").unwrap();
        let fresh = KvStore::persistent(file.clone());
        assert_eq!(fresh.keys(""), Vec::<String>::new());
        assert!(file.with_extension("json.corrupt").exists());
    }
}
