//! How a client names the switch's certificate: the SHA-256 of its DER
//! bytes in lower-case hex. Clients pin this instead of trusting a CA.

use sha2::{Digest, Sha256};

/// The fingerprint of a DER certificate.
pub fn cert_fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Normalises a fingerprint typed by a person: colons and spaces removed,
/// lower case. `None` when it is not 64 hex digits.
pub fn normalize_fingerprint(text: &str) -> Option<String> {
    let clean: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    (clean.len() == 64 && clean.chars().all(|c| c.is_ascii_hexdigit())).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let f = cert_fingerprint(b"x");
        let colons: Vec<String> = f
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8(c.to_vec()).unwrap().to_uppercase())
            .collect();
        assert_eq!(normalize_fingerprint(&colons.join(":")), Some(f));
        assert_eq!(normalize_fingerprint("abc"), None);
    }
}
