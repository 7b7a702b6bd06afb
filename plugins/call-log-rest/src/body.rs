//! Reading the `createCall` body shallowly: the members the API knows are
//! kept (scalars as they are, an array or object only as its kind), and
//! everything else is checked for syntax and skipped without being built.
//!
//! A `serde_json::Value` tree costs far more than its text: a 600 KiB
//! array of numbers (well under the host's 1 MiB body cap) takes over
//! 16 MiB, the plugin's memory cap, and an instance that runs out of
//! memory is thrown away with every device it had open, ending every call
//! the API placed. Read this way, a body costs memory in proportion to
//! the values the API uses, never to how many elements it packs in.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Most contacts `invitedContacts` may hold (a call has far fewer
/// parties; the switch refuses more than its `max_participants`).
pub const MAX_CONTACTS: usize = 1000;

/// The top-level members of a `createCall` body that are read (besides
/// `invitedContacts`).
const BODY_MEMBERS: &[&str] = &[
    "callTitle",
    "callReason",
    "callType",
    "invitedTeams",
    "joinAnonymousAllowed",
    "informOthersDirectly",
    "plannedDateTime",
    "creatorUser",
];

/// The members of a CallLogContact that are read.
const CONTACT_MEMBERS: &[&str] = &[
    "id",
    "displayName",
    "domain",
    "email",
    "phoneNumber",
    "userDbId",
    "userId",
];

/// A JSON value read shallowly.
#[derive(Clone, Debug, PartialEq)]
pub enum Shallow {
    Null,
    Bool(bool),
    /// A number: its value when it is an integer that fits an `i64`, and
    /// its text.
    Number(Option<i64>, String),
    String(String),
    /// An array, with its number of elements (not kept).
    Array(usize),
    /// An object (its members not kept).
    Object,
}

impl Shallow {
    /// The JSON type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Shallow::Null => "null",
            Shallow::Bool(_) => "a boolean",
            Shallow::Number(..) => "a number",
            Shallow::String(_) => "a string",
            Shallow::Array(_) => "an array",
            Shallow::Object => "an object",
        }
    }
}

/// The read members of an object, by name (the last of a name given twice).
pub type Fields = BTreeMap<String, Shallow>;

/// One element of `invitedContacts`.
#[derive(Clone, Debug, PartialEq)]
pub enum ContactItem {
    Object(Fields),
    Other(Shallow),
}

/// `invitedContacts` as given.
#[derive(Clone, Debug, PartialEq)]
pub enum ContactList {
    Items(Vec<ContactItem>),
    /// An array of more than [`MAX_CONTACTS`] elements: how many.
    TooMany(usize),
    Other(Shallow),
}

/// A `createCall` body.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// An object: its read members, and `invitedContacts` unless absent
    /// or `null`.
    Object {
        fields: Fields,
        contacts: Option<ContactList>,
    },
    Other(Shallow),
}

