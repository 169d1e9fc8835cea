//! Codes name reference data (units, zones, categories) in URLs, queue filters
//! and logs, so they keep to characters that need no escaping anywhere.

/// The rule as the API document states it; a test keeps the two equal.
pub const CODE_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

const MAX_CODE_CHARS: usize = 64;

/// What [`is_code`] holds, for refusals.
pub const CODE_RULE: &str = "a code of 1–64 letters, digits, '-' or '_'";

/// 1–64 ASCII letters, digits, `-` or `_`.
pub fn is_code(s: &str) -> bool {
    (1..=MAX_CODE_CHARS).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The category rule as the API document states it; a test keeps the two equal.
pub const CATEGORY_CODE_PATTERN: &str = "^[0-9]{2}([0-9]{2})?$";

/// What [`is_category_code`] holds, for refusals.
pub const CATEGORY_CODE_RULE: &str =
    "a category code is 2 digits (大类) or 4 digits (小类, its 大类's two then its own)";

/// A category code: a 大类 is 2 digits, a 小类 4 (its 大类's two, then its own).
pub fn is_category_code(s: &str) -> bool {
    matches!(s.len(), 2 | 4) && s.bytes().all(|b| b.is_ascii_digit())
}

/// A category code in its place: a 大类 (2 digits) has no parent; a 小类
/// (4 digits) begins with its 大类's code.
pub fn is_category_under(code: &str, parent: Option<&str>) -> bool {
    is_category_code(code)
        && match parent {
            None => code.len() == 2,
            Some(parent) => code.len() == 4 && parent.len() == 2 && code.starts_with(parent),
        }
}

/// The rule prefix as the API document states it; a test keeps the two equal.
pub const CATEGORY_PREFIX_PATTERN: &str = "^([0-9]{2}){0,2}$";

/// What a routing rule matches categories by: a category code (a 大类 also
/// covers its 小类), or empty for every category.
pub fn is_category_prefix(s: &str) -> bool {
    s.is_empty() || is_category_code(s)
}

/// The profile prefix as the API document states it; a test keeps the two equal.
pub const PROFILE_PREFIX_PATTERN: &str = r"^(\*|[0-9]{2}|[0-9]{4})$";

/// What a deadline profile matches categories by: a category code, or `*`.
pub fn is_profile_prefix(s: &str) -> bool {
    s == super::deadline::ANY_CATEGORY || is_category_code(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented `pattern` and the `rule` the code applies answer each
    /// input as `expected` says.
    fn pattern_is_rule(pattern: &str, rule: fn(&str) -> bool, cases: &[(&str, bool)]) {
        let regex = regex::Regex::new(pattern).unwrap();
        for &(input, expected) in cases {
            assert_eq!(rule(input), expected, "{input:?}");
            assert_eq!(regex.is_match(input), expected, "{pattern} on {input:?}");
        }
    }

    #[test]
    fn the_documented_pattern_accepts_exactly_the_codes() {
        let long = "A".repeat(64);
        let too_long = "A".repeat(65);
        pattern_is_rule(
            CODE_PATTERN,
            is_code,
            &[
                ("DEPT-CGJ", true),
                ("320582-C01", true),
                ("grid_team_7", true),
                (long.as_str(), true),
                ("", false),
                (too_long.as_str(), false),
                ("DEPT CGJ", false),
                ("玄武区", false),
                ("a%b", false),
                ("a\"b", false),
                ("DEPT-CGJ\n", false),
            ],
        );
    }

    #[test]
    fn a_category_sits_under_its_parent() {
        for (code, parent, fits) in [
            ("03", None, true),
            ("0301", Some("03"), true),
            ("0301", None, false),
            ("03", Some("03"), false),
            ("0401", Some("03"), false),
            ("0301", Some("0"), false),
            ("0301", Some("0301"), false),
            ("3", None, false),
        ] {
            assert_eq!(
                is_category_under(code, parent),
                fits,
                "{code} under {parent:?}"
            );
        }
    }

    #[test]
    fn the_documented_prefix_patterns_accept_exactly_the_prefixes() {
        // (input, a rule's prefix, a profile's prefix)
        let cases = [
            ("", true, false),
            ("*", false, true),
            ("03", true, true),
            ("0301", true, true),
            ("0", false, false),
            ("030", false, false),
            ("030101", false, false),
            ("03010101", false, false),
            ("**", false, false),
            (" 03", false, false),
            ("ab", false, false),
        ];
        let for_rule: Vec<(&str, bool)> = cases.iter().map(|&(i, r, _)| (i, r)).collect();
        let for_profile: Vec<(&str, bool)> = cases.iter().map(|&(i, _, p)| (i, p)).collect();
        pattern_is_rule(CATEGORY_PREFIX_PATTERN, is_category_prefix, &for_rule);
        pattern_is_rule(PROFILE_PREFIX_PATTERN, is_profile_prefix, &for_profile);
    }

    #[test]
    fn the_documented_category_pattern_accepts_exactly_the_category_codes() {
        pattern_is_rule(
            CATEGORY_CODE_PATTERN,
            is_category_code,
            &[
                ("04", true),
                ("0401", true),
                ("", false),
                ("4", false),
                ("040", false),
                ("04011", false),
                ("0a01", false),
                ("０４", false),
                (" 04", false),
                ("04\n", false),
            ],
        );
    }
}
