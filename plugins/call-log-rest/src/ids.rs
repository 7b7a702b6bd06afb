//! Identifiers: call ids (UUID v4, generated and checked here) and the
//! `db_ids` setting that maps the vendor's integer user ids ("database
//! ids") to switch users.

use std::collections::BTreeMap;

/// The SplitMix64 finaliser: a cheap, well-mixing 64-bit hash step.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A well-formed, lower-case UUID version 4 (RFC 9562 variant) derived
/// from `inputs` (the wall clock, the monotonic clock, counters...): the
/// same inputs give the same UUID, any change gives an unrelated one.
pub fn uuid_v4(inputs: &[u64]) -> String {
    let mut h = 0x6a09_e667_f3bc_c908_u64;
    for &x in inputs {
        h = mix(h ^ x);
    }
    let hi = (mix(h ^ 0x5555_5555) & !0xf000) | 0x4000;
    let lo = (mix(h ^ 0xaaaa_aaaa) & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// `text` as a canonical lower-case hyphenated UUID, or `None` when it is
/// not one (8-4-4-4-12 hex digits, either case).
pub fn parse_uuid(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    for (i, &b) in bytes.iter().enumerate() {
        let ok = if matches!(i, 8 | 13 | 18 | 23) {
            b == b'-'
        } else {
            b.is_ascii_hexdigit()
        };
        if !ok {
            return None;
        }
    }
    Some(text.to_ascii_lowercase())
}

/// The `db_ids` setting: the vendor's integer user ids and the switch
/// target (user name, UUID or E.164 number) each stands for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbIds {
    entries: BTreeMap<i64, String>,
}

impl DbIds {
    /// Parses `8=alice,9=bob,12=carol`. Also accepts what the switch's
    /// config gives for a TOML inline table or array (`{ 8 = "alice" }`,
    /// `["8=alice", "9=bob"]`): braces, brackets and quotes are ignored.
    /// Returns the map and a description of each entry it skipped.
    pub fn parse(text: &str) -> (DbIds, Vec<String>) {
        let mut entries = BTreeMap::new();
        let mut skipped = Vec::new();
        let inner = text
            .trim()
            .trim_start_matches(['{', '['])
            .trim_end_matches(['}', ']']);
        for raw in inner.split(',') {
            let entry: String = raw.chars().filter(|c| *c != '"' && *c != '\'').collect();
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let parsed = entry.split_once('=').and_then(|(k, v)| {
                let id = k.trim().parse::<i64>().ok()?;
                let target = v.trim();
                (!target.is_empty()).then(|| (id, target.to_string()))
            });
            match parsed {
                Some((id, target)) => {
                    entries.insert(id, target);
                }
                None => skipped.push(format!("`{entry}` is not `<integer>=<user>`")),
            }
        }
        (DbIds { entries }, skipped)
    }

    /// The target that database id `id` stands for.
    pub fn target(&self, id: i64) -> Option<&str> {
        self.entries.get(&id).map(String::as_str)
    }

    /// The database id of `user`: the smallest id whose target is the
    /// user's name, id or one of its numbers; 0 when there is none.
    pub fn db_id_of(&self, user_id: &str, name: &str, numbers: &[String]) -> i64 {
        self.entries
            .iter()
            .find(|(_, t)| {
                t.as_str() == name
                    || t.eq_ignore_ascii_case(user_id)
                    || numbers.iter().any(|n| n == t.as_str())
            })
            .map_or(0, |(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_uuids_are_v4_and_distinct() {
        let a = uuid_v4(&[1_700_000_000_000, 5, 1]);
        let b = uuid_v4(&[1_700_000_000_000, 5, 2]);
        assert_ne!(a, b);
        for u in [&a, &b] {
            assert_eq!(parse_uuid(u).as_deref(), Some(u.as_str()));
            assert_eq!(&u[14..15], "4", "{u}");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
            assert_eq!(u.to_ascii_lowercase(), *u);
        }
        assert_eq!(a, uuid_v4(&[1_700_000_000_000, 5, 1]));
    }

    #[test]
    fn uuid_parsing() {
        assert_eq!(
            parse_uuid("E76E1D8A-8267-4BD4-BA5C-00AB76743E74").as_deref(),
            Some("e76e1d8a-8267-4bd4-ba5c-00ab76743e74")
        );
        assert_eq!(parse_uuid("e76e1d8a82674bd4ba5c00ab76743e74"), None);
        assert_eq!(parse_uuid("e76e1d8a-8267-4bd4-ba5c-00ab76743e7g"), None);
        assert_eq!(parse_uuid("e76e1d8a-8267-4bd4-ba5c_00ab76743e74"), None);
        assert_eq!(parse_uuid(""), None);
    }

    #[test]
    fn db_ids_plain_and_toml_forms() {
        let (ids, skipped) = DbIds::parse("8=alice, 9 = bob ,12=+15550102,x=y,13=");
        assert_eq!(ids.target(8), Some("alice"));
        assert_eq!(ids.target(9), Some("bob"));
        assert_eq!(ids.target(12), Some("+15550102"));
        assert_eq!(ids.target(10), None);
        assert_eq!(skipped.len(), 2);
        let (table, skipped) = DbIds::parse(r#"{ 8 = "alice", 9 = "bob" }"#);
        assert!(skipped.is_empty());
        assert_eq!(table.target(9), Some("bob"));
        let (array, _) = DbIds::parse(r#"["8=alice", "9=bob"]"#);
        assert_eq!(array.target(8), Some("alice"));
    }

    #[test]
    fn db_id_of_matches_name_id_or_number() {
        let (ids, _) = DbIds::parse("8=alice,9=5F1C5A1E-0000-4000-8000-000000000B0B,12=+15550103");
        assert_eq!(ids.db_id_of("x", "alice", &[]), 8);
        assert_eq!(
            ids.db_id_of("5f1c5a1e-0000-4000-8000-000000000b0b", "bob", &[]),
            9
        );
        assert_eq!(
            ids.db_id_of("c", "carol", &["+15550102".into(), "+15550103".into()]),
            12
        );
        assert_eq!(ids.db_id_of("d", "dave", &[]), 0);
    }
}
