//! `dial` and `listen`: a terminal phone on the reference client. Audio
//! comes from and goes to WAV files; events are printed as they arrive.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::Args;
use tokio::time::Instant;
use uuid::Uuid;

use super::audio::{read_wav, WavRecorder, FRAMES_PER_SECOND};
use super::Remote;
use crate::wire::{MediaFrame, ServerMessage};

#[derive(Debug, Args)]
pub struct DialArgs {
    /// Who to call: user names, UUIDs or E.164 numbers (several: a group call).
    #[arg(required = true)]
    pub targets: Vec<String>,
    /// Act as this user (with the local admin token) or check the --token's user.
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// WAV file (16-bit PCM) to send once the call is answered.
    #[arg(long)]
    pub play: Option<PathBuf>,
    /// Write the audio received to this WAV file.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Sample rate written by --record.
    #[arg(long, default_value_t = 8000)]
    pub rate: u32,
    /// Hang up this long after the answer (e.g. 10s, 500ms, 2m).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Call id to use (default: a fresh UUID).
    #[arg(long)]
    pub call_id: Option<Uuid>,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Act as this user (with the local admin token) or check the --token's user.
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// Answer every call at once (otherwise: asks on the terminal).
    #[arg(long)]
    pub auto_answer: bool,
    /// Send every frame received straight back.
    #[arg(long, conflicts_with = "record")]
    pub echo: bool,
    /// Write the audio received to this WAV file.
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// Sample rate written by --record.
    #[arg(long, default_value_t = 8000)]
    pub rate: u32,
    /// Exit after this many calls have ended.
    #[arg(long)]
    pub calls: Option<u32>,
    /// Device label shown to admins.
    #[arg(long, default_value = "terminal")]
    pub device: String,
    #[command(flatten)]
    pub remote: Remote,
}

