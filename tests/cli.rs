//! The `callswitch` binary end to end: `serve` on a config file, a terminal
//! `listen` and `dial` holding a call with audio from a WAV file, the admin
//! commands with no flags but the data directory, a config error, and a
//! graceful Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{config_text, Knobs};

const BIN: &str = env!("CARGO_BIN_EXE_callswitch");

fn cli(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("run callswitch");
    out
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `serve` and waits for its fingerprint line.
fn serve(dir: &Path) -> Child {
    let config = dir.join("switch.toml");
    std::fs::write(&config, config_text(&Knobs::default())).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let fingerprint = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("certificate fingerprint"))
        .expect("serve prints the fingerprint");
    assert_eq!(fingerprint.rsplit(' ').next().unwrap().len(), 64);
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_tone(path: &Path, samples: usize) -> Vec<i16> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let data: Vec<i16> = (0..samples)
        .map(|i| ((i as f64 * 0.3).sin() * 9000.0) as i16)
        .collect();
    for s in &data {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
    data
}

fn interrupt(child: &mut Child) {
    let status = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn two_terminals_hold_a_call_with_audio_and_admins_see_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut server = serve(dir);
    let sent = write_tone(&dir.join("in.wav"), 8000);

    let listener = Command::new(BIN)
        .args([
            "listen",
            "--as",
            "bob",
            "--auto-answer",
            "--calls",
            "1",
            "--record",
        ])
        .arg(dir.join("out.wav"))
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("bob online", || {
        ok(cli(dir, &["users", "--json"])).contains("\"label\": \"terminal\"")
    });

    let out = ok(cli(
        dir,
        &[
            "dial",
            "bob",
            "--as",
            "alice",
            "--duration",
            "1500ms",
            "--play",
            dir.join("in.wav").to_str().unwrap(),
        ],
    ));
    assert!(out.contains("answered by bob"), "{out}");
    assert!(out.contains("frames sent 50"), "{out}");
    let call_id = out
        .split("(call ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .to_string();

    let listened = listener.wait_with_output().unwrap();
    assert!(listened.status.success());
    let heard: Vec<i16> = hound::WavReader::open(dir.join("out.wav"))
        .unwrap()
        .samples()
        .map(Result::unwrap)
        .collect();
    assert_eq!(heard, sent, "bob recorded exactly what alice played");

    let log = ok(cli(dir, &["call-log", &call_id]));
    let record: serde_json::Value = serde_json::from_str(&log).unwrap();
    assert_eq!(record["end_reason"], "hangup");
    assert_eq!(record["media"]["frames_relayed"], 50);
    let stats: serde_json::Value =
        serde_json::from_str(&ok(cli(dir, &["stats", "--json"]))).unwrap();
    assert_eq!(stats["calls_ended"], 1);
    assert_eq!(ok(cli(dir, &["calls"])).trim(), "no live calls");

    interrupt(&mut server);
    assert!(server.wait().unwrap().success());
}

#[test]
fn admin_hangup_and_graceful_interrupt_record_live_calls() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut server = serve(dir);
    let mut listener = Command::new(BIN)
        .args(["listen", "--as", "carol", "--auto-answer", "--echo"])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("carol online", || {
        ok(cli(dir, &["users", "--json"])).contains("\"label\": \"terminal\"")
    });
    let dialer = Command::new(BIN)
        .args(["dial", "carol", "--as", "alice", "--duration", "60s"])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut call_id = String::new();
    wait_until("an active call", || {
        let calls: serde_json::Value =
            serde_json::from_str(&ok(cli(dir, &["calls", "--json"]))).unwrap();
        match calls.as_array().and_then(|a| a.first()) {
            Some(c) if c["state"] == "active" => {
                call_id = c["call_id"].as_str().unwrap().to_string();
                true
            }
            _ => false,
        }
    });
    assert!(ok(cli(dir, &["hangup", &call_id])).contains("ended"));
    let out = dialer.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("call ended: Admin"));

    // A second call, still live when the switch is interrupted.
    let dialer = Command::new(BIN)
        .args(["dial", "carol", "--as", "bob", "--duration", "60s"])
        .stderr(Stdio::piped())
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("a second active call", || {
        ok(cli(dir, &["calls"])).contains("active")
    });
    interrupt(&mut server);
    assert!(server.wait().unwrap().success());
    let out = dialer.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("call ended: Shutdown"),
        "{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("calls.jsonl")).unwrap();
    let reasons: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["end_reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(reasons, ["admin", "shutdown"]);
    let _ = listener.kill();
    let _ = listener.wait();
}

#[test]
fn config_errors_name_the_key_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[calls]\nring_timeout_secs = \"soon\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&bad)
        .arg("--data-dir")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 5") && err.contains("ring_timeout_secs"),
        "{err}"
    );
}

#[test]
fn hash_token_matches_the_config_format() {
    let out = Command::new(BIN)
        .args(["hash-token", "alice-demo-token"])
        .output()
        .unwrap();
    let hash = ok(out);
    assert!(
        callswitch::config::DEFAULT_CONFIG.contains(hash.trim()),
        "{hash}"
    );
}
