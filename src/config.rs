//! The TOML configuration: its types, defaults and validation. The embedded
//! default is `examples/switch.toml`, so the documented file and what
//! `serve` runs without `--config` cannot drift apart.
//!
//! Errors name the key and the line: values are validated while
//! deserialising, so the TOML parser reports the position of the bad value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use thiserror::Error;
use uuid::Uuid;

use crate::switch::{parse_token_hash, Directory, SwitchSettings, TokenDigestCfg, User};

/// Default admission limit (see examples/switch.toml and docs/BENCHMARKS.md).
pub const DEFAULT_MAX_LIVE_CALLS: usize = 350;

/// Capabilities a plugin can be granted.
pub const GRANTS: &[&str] = &[
    "log",
    "kv",
    "clock",
    "calls",
    "calls-control",
    "notify",
    "config",
    "streams",
    "devices",
    "http-client",
];

/// Largest memory cap a plugin can have (the pooling allocator's slot size).
pub const MAX_PLUGIN_MEMORY_MB: u64 = 64;

/// The embedded default configuration.
pub const DEFAULT_CONFIG: &str = include_str!("../examples/switch.toml");

/// A configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config error: {0}")]
    Parse(String),
    #[error("config error at line {line}, key `{key}`: {message}")]
    Invalid {
        key: String,
        line: usize,
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub calls: CallsConfig,
    #[serde(default)]
    pub records: RecordsConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub ingress: IngressConfig,
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginConfig>,
    /// Users and admin credentials, built and checked by `parse`.
    #[serde(skip)]
    pub directory: Directory,
    /// Directory relative plugin paths are resolved against (the config
    /// file's, or the working directory for the embedded default).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub idle_timeout_ms: u64,
    pub socket_buffer_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:4433".parse().expect("valid address"),
            data_dir: PathBuf::from("./callswitch-data"),
            idle_timeout_ms: 30_000,
            socket_buffer_bytes: 4 << 20,
        }
    }
}

/// The HTTP/WebSocket listener of adapter plugins and `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngressConfig {
    /// TCP address for HTTP/1.1 and HTTP/2 (cleartext); port 0 picks one,
    /// written to `<data_dir>/ingress.addr`.
    pub listen: SocketAddr,
    /// Off: no HTTP listener at all.
    pub enabled: bool,
    /// Largest request body read; a longer one is answered 413.
    pub max_body_bytes: usize,
    /// Largest WebSocket message accepted on a stream.
    pub max_message_bytes: usize,
    /// Serve HTTPS (TLS 1.3, ALPN h2 and http/1.1) with the switch's own
    /// certificate (the one QUIC clients pin) instead of cleartext.
    pub tls: bool,
    /// Most device events waiting for one adapter to take them; a device
    /// whose event finds the queue full is closed (the adapter is not
    /// keeping up), as a QUIC client that stops reading is cut off.
    pub max_queued_events: usize,
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            enabled: true,
            max_body_bytes: 1 << 20,
            max_message_bytes: 64 << 10,
            tls: false,
            max_queued_events: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    pub ring_timeout_secs: u64,
    pub max_participants: usize,
    pub max_live_calls: usize,
}

