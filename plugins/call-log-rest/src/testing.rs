//! A fake switch implementing [`Host`] for the unit tests: the demo users,
//! an in-memory `kv`, devices that record the requests sent on them, and
//! live events / call records the tests set.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{json, Value};

use crate::host::{Host, Level, SwitchError, User};

pub const ALICE: &str = "5f1c5a1e-0000-4000-8000-00000000a11c";
pub const BOB: &str = "5f1c5a1e-0000-4000-8000-000000000b0b";
pub const CAROL: &str = "5f1c5a1e-0000-4000-8000-00000000ca01";
pub const DAVE: &str = "5f1c5a1e-0000-4000-8000-00000000da7e";

pub struct FakeSwitch {
    pub users: Vec<(User, &'static str)>,
    pub config: RefCell<BTreeMap<String, String>>,
    pub kv: RefCell<BTreeMap<String, Vec<u8>>>,
    pub next_device: Cell<u64>,
    pub open_devices: RefCell<BTreeSet<u64>>,
    /// The user of each device opened.
    pub device_users: RefCell<BTreeMap<u64, User>>,
    /// Whether a successful `dial` makes the call live (with its `created`
    /// event), as the switch does.
    pub dial_goes_live: Cell<bool>,
    /// Every device request: the device and the request's JSON.
    pub requests: RefCell<Vec<(u64, Value)>>,
    /// Scripted answers to the next requests (else `ok` with the call_id).
    pub replies: RefCell<VecDeque<Result<String, SwitchError>>>,
    pub open_error: RefCell<Option<SwitchError>>,
    pub live: RefCell<BTreeMap<String, String>>,
    pub records: RefCell<BTreeMap<String, String>>,
    pub now: Cell<u64>,
    pub logs: RefCell<Vec<String>>,
}

fn user(id: &str, name: &str, numbers: &[&str]) -> User {
    User {
        id: id.into(),
        name: name.into(),
        numbers: numbers.iter().map(|n| n.to_string()).collect(),
    }
}

impl FakeSwitch {
    pub fn new() -> FakeSwitch {
        let mut config = BTreeMap::new();
        config.insert("db_ids".to_string(), "8=alice,9=bob,12=carol".to_string());
        FakeSwitch {
            users: vec![
                (user(ALICE, "alice", &["+15550100"]), "alice-demo-token"),
                (user(BOB, "bob", &["+15550101"]), "bob-demo-token"),
                (
                    user(CAROL, "carol", &["+15550102", "+15550103"]),
                    "carol-demo-token",
                ),
                (user(DAVE, "dave", &[]), "dave-demo-token"),
            ],
            config: RefCell::new(config),
            kv: RefCell::new(BTreeMap::new()),
            next_device: Cell::new(100),
            open_devices: RefCell::new(BTreeSet::new()),
            device_users: RefCell::new(BTreeMap::new()),
            dial_goes_live: Cell::new(true),
            requests: RefCell::new(Vec::new()),
            replies: RefCell::new(VecDeque::new()),
            open_error: RefCell::new(None),
            live: RefCell::new(BTreeMap::new()),
            records: RefCell::new(BTreeMap::new()),
            now: Cell::new(1_700_000_000_000),
            logs: RefCell::new(Vec::new()),
        }
    }

    pub fn error(code: &str, message: &str) -> SwitchError {
        SwitchError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Makes `call_id` live with these events (JSON values).
    pub fn set_live(&self, call_id: &str, events: Vec<Value>) {
        self.live
            .borrow_mut()
            .insert(call_id.into(), Value::Array(events).to_string());
    }

    /// Ends `call_id` with a record holding these events.
    pub fn set_record(&self, call_id: &str, events: Vec<Value>) {
        self.live.borrow_mut().remove(call_id);
        let record = json!({"call_id": call_id, "kind": "direct", "events": events});
        self.records
            .borrow_mut()
            .insert(call_id.into(), record.to_string());
    }

    /// The requests sent so far, as JSON values.
    pub fn sent(&self) -> Vec<(u64, Value)> {
        self.requests.borrow().clone()
    }
}

impl Host for FakeSwitch {
    fn authenticate(&self, token: &str) -> Result<User, SwitchError> {
        self.users
            .iter()
            .find(|(_, t)| *t == token)
            .map(|(u, _)| u.clone())
            .ok_or_else(|| FakeSwitch::error("unauthorized", "unknown token"))
    }

    fn find_user(&self, target: &str) -> Option<User> {
        let target = target.trim();
        self.users
            .iter()
            .map(|(u, _)| u)
            .find(|u| u.name == target || u.id == target || u.numbers.iter().any(|n| n == target))
            .cloned()
    }

    fn open_device(&self, token: &str, _label: &str) -> Result<u64, SwitchError> {
        if let Some(e) = self.open_error.borrow_mut().take() {
            return Err(e);
        }
        let user = self.authenticate(token)?;
        let device = self.next_device.get();
        self.next_device.set(device + 1);
        self.open_devices.borrow_mut().insert(device);
        self.device_users.borrow_mut().insert(device, user);
        Ok(device)
    }

    fn request(&self, device: u64, request: &str) -> Result<String, SwitchError> {
        assert!(
            self.open_devices.borrow().contains(&device),
            "device {device} is open"
        );
        let value: Value = serde_json::from_str(request).expect("requests are JSON");
        self.requests.borrow_mut().push((device, value.clone()));
        if let Some(reply) = self.replies.borrow_mut().pop_front() {
            return reply;
        }
        if value["type"] == "dial" && self.dial_goes_live.get() {
            let user = self.device_users.borrow()[&device].clone();
            let created = json!({"at_ms": self.now.get(), "event": "created", "by": {"id": user.id, "name": user.name}, "device": device});
            self.set_live(value["call_id"].as_str().unwrap(), vec![created]);
        }
        Ok(json!({"type": "ok", "call_id": value["call_id"]}).to_string())
    }

    fn close_device(&self, device: u64) {
        self.open_devices.borrow_mut().remove(&device);
    }

    fn call_record(&self, call_id: &str) -> Option<String> {
        self.records.borrow().get(call_id).cloned()
    }

    fn live_events(&self, call_id: &str) -> Option<String> {
        self.live.borrow().get(call_id).cloned()
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.kv.borrow().get(key).cloned()
    }

    fn kv_set(&self, key: &str, value: &[u8]) {
        self.kv.borrow_mut().insert(key.into(), value.to_vec());
    }

    fn kv_delete(&self, key: &str) {
        self.kv.borrow_mut().remove(key);
    }

    fn now_ms(&self) -> u64 {
        self.now.get()
    }

    fn monotonic_ms(&self) -> u64 {
        self.now.get() - 1_699_999_000_000
    }

    fn config(&self, key: &str) -> Option<String> {
        self.config.borrow().get(key).cloned()
    }

    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push(format!("{level:?}: {message}"));
    }
}
