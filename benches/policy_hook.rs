//! What one policy hook call through the plugin host costs, against the
//! same decision written in native Rust, measured in one run.
//!
//! The plugin is the shipped `builtin:allowlist` component, loaded by
//! `PluginHost::load` exactly as `serve` loads it (pooling allocator, epoch
//! deadline, warm instance). The native side is the allowlist's decision
//! (same rules, same glob) reimplemented below, given the same WIT values.
//!
//! Run: `cargo bench --bench policy_hook`. It prints a latency table
//! (p50/p99/p99.9 of N timed calls each, since criterion reports means and
//! confidence intervals but no tail) and then criterion's figures.
//! `POLICY_HOOK_N` sets N (default 20000).

use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callswitch::config::{Config, DEFAULT_CONFIG};
use callswitch::plugins::bindings::{
    CallInfo, CallKind, CallState, ConnectVerdict, DialVerdict, Identity, Party, PartyStatus,
};
use callswitch::plugins::{chain, identity_of, HostContext, PluginHost, PolicyPlugin};
use callswitch::switch::{Directory, User};
use criterion::Criterion;
use tokio::runtime::Runtime;
use uuid::Uuid;

const RULES: &str = "alice -> bob; carol -> +1555*";

/// The demo users of the embedded default config and one allowlist plugin.
fn config_text() -> String {
    let cut = DEFAULT_CONFIG
        .find("# ---- plugins ----")
        .expect("the default config has a plugins section");
    format!(
        "{}\n[[plugin]]\nname = \"allowlist\"\npath = \"builtin:allowlist\"\nworld = \"policy\"\n\
         grants = [\"config\"]\non_error = \"deny\"\n\n[plugin.config]\nrules = \"{RULES}\"\n\
         default = \"deny\"\n",
        &DEFAULT_CONFIG[..cut]
    )
}

// ---- the same decision in native Rust (plugins/allowlist/src/lib.rs) ----

struct Rule {
    allow: bool,
    caller: String,
    callee: String,
}

struct NativeAllowlist {
    rules: Vec<Rule>,
    default_allow: bool,
}

impl NativeAllowlist {
    /// Parses the plugin's settings as the plugin does (once, like its
    /// `OnceLock`).
    fn from_settings(settings: &toml::Table) -> Self {
        let get = |k: &str| settings.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let rules = get("rules")
            .unwrap_or_default()
            .split([';', '\n'])
            .map(str::trim)
            .filter(|r| !r.is_empty() && !r.starts_with('#'))
            .map(|r| {
                let (allow, r) = match r.strip_prefix('!') {
                    Some(rest) => (false, rest),
                    None => (true, r),
                };
                let (caller, callee) = r.split_once("->").expect("rule has `->`");
                Rule {
                    allow,
                    caller: caller.trim().into(),
                    callee: callee.trim().into(),
                }
            })
            .collect();
        let default_allow = match get("default").as_deref().map(str::trim) {
            None | Some("deny") => false,
            Some("allow") => true,
            Some(other) => panic!("bad default {other:?}"),
        };
        NativeAllowlist {
            rules,
            default_allow,
        }
    }

    fn allows(&self, caller: &Identity, callee: &Identity) -> bool {
        self.rules
            .iter()
            .find(|r| matches(&r.caller, caller) && matches(&r.callee, callee))
            .map_or(self.default_allow, |r| r.allow)
    }

    fn on_dial(&self, _call: &CallInfo, caller: &Identity, targets: &[Identity]) -> DialVerdict {
        match targets.iter().find(|t| !self.allows(caller, t)) {
            Some(callee) => DialVerdict::Deny(format!(
                "allowlist: {} is not allowed to call {}",
                caller.name, callee.name
            )),
            None => DialVerdict::Allow,
        }
    }
}

fn matches(pattern: &str, who: &Identity) -> bool {
    glob(pattern, &who.name)
        || glob(pattern, &who.id)
        || who.numbers.iter().any(|n| glob(pattern, n))
}

fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            star = Some((sp, st + 1));
            pi = sp + 1;
            ti = st + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

// ---- the fixture ----

/// One dial as the switch hands it to `on-dial`.
struct Dial {
    label: &'static str,
    call_id: Uuid,
    call: CallInfo,
    caller: Identity,
    targets: Vec<Identity>,
    caller_user: User,
    target_names: Vec<String>,
}

impl Dial {
    /// Built as `chain::decide_dial` builds it (`convert::proposed_call`).
    fn new(dir: &Directory, label: &'static str, from: &str, to: &[&str]) -> Self {
        let caller_user = dir.resolve(from).expect("known caller").clone();
        let call_id = Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0001);
        let caller = identity_of(dir, caller_user.id, Some("laptop".into()));
        let plain = identity_of(dir, caller_user.id, None);
        let call = CallInfo {
            id: call_id.to_string(),
            kind: if to.len() > 1 {
                CallKind::Group
            } else {
                CallKind::Direct
            },
            state: CallState::Ringing,
            caller: plain.clone(),
            parties: vec![Party {
                user: plain,
                status: PartyStatus::Joined,
            }],
            created_at_ms: 1_763_000_000_000,
        };
        let targets = to
            .iter()
            .map(|t| identity_of(dir, dir.resolve(t).expect("known target").id, None))
            .collect();
        Dial {
            label,
            call_id,
            call,
            caller,
            targets,
            caller_user,
            target_names: to.iter().map(|t| t.to_string()).collect(),
        }
    }
}