impl Default for CallsConfig {
    fn default() -> Self {
        let s = SwitchSettings::default();
        CallsConfig {
            ring_timeout_secs: s.ring_timeout_ms / 1000,
            max_participants: s.max_participants,
            max_live_calls: DEFAULT_MAX_LIVE_CALLS,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    pub fsync: bool,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig { fsync: true }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub token_hashes: Vec<TokenDigestCfg>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub id: Uuid,
    pub name: toml::Spanned<String>,
    #[serde(default)]
    pub numbers: Vec<E164>,
    pub token_hash: TokenDigestCfg,
}

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginWorld {
    Policy,
    Adapter,
}

/// What a failing plugin's hook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Fail closed: the request is refused.
    Deny,
    /// Fail open: the plugin is skipped.
    Allow,
}

/// One `[[plugin]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub name: toml::Spanned<String>,
    /// A `.wasm` component file, or `builtin:NAME` for a shipped plugin.
    pub path: String,
    pub world: PluginWorld,
    /// Host interfaces the plugin may import: log, kv, clock, calls,
    /// calls-control, notify, config.
    #[serde(default)]
    pub grants: Vec<String>,
    #[serde(default = "default_on_error")]
    pub on_error: OnError,
    /// Deadline of one call into the plugin (default 50 ms for a policy,
    /// 1000 ms for an adapter).
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u64,
    /// Reload when the file changes.
    #[serde(default)]
    pub watch: bool,
    /// Deliver call events to the plugin's `on-event`. A plugin that
    /// ignores events is cheaper with `events = false`.
    #[serde(default = "default_events")]
    pub events: bool,
    /// Destinations its `http-client` may reach: `"host"` (any port) or
    /// `"host:port"`.
    #[serde(default)]
    pub http_hosts: Vec<String>,
    /// Timeout of an `http-client` request that gives none (ms).
    #[serde(default = "default_http_timeout_ms")]
    pub http_timeout_ms: u64,
    /// A PEM file of CA certificates its `http-client` trusts for
    /// `https://` destinations, besides the system's (e.g. the operator's
    /// own CA). Relative to the working directory.
    #[serde(default)]
    pub http_ca_file: Option<std::path::PathBuf>,
    /// Adapters: the path prefixes routed to the plugin, e.g. `"/api/v3/"`.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Adapters: the body of the errors the host answers for the adapter
    /// (its failure, a body over the cap), in the adapter's API's own
    /// shape. `{status}` is replaced by the status code, `{phrase}` by its
    /// reason phrase (`Payload Too Large`) and `{reason}` by the reason,
    /// escaped for a JSON string. Default:
    /// `{"error":true,"status":{status},"reason":"{reason}"}`.
    #[serde(default)]
    pub failure_body: Option<String>,
    /// The plugin's own settings, read through the `config` interface.
    #[serde(default)]
    pub config: toml::Table,
}

impl PluginConfig {
    /// The deadline of one call, with the world's default.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms.unwrap_or(match self.world {
            PluginWorld::Policy => 50,
            PluginWorld::Adapter => 1000,
        })
    }
}

fn default_http_timeout_ms() -> u64 {
    15_000
}

fn default_events() -> bool {
    true
}

fn default_on_error() -> OnError {
    OnError::Deny
}

fn default_memory_mb() -> u64 {
    16
}