/// Parses `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (num, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| text.split_at(i))
        .unwrap_or((text, "s"));
    let value: f64 = num.parse().map_err(|_| format!("bad duration `{text}`"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("bad duration unit in `{text}`: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn describe(m: &ServerMessage) -> Option<String> {
    Some(match m {
        ServerMessage::Incoming { from, kind, .. } => {
            format!("incoming {kind:?} call from {}", from.name)
        }
        ServerMessage::Ringing { user, device, .. } => {
            format!("ringing {} (device {device})", user.name)
        }
        ServerMessage::Answered { user, .. } => format!("answered by {}", user.name),
        ServerMessage::RingStopped { reason, .. } => format!("stopped ringing: {reason:?}"),
        ServerMessage::Left { user, reason, .. } => format!("{} left ({reason:?})", user.name),
        ServerMessage::Media { channel, peers, .. } => format!(
            "audio: sending on channel {channel}, {} peer(s)",
            peers.len()
        ),
        ServerMessage::Held { user, .. } => format!("{} put the call on hold", user.name),
        ServerMessage::Resumed { user, .. } => format!("{} resumed the call", user.name),
        ServerMessage::Dtmf { user, digits, .. } => format!("DTMF from {}: {digits}", user.name),
        ServerMessage::Busy { user, .. } => format!("{} is busy", user.name),
        ServerMessage::Declined { user, .. } => format!("{} declined", user.name),
        ServerMessage::NoAnswer { user, .. } => format!("{} did not answer", user.name),
        ServerMessage::Unavailable { user, .. } => format!("{} is unavailable", user.name),
        ServerMessage::Ended { reason, .. } => format!("call ended: {reason:?}"),
        _ => return None,
    })
}

fn print_event(m: &ServerMessage) {
    if let Some(line) = describe(m) {
        println!("{line}");
    }
}

pub async fn dial(args: DialArgs) -> anyhow::Result<()> {
    let (client, mut events, welcome) = args
        .remote
        .connect(args.as_user.clone(), Some("terminal".into()))
        .await?;
    let Some(me) = welcome.user else {
        bail!("the admin token needs --as USER to place calls");
    };
    let wav = args.play.as_deref().map(read_wav).transpose()?;
    let mut recorder = args
        .record
        .as_deref()
        .map(|p| WavRecorder::create(p, args.rate))
        .transpose()?;
    let targets: Vec<&str> = args.targets.iter().map(String::as_str).collect();
    let call_id = client.dial(&targets, args.call_id).await?;
    println!(
        "{} calling {} (call {call_id})",
        me.name,
        args.targets.join(", ")
    );

    let mut channel = None;
    let mut hangup_at: Option<Instant> = None;
    let mut next_frame = 0usize;
    let frame_gap = wav
        .as_ref()
        .map(|w| w.frame_interval())
        .unwrap_or(Duration::from_millis(1000 / FRAMES_PER_SECOND as u64));
    let mut ticker = tokio::time::interval(frame_gap);
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut media_closed = false;
    loop {
        tokio::select! {
            biased;
            event = events.next() => {
                let Some(event) = event else { bail!("the switch closed the connection") };
                print_event(&event);
                match event {
                    ServerMessage::Media { call_id: c, channel: ch, peers } if c == call_id => {
                        channel = (!peers.is_empty()).then_some(ch);
                        if hangup_at.is_none() {
                            hangup_at = args.duration.map(|d| Instant::now() + d);
                        }
                    }
                    ServerMessage::Ended { call_id: c, .. } if c == call_id => break,
                    _ => {}
                }
            }
            frame = client.recv_frame(), if !media_closed => {
                // The connection is closing: the events say why.
                let Ok(frame) = frame else { media_closed = true; continue };
                received += 1;
                if let Some(r) = recorder.as_mut() {
                    r.write_payload(&frame.payload)?;
                }
            }
            _ = ticker.tick() => {
                if let (Some(ch), Some(wav)) = (channel, wav.as_ref()) {
                    if let Some(payload) = wav.frames.get(next_frame) {
                        let samples = wav.samples_per_frame.wrapping_mul(next_frame as u32);
                        client.send_frame(&MediaFrame {
                            channel: ch,
                            seq: next_frame as u32,
                            timestamp: samples,
                            payload: Bytes::copy_from_slice(payload),
                        })?;
                        next_frame += 1;
                        sent += 1;
                    }
                }
                if hangup_at.is_some_and(|t| Instant::now() >= t) {
                    client.hangup(call_id).await?;
                    println!("hung up after {:?}", args.duration.unwrap_or_default());
                    break;
                }
            }
        }
    }
    println!("frames sent {sent}, received {received}");
    if let Some(r) = recorder {
        r.finish()?;
    }
    client.close().await;
    Ok(())
}

pub async fn listen(args: ListenArgs) -> anyhow::Result<()> {
    let (client, mut events, welcome) = args
        .remote
        .connect(args.as_user.clone(), Some(args.device.clone()))
        .await?;
    let Some(me) = welcome.user else {
        bail!("the admin token needs --as USER to take calls");
    };
    println!("{} listening (device {})", me.name, welcome.device_id);
    let mut ended_calls = 0u32;
    let mut current: Option<(Uuid, Option<u32>)> = None;
    let mut recorder = None;
    let mut stdin_lines = tokio::io::BufReader::new(tokio::io::stdin());
    let mut media_closed = false;
    loop {
        tokio::select! {
            biased;
            event = events.next() => {
                let Some(event) = event else { bail!("the switch closed the connection") };
                print_event(&event);
                match event {
                    ServerMessage::Incoming { call_id, from, .. } => {
                        if current.is_some() {
                            client.decline(call_id).await.ok();
                            continue;
                        }
                        if args.auto_answer || ask(&mut stdin_lines, &from.name).await? {
                            client.answer(call_id).await.context("answering")?;
                            current = Some((call_id, None));
                            if let Some(path) = &args.record {
                                recorder = Some(WavRecorder::create(path, args.rate)?);
                            }
                        } else {
                            client.decline(call_id).await.ok();
                        }
                    }
                    ServerMessage::Media { call_id, channel, peers } => {
                        if let Some((id, ch)) = current.as_mut() {
                            if *id == call_id {
                                *ch = (!peers.is_empty()).then_some(channel);
                            }
                        }
                    }
                    ServerMessage::Ended { call_id, .. } if current.is_some_and(|(id, _)| id == call_id) => {
                        current = None;
                        if let Some(r) = recorder.take() {
                            r.finish()?;
                        }
                        ended_calls += 1;
                        if args.calls.is_some_and(|n| ended_calls >= n) {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            frame = client.recv_frame(), if !media_closed => {
                let Ok(frame) = frame else { media_closed = true; continue };
                if let Some(r) = recorder.as_mut() {
                    r.write_payload(&frame.payload)?;
                }
                if args.echo {
                    if let Some((_, Some(ch))) = current {
                        client.send_frame(&MediaFrame { channel: ch, ..frame })?;
                    }
                }
            }
        }
    }
    client.close().await;
    Ok(())
}

async fn ask(
    stdin: &mut tokio::io::BufReader<tokio::io::Stdin>,
    caller: &str,
) -> anyhow::Result<bool> {
    use tokio::io::AsyncBufReadExt;
    println!("answer the call from {caller}? [y/N]");
    let mut line = String::new();
    stdin.read_line(&mut line).await?;
    Ok(line.trim().eq_ignore_ascii_case("y"))
}