struct Fixture {
    rt: Runtime,
    host: PluginHost,
    plugin: Arc<PolicyPlugin>,
    native: NativeAllowlist,
    allow: Dial,
    deny: Dial,
    /// A group dial to 8 targets, all allowed: how the cost grows with
    /// the values passed in.
    group8: Dial,
    _data: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let config = Config::parse(&config_text()).expect("bench config parses");
        let native = NativeAllowlist::from_settings(&config.plugins[0].config);
        let data = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = config.directory.clone();
        let started = Instant::now();
        let host = rt
            .block_on(PluginHost::load(
                &config.plugins,
                &config.base_dir,
                data.path(),
                Arc::new(HostContext::new(config.directory.clone())),
            ))
            .expect("allowlist loads");
        eprintln!(
            "loaded builtin:allowlist in {:.1} ms (compile + instantiate)",
            started.elapsed().as_secs_f64() * 1e3
        );
        let plugin = host.chain()[0].clone();
        let allow = Dial::new(&dir, "allow", "alice", &["bob"]);
        let deny = Dial::new(&dir, "deny", "bob", &["alice"]);
        let group8 = Dial::new(&dir, "allow_8_targets", "alice", &["bob"; 8]);
        Fixture {
            rt,
            host,
            plugin,
            native,
            allow,
            deny,
            group8,
            _data: data,
        }
    }

    fn plugin_dial(&self, d: &Dial) -> DialVerdict {
        self.rt
            .block_on(
                self.plugin
                    .on_dial(d.call_id, &d.call, &d.caller, &d.targets),
            )
            .expect("hook succeeds")
    }

    /// The same decision through `vet-dial`, the cheap form the switch
    /// calls instead of `on-dial` (the allowlist exports it).
    fn plugin_vet(&self, d: &Dial) -> DialVerdict {
        self.rt
            .block_on(self.plugin.vet_dial(d.call_id, &d.caller, &d.targets))
            .expect("hook succeeds")
    }

    fn native_dial(&self, d: &Dial) -> DialVerdict {
        self.native.on_dial(&d.call, &d.caller, &d.targets)
    }

    /// Both sides give the same verdicts before anything is timed.
    fn check(&self) {
        for d in [&self.allow, &self.deny, &self.group8] {
            let (p, n) = (self.plugin_dial(d), self.native_dial(d));
            assert_eq!(
                format!("{p:?}"),
                format!("{n:?}"),
                "verdicts differ ({})",
                d.label
            );
            let v = self.plugin_vet(d);
            assert_eq!(
                format!("{v:?}"),
                format!("{n:?}"),
                "vet-dial differs ({})",
                d.label
            );
        }
        assert!(matches!(self.plugin_dial(&self.allow), DialVerdict::Allow));
        assert!(matches!(self.plugin_dial(&self.deny), DialVerdict::Deny(_)));
    }
}

// ---- the latency table ----

struct Summary {
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

/// Times `n` calls one by one (after `n / 20` untimed warm-up calls).
fn sample(n: usize, mut f: impl FnMut()) -> Summary {
    for _ in 0..n / 20 {
        f();
    }
    let mut v: Vec<u64> = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_nanos() as u64);
    }
    v.sort_unstable();
    let at = |q: f64| v[((q * n as f64).ceil() as usize).clamp(1, n) - 1] as f64;
    Summary {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: *v.last().unwrap() as f64,
        mean: v.iter().sum::<u64>() as f64 / n as f64,
    }
}

fn us(ns: f64) -> String {
    format!("{:.3}", ns / 1e3)
}

