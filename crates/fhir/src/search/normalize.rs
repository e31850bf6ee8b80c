//! Normalisation shared by indexing and querying: both sides must agree byte for byte.

/// Longest name prefix indexed; longer query words are cut to this length.
pub const MAX_PREFIX: usize = 32;

/// Words of a human-text value: lower-cased, punctuation removed inside words
/// ("O'Brien" → "obrien"), split on whitespace and hyphens.
pub fn text_words(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || c == '-' || c == ',')
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Prefix term for a (normalised) word, capped at [`MAX_PREFIX`] characters.
pub fn prefix_term(word: &str) -> String {
    let capped: String = word.chars().take(MAX_PREFIX).collect();
    format!("p:{capped}")
}

/// Contact values (phone, e-mail) compared the way people write them: e-mail
/// case-insensitively, phone numbers by their digits alone.
pub fn contact_value(value: &str) -> String {
    let trimmed = value.trim();
    if trimmed.contains('@') {
        return trimmed.to_lowercase();
    }
    let phone_like = trimmed.chars().all(|c| c.is_ascii_digit() || " -+().".contains(c));
    if phone_like && trimmed.chars().any(|c| c.is_ascii_digit()) {
        return trimmed.chars().filter(char::is_ascii_digit).collect();
    }
    trimmed.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(text_words("  Daffy  O'Duck-Smith "), ["daffy", "oduck", "smith"]);
        assert_eq!(text_words("ÉLODIE"), ["élodie"]);
        assert!(text_words(" ' - ").is_empty());
    }

    #[test]
    fn contacts() {
        assert_eq!(contact_value("(555) 014-2"), "5550142");
        assert_eq!(contact_value("+1 555-0142"), "15550142");
        assert_eq!(contact_value(" Daffy@Example.ORG "), "daffy@example.org");
        assert_eq!(prefix_term(&"a".repeat(40)).len(), 2 + MAX_PREFIX);
    }
}
