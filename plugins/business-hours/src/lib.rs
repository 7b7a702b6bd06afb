//! `business-hours`: a policy plugin that redirects calls placed outside
//! business hours (e.g. to voicemail).
//!
//! Grants: `config`, `clock`.
//!
//! Settings:
//! - `open` (default `09:00`) and `close` (default `17:00`): local opening
//!   and closing times, `HH:MM`; `close` may be `24:00`. Open means
//!   `open <= now < close`. If `close` is before `open` the hours span
//!   midnight (`22:00`-`06:00`), counted from the day they start on. If
//!   `open` equals `close` the switch is always closed.
//! - `days` (default `mon,tue,wed,thu,fri`): comma-separated days it opens
//!   on: three-letter English day names, ranges such as `mon-fri`, or `*`
//!   for every day.
//! - `utc_offset_minutes` (default `0`): local time minus UTC, in minutes
//!   (`60` for UTC+1, `-300` for UTC-5). There is no daylight-saving rule.
//! - `redirect_to` (no default): the target (user name, id or E.164 number)
//!   to ring instead when closed. Without it calls are denied when closed.
//!
//! The time comes from the `clock` capability only, so tests choose the
//! outcome through the settings: `open = "00:00"`, `close = "00:00"` is
//! always closed; `open = "00:00"`, `close = "24:00"`, `days = "*"` is always
//! open.
//!
//! When closed, `on-dial` answers `redirect([redirect_to])`, unless a target
//! already is `redirect_to` (so the redirected call itself goes through).
//! Every other hook allows. A malformed setting makes the hook trap, so the
//! operator's `on_error` setting applies.

use std::sync::OnceLock;

wit_bindgen::generate!({ path: "../../wit", world: "policy" });

use callswitch::plugin::{clock, config};

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTES_PER_DAY: i64 = 24 * 60;

/// The opening hours; fixed while the plugin is loaded.
struct Hours {
    /// Minutes after local midnight.
    open: i64,
    close: i64,
    /// Indexed by weekday, Monday first.
    days: [bool; 7],
    utc_offset_minutes: i64,
    redirect_to: Option<String>,
}

impl Hours {
    fn get() -> &'static Hours {
        static HOURS: OnceLock<Hours> = OnceLock::new();
        HOURS.get_or_init(|| {
            let setting =
                |key: &str, default: &str| config::get(key).unwrap_or_else(|| default.into());
            Hours {
                open: parse_time("open", &setting("open", "09:00")),
                close: parse_time("close", &setting("close", "17:00")),
                days: parse_days(&setting("days", "mon,tue,wed,thu,fri")),
                utc_offset_minutes: setting("utc_offset_minutes", "0")
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| {
                        panic!("business-hours: `utc_offset_minutes` must be an integer")
                    }),
                redirect_to: config::get("redirect_to")
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
            }
        })
    }

    /// Whether the switch is open at `now_ms` (Unix epoch milliseconds).
    fn is_open(&self, now_ms: u64) -> bool {
        let local = (now_ms / 60_000) as i64 + self.utc_offset_minutes;
        let minute = local.rem_euclid(MINUTES_PER_DAY);
        // 1970-01-01 was a Thursday (index 3, Monday first).
        let today = (local.div_euclid(MINUTES_PER_DAY) + 3).rem_euclid(7) as usize;
        let yesterday = (today + 6) % 7;
        if self.open < self.close {
            self.days[today] && self.open <= minute && minute < self.close
        } else if self.open > self.close {
            (self.days[today] && minute >= self.open)
                || (self.days[yesterday] && minute < self.close)
        } else {
            false
        }
    }
}

/// Parses `HH:MM` (00:00 to 24:00) into minutes after midnight.
fn parse_time(key: &str, value: &str) -> i64 {
    let minutes = value
        .trim()
        .split_once(':')
        .filter(|(_, m)| m.len() == 2)
        .and_then(|(h, m)| {
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            ((0..24).contains(&h) && (0..60).contains(&m) || (h, m) == (24, 0))
                .then_some(h * 60 + m)
        });
    minutes.unwrap_or_else(|| panic!("business-hours: `{key}` must be a time HH:MM, not {value:?}"))
}