fn latency_table(fx: &Fixture, n: usize) {
    let mut rows: Vec<(String, Summary)> = vec![
        ("timer only (Instant pair)".into(), sample(n, || {})),
        (
            "native on_dial, allow".into(),
            sample(n, || {
                black_box(fx.native_dial(black_box(&fx.allow)));
            }),
        ),
        (
            "plugin on_dial, allow".into(),
            sample(n, || {
                black_box(fx.plugin_dial(black_box(&fx.allow)));
            }),
        ),
        (
            "native on_dial, deny".into(),
            sample(n, || {
                black_box(fx.native_dial(black_box(&fx.deny)));
            }),
        ),
        (
            "plugin on_dial, deny".into(),
            sample(n, || {
                black_box(fx.plugin_dial(black_box(&fx.deny)));
            }),
        ),
    ];
    // Controls, to tell the host's tail from the machine's.
    rows.push((
        "native allow in block_on".into(),
        sample(n, || {
            black_box(
                fx.rt
                    .block_on(async { fx.native_dial(black_box(&fx.allow)) }),
            );
        }),
    ));
    let who = fx.allow.caller.clone();
    rows.push((
        "plugin on_connect".into(),
        sample(n, || {
            black_box(fx.rt.block_on(fx.plugin.on_connect(black_box(&who)))).ok();
        }),
    ));
    // Plain native work lasting as long as the plugin's median call: its
    // tail is what this machine does to any ~4 us of work.
    let per_call = {
        let t = Instant::now();
        for _ in 0..100_000 {
            black_box(fx.native_dial(black_box(&fx.allow)));
        }
        t.elapsed().as_nanos() as f64 / 100_000.0
    };
    let k = ((rows[2].1.p50 / per_call).round() as usize).max(1);
    rows.push((
        format!("control: native allow x{k}"),
        sample(n, || {
            for _ in 0..k {
                black_box(fx.native_dial(black_box(&fx.allow)));
            }
        }),
    ));
    rows.push((
        "plugin vet_dial, allow".into(),
        sample(n, || {
            black_box(fx.plugin_vet(black_box(&fx.allow)));
        }),
    ));
    rows.push((
        "plugin vet_dial, deny".into(),
        sample(n, || {
            black_box(fx.plugin_vet(black_box(&fx.deny)));
        }),
    ));
    println!();
    println!("policy hook latency, {n} calls each, one call per Instant pair (microseconds)");
    println!(
        "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    for (name, s) in &rows {
        println!(
            "{:<30} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name,
            us(s.p50),
            us(s.p90),
            us(s.p99),
            us(s.p999),
            us(s.max),
            us(s.mean)
        );
    }
    for (case, native, plugin) in [
        ("allow", &rows[1].1, &rows[2].1),
        ("deny", &rows[3].1, &rows[4].1),
    ] {
        println!(
            "ratio plugin/native ({case}): p50 {:.0}x, p99 {:.0}x, mean {:.0}x   (native includes the ~{} ns timer)",
            plugin.p50 / native.p50,
            plugin.p99 / native.p99,
            plugin.mean / native.mean,
            rows[0].1.p50 as u64
        );
    }
    let n_rows = rows.len();
    for (hook, p99) in [
        ("on_dial", rows[2].1.p99.max(rows[4].1.p99)),
        (
            "vet_dial",
            rows[n_rows - 2].1.p99.max(rows[n_rows - 1].1.p99),
        ),
    ] {
        println!(
            "goal p99 < 5 us: {} for {hook} (worst p99 {} us)",
            if p99 < 5_000.0 { "met" } else { "NOT met" },
            us(p99)
        );
    }
    println!();
}

// ---- criterion ----

fn benches(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("policy_hook");
    for d in [&fx.allow, &fx.deny, &fx.group8] {
        g.bench_function(format!("native_on_dial/{}", d.label), |b| {
            b.iter(|| fx.native_dial(black_box(d)))
        });
        g.bench_function(format!("plugin_on_dial/{}", d.label), |b| {
            b.iter(|| fx.plugin_dial(black_box(d)))
        });
        g.bench_function(format!("plugin_vet_dial/{}", d.label), |b| {
            b.iter(|| fx.plugin_vet(black_box(d)))
        });
    }
    // Variants that show where the plugin's time goes.
    // The runtime's own cost: the native decision inside `block_on`.
    g.bench_function("native_on_dial_in_block_on/allow", |b| {
        b.iter(|| {
            fx.rt
                .block_on(async { fx.native_dial(black_box(&fx.allow)) })
        })
    });
    // The smallest hook: one identity in, `admit(none)` out.
    let who = fx.allow.caller.clone();
    g.bench_function("plugin_on_connect", |b| {
        b.iter(|| {
            let v = fx.rt.block_on(fx.plugin.on_connect(black_box(&who)));
            assert!(matches!(v, Ok(ConnectVerdict::Admit(None))));
        })
    });
    // The whole chain path the driver runs: WIT values built from the
    // directory, the hook, verdict validation, policy notes.
    let dir = &fx.host.context.directory;
    let chain = fx.host.chain();
    let d = &fx.allow;
    g.bench_function("chain_decide_dial/allow", |b| {
        b.iter(|| {
            let mut notes = Vec::new();
            let decision = fx.rt.block_on(chain::decide_dial(
                &chain,
                dir,
                d.call_id,
                &d.caller_user,
                Some("laptop".into()),
                d.target_names.clone(),
                1_763_000_000_000,
                &mut notes,
            ));
            black_box((decision, notes))
        })
    });
    g.finish();
}

fn main() {
    let fx = Fixture::new();
    fx.check();
    let n = std::env::var("POLICY_HOOK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    latency_table(&fx, n);

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(60)
        .configure_from_args();
    benches(&mut c, &fx);
    c.final_summary();

    let s = &fx.plugin.stats;
    let calls = s.calls.load(Relaxed);
    println!(
        "host counters: {calls} hook calls, {} failures, {} instantiation(s), mean {:.3} us as the host times it",
        s.failures.load(Relaxed),
        s.instantiations.load(Relaxed),
        s.nanos.load(Relaxed) as f64 / calls.max(1) as f64 / 1e3
    );
}
