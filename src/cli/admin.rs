//! Admin subcommands: each connects with the admin credential, makes one
//! request and prints the answer as a table or as JSON.

use uuid::Uuid;

use super::Remote;
use crate::wire::{CallSummary, PartyStatus};

pub async fn calls(remote: Remote, json: bool) -> anyhow::Result<()> {
    let (client, _, _) = remote.connect(None, Some("cli".into())).await?;
    let calls = client.list_calls().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&calls)?);
    } else if calls.is_empty() {
        println!("no live calls");
    } else {
        println!(
            "{:<36}  {:<6}  {:<7}  {:<10}  parties",
            "call", "kind", "state", "caller"
        );
        for c in &calls {
            println!(
                "{:<36}  {:<6}  {:<7}  {:<10}  {}",
                c.call_id,
                lower(&c.kind),
                lower(&c.state),
                c.caller.name,
                parties(c)
            );
        }
    }
    client.close().await;
    Ok(())
}

fn parties(c: &CallSummary) -> String {
    c.parties
        .iter()
        .map(|p| {
            if p.status == PartyStatus::Joined {
                p.user.name.clone()
            } else {
                format!("{} ({})", p.user.name, lower(&p.status))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn lower<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub async fn call_log(remote: Remote, call_id: Uuid) -> anyhow::Result<()> {
    let (client, _, _) = remote.connect(None, Some("cli".into())).await?;
    let record = client.call_log(call_id).await?;
    println!("{}", serde_json::to_string_pretty(&record)?);
    client.close().await;
    Ok(())
}

pub async fn hangup(remote: Remote, call_id: Uuid) -> anyhow::Result<()> {
    let (client, _, _) = remote.connect(None, Some("cli".into())).await?;
    client.admin_hangup(call_id).await?;
    println!("call {call_id} ended");
    client.close().await;
    Ok(())
}

pub async fn users(remote: Remote, json: bool) -> anyhow::Result<()> {
    let (client, _, _) = remote.connect(None, Some("cli".into())).await?;
    let users = client.list_users().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&users)?);
    } else {
        for u in &users {
            let devices: Vec<String> = u
                .devices
                .iter()
                .map(|d| {
                    if d.calls.is_empty() {
                        format!("{} (#{})", d.label, d.device_id)
                    } else {
                        format!("{} (#{}, {} call(s))", d.label, d.device_id, d.calls.len())
                    }
                })
                .collect();
            println!(
                "{:<12} {:<24} {}",
                u.user.name,
                u.numbers.join(","),
                if devices.is_empty() {
                    "offline".to_string()
                } else {
                    devices.join("; ")
                }
            );
        }
    }
    client.close().await;
    Ok(())
}

pub async fn stats(remote: Remote, json: bool) -> anyhow::Result<()> {
    let (client, _, _) = remote.connect(None, Some("cli".into())).await?;
    let stats = client.stats().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    } else if let serde_json::Value::Object(map) = serde_json::to_value(&stats)? {
        for (k, v) in map {
            println!("{k:<26} {v}");
        }
    }
    client.close().await;
    Ok(())
}

pub async fn plugins(
    remote: Remote,
    action: Option<super::PluginAction>,
    json: bool,
) -> anyhow::Result<()> {
    let (client, _, _) = remote.connect(None, Some("cli".into())).await?;
    let plugins = match &action {
        None => client.list_plugins().await?,
        Some(super::PluginAction::Reload { name }) => {
            client.reload_plugins(name.as_deref()).await?
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&plugins)?);
    } else if plugins.is_empty() {
        println!("no plugins loaded");
    } else {
        if action.is_some() {
            println!("reloaded:");
        }
        println!(
            "{:<16} {:<7} {:<12} {:>8} {:>8} {:>10}  imports",
            "name", "world", "hash", "calls", "failures", "time_us"
        );
        for p in &plugins {
            println!(
                "{:<16} {:<7} {:<12} {:>8} {:>8} {:>10}  {}",
                p.name,
                p.world,
                &p.hash[..12.min(p.hash.len())],
                p.calls,
                p.failures,
                p.time_us,
                p.imports.join(",")
            );
        }
    }
    client.close().await;
    Ok(())
}
