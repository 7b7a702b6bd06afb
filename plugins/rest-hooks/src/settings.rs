//! The plugin's own settings (`[plugin.config]`) and the backend's
//! per-user `restClientConfig`.

use serde_json::{Map, Value};

/// What to do when the backend cannot be used for a method: it answered a
/// status other than 200 (and other than 403, which is an answer), is
/// unreachable, too slow, or answered something that is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Log the error and go on as if the backend had said 200.
    Log,
    /// Stop: refuse the connection, deny the invocation or the incoming call.
    Fail,
}

impl OnError {
    fn parse(text: &str) -> Option<OnError> {
        match text.trim().to_ascii_uppercase().as_str() {
            "LOG" => Some(OnError::Log),
            "FAIL" => Some(OnError::Fail),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OnError::Log => "LOG",
            OnError::Fail => "FAIL",
        }
    }
}

/// `restPolicy` of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestPolicy {
    /// Send; only the status of the answer counts.
    Notify,
    /// Send; the fields listed in `restOverwrite` may be taken from the answer.
    Overwrite,
    /// Do not send this method at all.
    Disable,
}

impl RestPolicy {
    fn parse(text: &str) -> Option<RestPolicy> {
        match text.trim().to_ascii_uppercase().as_str() {
            "NOTIFY" => Some(RestPolicy::Notify),
            "OVERWRITE" => Some(RestPolicy::Overwrite),
            "DISABLE" => Some(RestPolicy::Disable),
            _ => None,
        }
    }
}

/// The `[plugin.config]` settings, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The backend's base URL, without a trailing `/`.
    pub url: String,
    pub app_key: String,
    pub node_id: String,
    /// Timeout of each request to the backend.
    pub timeout_ms: u32,
    /// `restOnError` of a method that the user's `restClientConfig` does
    /// not set (WCS: `LOG`).
    pub rest_on_error: OnError,
    /// How many times in a row an event is POSTed, at once, on each try
    /// (default 1: a failed event waits in the outbox instead).
    pub event_attempts: u32,
    /// Most events the outbox holds; when full, the oldest is dropped.
    pub outbox_max: u32,
}

impl Settings {
    /// Reads the settings through `get` (the `config` capability). An error
    /// names the bad setting.
    pub fn parse(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let url = get("url")
            .ok_or("`url` is not set (the backend's base URL, e.g. http://127.0.0.1:9000/rest)")?;
        let url = url.trim().trim_end_matches('/').to_string();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(str::is_empty) {
            return Err(format!(
                "`url` must be an http:// or https:// URL, not {url:?}"
            ));
        }
        let text = |key: &str, default: &str| -> Result<String, String> {
            match get(key) {
                None => Ok(default.to_string()),
                Some(v) if v.trim().is_empty() => Err(format!("`{key}` must not be empty")),
                Some(v) => Ok(v.trim().to_string()),
            }
        };
        let number = |key: &str, default: u32, max: u32| -> Result<u32, String> {
            match get(key) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u32>() {
                    Ok(n) if (1..=max).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "`{key}` must be an integer from 1 to {max}, not {v:?}"
                    )),
                },
            }
        };
        let rest_on_error = match get("rest_on_error") {
            None => OnError::Log,
            Some(v) => OnError::parse(&v)
                .ok_or_else(|| format!("`rest_on_error` must be LOG or FAIL, not {v:?}"))?,
        };
        Ok(Settings {
            url,
            app_key: text("app_key", "callswitch")?,
            node_id: text("node_id", "callswitch")?,
            timeout_ms: number("timeout_ms", 15_000, 600_000)?,
            rest_on_error,
            event_attempts: number("event_attempts", 1, 10)?,
            outbox_max: number("outbox_max", 1000, 1_000_000)?,
        })
    }
}

/// How one method is handled, from the user's `restClientConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodConfig {
    pub on_error: OnError,
    pub policy: RestPolicy,
    /// Fields the backend may overwrite (with `OVERWRITE`).
    pub overwrite: Vec<String>,
    /// Fields not sent to the backend.
    pub exclude: Vec<String>,
}

impl MethodConfig {
    pub fn may_overwrite(&self, field: &str) -> bool {
        self.policy == RestPolicy::Overwrite && self.overwrite.iter().any(|f| f == field)
    }
}

fn list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

/// A user's `restClientConfig`: an object keyed by method name (`call`,
/// `CallStatusEvent`, ...), each with `restOnError`, `restPolicy`,
/// `restOverwrite`, `restExclude` (and `clientExclude`, which has no use
/// here). Missing methods and fields take the defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientConfig(pub Map<String, Value>);

impl ClientConfig {
    pub fn parse(bytes: &[u8]) -> Option<ClientConfig> {
        match serde_json::from_slice(bytes).ok()? {
            Value::Object(map) => Some(ClientConfig(map)),
            _ => None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).unwrap_or_default()
    }

    /// How `method` is handled; `default_on_error` for an unset `restOnError`.
    pub fn method(&self, method: &str, default_on_error: OnError) -> MethodConfig {
        let entry = self.0.get(method).and_then(Value::as_object);
        let field = |name: &str| entry.and_then(|e| e.get(name));
        MethodConfig {
            on_error: field("restOnError")
                .and_then(Value::as_str)
                .and_then(OnError::parse)
                .unwrap_or(default_on_error),
            policy: field("restPolicy")
                .and_then(Value::as_str)
                .and_then(RestPolicy::parse)
                .unwrap_or(RestPolicy::Notify),
            overwrite: list(field("restOverwrite")),
            exclude: list(field("restExclude")),
        }
    }

    /// What is wrong in the config, for the log (unknown values are taken
    /// as the defaults).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (method, entry) in &self.0 {
            let Some(entry) = entry.as_object() else {
                problems.push(format!("`{method}` is not an object"));
                continue;
            };
            if let Some(v) = entry.get("restOnError") {
                if v.as_str().and_then(OnError::parse).is_none() {
                    problems.push(format!("`{method}.restOnError` {v} is not LOG or FAIL"));
                }
            }
            if let Some(v) = entry.get("restPolicy") {
                if v.as_str().and_then(RestPolicy::parse).is_none() {
                    problems.push(format!(
                        "`{method}.restPolicy` {v} is not NOTIFY, OVERWRITE or DISABLE"
                    ));
                }
            }
        }
        problems
    }
}