/// An E.164 number: `+` then 2 to 15 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E164(pub String);

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let digits = s.strip_prefix('+').unwrap_or("");
        if (2..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(E164(s))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{s}` is not an E.164 number (+ then 2 to 15 digits)"
            )))
        }
    }
}

impl<'de> Deserialize<'de> for TokenDigestCfg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_token_hash(&s)
            .map(TokenDigestCfg)
            .map_err(serde::de::Error::custom)
    }
}

impl Config {
    /// Parses and validates a configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.directory = config.build_directory(text)?;
        if config.calls.max_participants < 2 {
            return Err(invalid(
                text,
                "calls.max_participants",
                None,
                "must be at least 2",
            ));
        }
        if config.ingress.max_queued_events == 0 {
            return Err(invalid(
                text,
                "ingress.max_queued_events",
                None,
                "must be at least 1",
            ));
        }
        if config.calls.ring_timeout_secs == 0 {
            return Err(invalid(
                text,
                "calls.ring_timeout_secs",
                None,
                "must be at least 1",
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut routes = std::collections::HashSet::new();
        for p in &config.plugins {
            let at = Some(p.name.span().start);
            if !names.insert(p.name.get_ref().clone()) {
                return Err(invalid(
                    text,
                    "plugin.name",
                    at,
                    "plugin names must be unique",
                ));
            }
            if p.deadline_ms() == 0 || p.deadline_ms() > 10_000 {
                return Err(invalid(
                    text,
                    "plugin.deadline_ms",
                    at,
                    "must be 1 to 10000",
                ));
            }
            if p.memory_mb == 0 || p.memory_mb > MAX_PLUGIN_MEMORY_MB {
                return Err(invalid(
                    text,
                    "plugin.memory_mb",
                    at,
                    &format!("must be 1 to {MAX_PLUGIN_MEMORY_MB}"),
                ));
            }
            match p.world {
                PluginWorld::Policy if !p.routes.is_empty() => {
                    return Err(invalid(
                        text,
                        "plugin.routes",
                        at,
                        "only an adapter (world = \"adapter\") has routes",
                    ));
                }
                PluginWorld::Adapter if p.routes.is_empty() => {
                    return Err(invalid(
                        text,
                        "plugin.routes",
                        at,
                        "an adapter needs at least one route, e.g. routes = [\"/api/\"]",
                    ));
                }
                _ => {}
            }
            if p.failure_body.is_some() && p.world != PluginWorld::Adapter {
                return Err(invalid(
                    text,
                    "plugin.failure_body",
                    at,
                    "only an adapter (world = \"adapter\") has a failure_body",
                ));
            }
            for r in &p.routes {
                if !r.starts_with('/') || r == "/metrics" {
                    return Err(invalid(
                        text,
                        "plugin.routes",
                        at,
                        &format!("route `{r}` must start with `/` and not be /metrics"),
                    ));
                }
                if !routes.insert(r.clone()) {
                    return Err(invalid(
                        text,
                        "plugin.routes",
                        at,
                        &format!("route `{r}` is mounted twice"),
                    ));
                }
            }
            for g in &p.grants {
                if !GRANTS.contains(&g.as_str()) {
                    return Err(invalid(
                        text,
                        "plugin.grants",
                        at,
                        &format!("unknown grant `{g}`; grants are {}", GRANTS.join(", ")),
                    ));
                }
            }
        }
        if config.server.idle_timeout_ms < 1000 {
            return Err(invalid(
                text,
                "server.idle_timeout_ms",
                None,
                "must be at least 1000",
            ));
        }
        Ok(config)
    }

    /// Reads a file, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            None => Self::parse(DEFAULT_CONFIG),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                let mut config = Self::parse(&text)?;
                config.base_dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
                Ok(config)
            }
        }
    }

    /// The core's settings.
    pub fn switch_settings(&self) -> SwitchSettings {
        SwitchSettings {
            ring_timeout_ms: self.calls.ring_timeout_secs * 1000,
            max_participants: self.calls.max_participants,
            max_live_calls: self.calls.max_live_calls,
        }
    }

    /// Users and admin credentials. `text` is the source, for line numbers.
    fn build_directory(&self, text: &str) -> Result<Directory, ConfigError> {
        let mut d = Directory::default();
        for u in &self.users {
            let user = User {
                id: u.id,
                name: u.name.get_ref().clone(),
                numbers: u.numbers.iter().map(|n| n.0.clone()).collect(),
            };
            d.add_user(user, u.token_hash.0)
                .map_err(|e| invalid(text, "user", Some(u.name.span().start), &e.to_string()))?;
        }
        for h in &self.admin.token_hashes {
            d.add_admin(h.0)
                .map_err(|e| invalid(text, "admin.token_hashes", None, &e.to_string()))?;
        }
        Ok(d)
    }
}

/// An error at a byte offset (or at the key's first mention).
fn invalid(text: &str, key: &str, offset: Option<usize>, message: &str) -> ConfigError {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let offset = offset.or_else(|| {
        text.lines()
            .scan(0, |pos, l| {
                let start = *pos;
                *pos += l.len() + 1;
                Some((start, l))
            })
            .find(|(_, l)| l.trim_start().starts_with(leaf))
            .map(|(start, _)| start)
    });
    ConfigError::Invalid {
        key: key.to_string(),
        line: offset
            .map(|o| text[..o.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses_with_demo_users() {
        let c = Config::parse(DEFAULT_CONFIG).unwrap();
        assert_eq!(c.server.listen.port(), 4433);
        let d = &c.directory;
        assert!(d.authenticate("alice-demo-token").is_some());
        assert_eq!(d.resolve("+15550101").unwrap().name, "bob");
    }

    #[test]
    fn errors_name_key_and_line() {
        let e = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 3") && msg.contains("bogus"), "{msg}");

        let text = "[[user]]\nid = \"5f1c5a1e-0000-4000-8000-00000000a11c\"\nname = \"a\"\nnumbers = [\"12345\"]\ntoken_hash = \"sha256:00\"\n";
        let msg = Config::parse(text).unwrap_err().to_string();
        assert!(msg.contains("line 4") && msg.contains("E.164"), "{msg}");

        let text = "[calls]\nring_timeout_secs = 60\nmax_participants = 1\n";
        let msg = Config::parse(text).unwrap_err().to_string();
        assert!(
            msg.contains("line 3") && msg.contains("max_participants"),
            "{msg}"
        );
    }

    #[test]
    fn duplicate_user_names_point_at_the_second() {
        let h = crate::switch::hash_token("x");
        let h2 = crate::switch::hash_token("y");
        let text = format!(
            "[[user]]\nid = \"00000000-0000-4000-8000-000000000001\"\nname = \"a\"\ntoken_hash = \"{h}\"\n\
             [[user]]\nid = \"00000000-0000-4000-8000-000000000002\"\nname = \"a\"\ntoken_hash = \"{h2}\"\n"
        );
        let msg = Config::parse(&text).unwrap_err().to_string();
        assert!(
            msg.contains("line 7") && msg.contains("appears twice"),
            "{msg}"
        );
    }
}
