//! Who may connect: the configured users (id, name, E.164 numbers, token
//! hash) and the admin credentials, with lookup by name, UUID or number.
//!
//! Tokens are never stored: only `sha256:<hex>` digests. A presented token is
//! hashed and looked up by digest, so comparison time does not depend on how
//! much of a stored secret matched.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::wire::PartyRef;

/// A configured user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub name: String,
    pub numbers: Vec<String>,
}

impl User {
    pub fn party_ref(&self) -> PartyRef {
        PartyRef {
            id: self.id,
            name: self.name.clone(),
        }
    }
}

/// What a token proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    User(Uuid),
    Admin,
}

/// Digest of a bearer token, as stored in the config.
pub type TokenDigest = [u8; 32];

/// A token digest as read from the config (`sha256:<hex>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDigestCfg(pub TokenDigest);

/// Hashes a token into its config form, `sha256:<64 hex digits>`.
pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex::encode(digest(token)))
}

/// Parses the config form of a token hash.
pub fn parse_token_hash(text: &str) -> Result<TokenDigest, String> {
    let hex_part = text.strip_prefix("sha256:").ok_or_else(|| {
        "token hash must start with `sha256:` (see `callswitch hash-token`)".to_string()
    })?;
    let bytes = hex::decode(hex_part).map_err(|e| format!("token hash is not hex: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "token hash must be 32 bytes (64 hex digits)".to_string())
}

fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// Users and credentials, indexed for the switch's lookups.
#[derive(Debug, Default, Clone)]
pub struct Directory {
    users: HashMap<Uuid, User>,
    by_name: HashMap<String, Uuid>,
    by_number: HashMap<String, Uuid>,
    by_token: HashMap<TokenDigest, Identity>,
}

/// A directory that cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DirectoryError {
    #[error("user id {0} appears twice")]
    DuplicateId(Uuid),
    #[error("user name `{0}` appears twice")]
    DuplicateName(String),
    #[error("number {0} belongs to two users")]
    DuplicateNumber(String),
    #[error("two credentials share one token")]
    DuplicateToken,
}

impl Directory {
    /// Adds a user with the digest of their token.
    pub fn add_user(&mut self, user: User, token: TokenDigest) -> Result<(), DirectoryError> {
        if self.users.contains_key(&user.id) {
            return Err(DirectoryError::DuplicateId(user.id));
        }
        if self.by_name.contains_key(&user.name) {
            return Err(DirectoryError::DuplicateName(user.name));
        }
        if let Some(n) = user
            .numbers
            .iter()
            .find(|n| self.by_number.contains_key(*n))
        {
            return Err(DirectoryError::DuplicateNumber(n.clone()));
        }
        if self.by_token.contains_key(&token) {
            return Err(DirectoryError::DuplicateToken);
        }
        self.by_token.insert(token, Identity::User(user.id));
        self.by_name.insert(user.name.clone(), user.id);
        for n in &user.numbers {
            self.by_number.insert(n.clone(), user.id);
        }
        self.users.insert(user.id, user);
        Ok(())
    }

    /// Adds an admin credential.
    pub fn add_admin(&mut self, token: TokenDigest) -> Result<(), DirectoryError> {
        if self.by_token.contains_key(&token) {
            return Err(DirectoryError::DuplicateToken);
        }
        self.by_token.insert(token, Identity::Admin);
        Ok(())
    }

    /// Who a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        self.by_token.get(&digest(token)).copied()
    }

    /// Finds a user by UUID, name or E.164 number.
    pub fn resolve(&self, target: &str) -> Option<&User> {
        let target = target.trim();
        let id = Uuid::parse_str(target)
            .ok()
            .filter(|id| self.users.contains_key(id))
            .or_else(|| self.by_name.get(target).copied())
            .or_else(|| self.by_number.get(target).copied())?;
        self.users.get(&id)
    }

    pub fn user(&self, id: &Uuid) -> Option<&User> {
        self.users.get(id)
    }

    /// Users sorted by name, for stable listings.
    pub fn users(&self) -> Vec<&User> {
        let mut all: Vec<&User> = self.users.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User {
            id: Uuid::from_u128(1),
            name: "alice".into(),
            numbers: vec!["+15550101".into()],
        }
    }

    #[test]
    fn resolves_by_name_id_and_number() {
        let mut d = Directory::default();
        d.add_user(alice(), digest("a")).unwrap();
        assert_eq!(d.resolve("alice").unwrap().name, "alice");
        assert_eq!(d.resolve("+15550101").unwrap().name, "alice");
        assert_eq!(
            d.resolve(&Uuid::from_u128(1).to_string()).unwrap().name,
            "alice"
        );
        assert!(d.resolve("bob").is_none());
        assert_eq!(
            d.authenticate("a"),
            Some(Identity::User(Uuid::from_u128(1)))
        );
        assert_eq!(d.authenticate("b"), None);
    }

    #[test]
    fn duplicates_are_refused() {
        let mut d = Directory::default();
        d.add_user(alice(), digest("a")).unwrap();
        let mut other = alice();
        other.id = Uuid::from_u128(2);
        assert_eq!(
            d.add_user(other.clone(), digest("b")),
            Err(DirectoryError::DuplicateName("alice".into()))
        );
        other.name = "al".into();
        assert_eq!(
            d.add_user(other, digest("b")),
            Err(DirectoryError::DuplicateNumber("+15550101".into()))
        );
        assert_eq!(
            d.add_admin(digest("a")),
            Err(DirectoryError::DuplicateToken)
        );
    }

    #[test]
    fn token_hash_round_trip() {
        let h = hash_token("s3cret");
        assert_eq!(parse_token_hash(&h).unwrap(), digest("s3cret"));
        assert!(parse_token_hash("md5:00").is_err());
        assert!(parse_token_hash("sha256:zz").is_err());
        assert!(parse_token_hash("sha256:00").is_err());
    }
}