/// Parses a body; the error is serde_json's (a syntax error).
pub fn parse(body: &[u8]) -> Result<Body, serde_json::Error> {
    serde_json::from_slice(body)
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<usize, A::Error> {
    let mut n = 0;
    while seq.next_element::<IgnoredAny>()?.is_some() {
        n += 1;
    }
    Ok(n)
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The members of `map` named in `known`, read shallowly.
fn known_members<'de, A: MapAccess<'de>>(map: &mut A, known: &[&str]) -> Result<Fields, A::Error> {
    let mut fields = Fields::new();
    while let Some(key) = map.next_key::<String>()? {
        if known.contains(&key.as_str()) {
            let value = map.next_value::<Shallow>()?;
            fields.insert(key, value);
        } else {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(fields)
}

struct ShallowVisitor;

impl<'de> Visitor<'de> for ShallowVisitor {
    type Value = Shallow;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Shallow, E> {
        Ok(Shallow::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Shallow, E> {
        Ok(Shallow::Number(Some(v), v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Shallow, E> {
        Ok(Shallow::Number(i64::try_from(v).ok(), v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Shallow, E> {
        let text = serde_json::Number::from_f64(v).map_or_else(|| v.to_string(), |n| n.to_string());
        Ok(Shallow::Number(None, text))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Shallow, E> {
        Ok(Shallow::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Shallow, E> {
        Ok(Shallow::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Shallow, E> {
        Ok(Shallow::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Shallow, A::Error> {
        drain_seq(seq).map(Shallow::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shallow, A::Error> {
        drain_map(map).map(|()| Shallow::Object)
    }
}

impl<'de> Deserialize<'de> for Shallow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Shallow, D::Error> {
        d.deserialize_any(ShallowVisitor)
    }
}

/// A visitor's scalar methods, read as [`Shallow`] and wrapped in `$wrap`.
macro_rules! scalars_as {
    ($wrap:expr) => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            ShallowVisitor.visit_bool(v).map($wrap)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            ShallowVisitor.visit_i64(v).map($wrap)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            ShallowVisitor.visit_u64(v).map($wrap)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            ShallowVisitor.visit_f64(v).map($wrap)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            ShallowVisitor.visit_str(v).map($wrap)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            ShallowVisitor.visit_unit().map($wrap)
        }
    };
}

struct ContactItemVisitor;

impl<'de> Visitor<'de> for ContactItemVisitor {
    type Value = ContactItem;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a CallLogContact")
    }
    scalars_as!(ContactItem::Other);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ContactItem, A::Error> {
        ShallowVisitor.visit_seq(seq).map(ContactItem::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ContactItem, A::Error> {
        known_members(&mut map, CONTACT_MEMBERS).map(ContactItem::Object)
    }
}

impl<'de> Deserialize<'de> for ContactItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ContactItem, D::Error> {
        d.deserialize_any(ContactItemVisitor)
    }
}

struct ContactListVisitor;

impl<'de> Visitor<'de> for ContactListVisitor {
    type Value = ContactList;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of CallLogContacts")
    }
    scalars_as!(ContactList::Other);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ContactList, A::Error> {
        let mut items = Vec::new();
        while items.len() < MAX_CONTACTS {
            match seq.next_element::<ContactItem>()? {
                Some(item) => items.push(item),
                None => return Ok(ContactList::Items(items)),
            }
        }
        let more = drain_seq(seq)?;
        if more == 0 {
            Ok(ContactList::Items(items))
        } else {
            Ok(ContactList::TooMany(MAX_CONTACTS + more))
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ContactList, A::Error> {
        ShallowVisitor.visit_map(map).map(ContactList::Other)
    }
}

impl<'de> Deserialize<'de> for ContactList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ContactList, D::Error> {
        d.deserialize_any(ContactListVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    scalars_as!(Body::Other);
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Body, A::Error> {
        ShallowVisitor.visit_seq(seq).map(Body::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut fields = Fields::new();
        let mut contacts = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "invitedContacts" {
                contacts = match map.next_value::<ContactList>()? {
                    ContactList::Other(Shallow::Null) => None,
                    list => Some(list),
                };
            } else if BODY_MEMBERS.contains(&key.as_str()) {
                let value = map.next_value::<Shallow>()?;
                fields.insert(key, value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Body::Object { fields, contacts })
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        d.deserialize_any(BodyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &str) -> (Fields, Option<ContactList>) {
        match parse(body.as_bytes()).unwrap() {
            Body::Object { fields, contacts } => (fields, contacts),
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn keeps_known_members_shallowly_and_skips_the_rest() {
        let (f, c) = fields(
            r#"{"callType":"SFU","callTitle":{"a":[1,2]},"invitedTeams":[1,[2],{}],
                "creatorUser":12,"plannedDateTime":null,"unknown":[[[1]],{"x":"y"}],
                "informOthersDirectly":true,"callReason":1.5,
                "invitedContacts":[{"userId":"bob","extra":[1],"userDbId":-9},"x",[1,2]]}"#,
        );
        assert_eq!(f["callType"], Shallow::String("SFU".into()));
        assert_eq!(f["callTitle"], Shallow::Object);
        assert_eq!(f["invitedTeams"], Shallow::Array(3));
        assert_eq!(f["creatorUser"], Shallow::Number(Some(12), "12".into()));
        assert_eq!(f["plannedDateTime"], Shallow::Null);
        assert_eq!(f["informOthersDirectly"], Shallow::Bool(true));
        assert_eq!(f["callReason"], Shallow::Number(None, "1.5".into()));
        assert!(!f.contains_key("unknown"));
        let Some(ContactList::Items(items)) = c else {
            panic!("contacts")
        };
        let mut bob = Fields::new();
        bob.insert("userId".into(), Shallow::String("bob".into()));
        bob.insert("userDbId".into(), Shallow::Number(Some(-9), "-9".into()));
        assert_eq!(
            items,
            vec![
                ContactItem::Object(bob),
                ContactItem::Other(Shallow::String("x".into())),
                ContactItem::Other(Shallow::Array(2)),
            ]
        );
    }

    #[test]
    fn numbers_that_are_no_i64() {
        let (f, _) = fields(r#"{"creatorUser":18446744073709551615,"callTitle":8.0}"#);
        assert_eq!(
            f["creatorUser"],
            Shallow::Number(None, "18446744073709551615".into())
        );
        assert_eq!(f["callTitle"], Shallow::Number(None, "8.0".into()));
    }

    #[test]
    fn contacts_null_absent_or_not_an_array() {
        assert_eq!(fields(r#"{"invitedContacts":null}"#).1, None);
        assert_eq!(fields(r#"{}"#).1, None);
        assert_eq!(
            fields(r#"{"invitedContacts":{"userId":"bob"}}"#).1,
            Some(ContactList::Other(Shallow::Object))
        );
        assert_eq!(
            fields(r#"{"invitedContacts":"bob"}"#).1,
            Some(ContactList::Other(Shallow::String("bob".into())))
        );
    }

    #[test]
    fn too_many_contacts_are_counted_not_kept() {
        let list = vec!["{}"; MAX_CONTACTS].join(",");
        let (_, c) = fields(&format!(r#"{{"invitedContacts":[{list}]}}"#));
        assert!(matches!(c, Some(ContactList::Items(items)) if items.len() == MAX_CONTACTS));
        let list = vec!["{}"; MAX_CONTACTS + 5].join(",");
        let (_, c) = fields(&format!(r#"{{"invitedContacts":[{list}]}}"#));
        assert_eq!(c, Some(ContactList::TooMany(MAX_CONTACTS + 5)));
    }

    #[test]
    fn the_last_of_a_member_given_twice_wins() {
        let (f, c) = fields(
            r#"{"callType":"MESH","callType":"SFU","invitedContacts":[{}],"invitedContacts":null}"#,
        );
        assert_eq!(f["callType"], Shallow::String("SFU".into()));
        assert_eq!(c, None);
    }

    #[test]
    fn other_bodies_and_syntax_errors() {
        assert_eq!(parse(b"[1,[2]]").unwrap(), Body::Other(Shallow::Array(2)));
        assert_eq!(parse(b"null").unwrap(), Body::Other(Shallow::Null));
        assert_eq!(
            parse(b"\"x\"").unwrap(),
            Body::Other(Shallow::String("x".into()))
        );
        assert!(parse(b"{").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(br#"{"unknown":[1,}"#).is_err());
        assert!(parse(br#"{} x"#).is_err());
    }
}