/// Parses a list such as `mon,wed-fri` or `*` into a set of weekdays.
fn parse_days(value: &str) -> [bool; 7] {
    let day = |name: &str| {
        let name = name.trim().to_ascii_lowercase();
        DAY_NAMES
            .iter()
            .position(|d| *d == name)
            .unwrap_or_else(|| panic!("business-hours: unknown day {name:?} in `days`"))
    };
    let mut days = [false; 7];
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item == "*" {
            days = [true; 7];
        } else if let Some((first, last)) = item.split_once('-') {
            let (mut d, last) = (day(first), day(last));
            days[d] = true;
            while d != last {
                d = (d + 1) % 7;
                days[d] = true;
            }
        } else {
            days[day(item)] = true;
        }
    }
    days
}

/// Whether `target` (a name, id or number) names `who`.
fn names(target: &str, who: &Identity) -> bool {
    who.name.eq_ignore_ascii_case(target)
        || who.id == target
        || who.numbers.iter().any(|n| n == target)
}

struct Plugin;

impl Guest for Plugin {
    fn on_connect(_client: Identity) -> ConnectVerdict {
        ConnectVerdict::Admit(None)
    }

    fn on_dial(_call: CallInfo, _caller: Identity, targets: Vec<Identity>) -> DialVerdict {
        let hours = Hours::get();
        if hours.is_open(clock::now_ms()) {
            return DialVerdict::Allow;
        }
        match &hours.redirect_to {
            Some(to) if targets.iter().any(|t| names(to, t)) => DialVerdict::Allow,
            Some(to) => DialVerdict::Redirect(vec![to.clone()]),
            None => DialVerdict::Deny("closed: outside business hours".into()),
        }
    }

    fn on_answer(_call: CallInfo, _answerer: Identity) -> Verdict {
        Verdict::Allow
    }

    fn on_transfer(_call: CallInfo, _from: Identity, _to: Identity) -> Verdict {
        Verdict::Allow
    }

    fn on_message(_sender: Identity, _recipient: Identity, _body: String) -> Verdict {
        Verdict::Allow
    }

    fn on_event(_call: CallInfo, _event: CallEvent) {}
}

export!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-23T10:00:00Z, a Monday.
    const MON_10_UTC: u64 = 1_795_428_000_000;
    const HOUR: u64 = 3_600_000;

    fn hours(open: &str, close: &str, days: &str, utc_offset_minutes: i64) -> Hours {
        Hours {
            open: parse_time("open", open),
            close: parse_time("close", close),
            days: parse_days(days),
            utc_offset_minutes,
            redirect_to: None,
        }
    }

    #[test]
    fn office_hours() {
        let h = hours("09:00", "17:00", "mon-fri", 0);
        assert!(h.is_open(MON_10_UTC));
        assert!(!h.is_open(MON_10_UTC + 7 * HOUR));
        assert!(!h.is_open(MON_10_UTC - 2 * HOUR));
        assert!(!h.is_open(MON_10_UTC - 24 * HOUR)); // Sunday
        assert!(!hours("09:00", "17:00", "mon-fri", 480).is_open(MON_10_UTC)); // 18:00 local
        assert!(hours("09:00", "17:00", "mon-fri", 360).is_open(MON_10_UTC)); // 16:00 local
        assert!(!hours("09:00", "17:00", "mon-fri", 420).is_open(MON_10_UTC)); // 17:00 local: closed
        assert!(!hours("09:00", "17:00", "mon-fri", -660).is_open(MON_10_UTC)); // Sunday 23:00 local
    }

    #[test]
    fn always_open_or_closed() {
        for t in [0, MON_10_UTC, MON_10_UTC + 13 * HOUR] {
            assert!(hours("00:00", "24:00", "*", 0).is_open(t));
            assert!(!hours("00:00", "00:00", "*", 0).is_open(t));
        }
    }

    #[test]
    fn overnight() {
        let h = hours("22:00", "06:00", "sun", 0);
        assert!(h.is_open(MON_10_UTC - 5 * HOUR)); // Monday 05:00, from Sunday night
        assert!(!h.is_open(MON_10_UTC + 12 * HOUR)); // Monday 22:00
    }

    #[test]
    fn day_lists() {
        assert_eq!(
            parse_days("sat-mon"),
            [true, false, false, false, false, true, true]
        );
        assert_eq!(
            parse_days("Mon, wed"),
            [true, false, true, false, false, false, false]
        );
    }
}
