//! The plugin's settings (its `[plugin.config]` table), read once per
//! instance: the settings are fixed while the switch runs.
//!
//! - `operators`: the switch user names of the operator side, comma
//!   separated (`"bob,carol"`; a TOML array `["bob", "carol"]` is read the
//!   same way). A new session goes to the first of them who is online.
//! - `operator_name`: the `data.operator_name` added to `start`; by default
//!   the chosen operator's user name.

use crate::host::{Host, Level};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Operator user names, in the configured order, without duplicates.
    pub operators: Vec<String>,
    pub operator_name: Option<String>,
}

impl Settings {
    pub fn read<H: Host>(host: &H) -> Settings {
        let operators = host
            .config("operators")
            .map(|text| parse_names(&text))
            .unwrap_or_default();
        if operators.is_empty() {
            host.log(
                Level::Warn,
                "no `operators` configured: every voice session is refused",
            );
        }
        let operator_name = host
            .config("operator_name")
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty());
        Settings {
            operators,
            operator_name,
        }
    }

    /// Whether user `name` is on the operator side.
    pub fn is_operator(&self, name: &str) -> bool {
        self.operators.iter().any(|operator| operator == name)
    }
}

/// The names of a comma-separated list (brackets and quotes of a TOML
/// array rendered as text are dropped).
pub fn parse_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for part in text.split(',') {
        let name = part
            .trim()
            .trim_matches(|c: char| c == '[' || c == ']' || c.is_whitespace())
            .trim_matches(|c: char| c == '"' || c == '\'')
            .trim();
        if !name.is_empty() && !names.iter().any(|known| known == name) {
            names.push(name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_from_a_list_or_an_array() {
        assert_eq!(parse_names("bob,carol"), vec!["bob", "carol"]);
        assert_eq!(parse_names(" bob , carol ,,bob"), vec!["bob", "carol"]);
        assert_eq!(parse_names(r#"["bob", "carol"]"#), vec!["bob", "carol"]);
        assert_eq!(parse_names("['bob']"), vec!["bob"]);
        assert!(parse_names("").is_empty());
        assert!(parse_names("[]").is_empty());
    }
}
