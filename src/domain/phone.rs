//! Citizens sign in with a mainland mobile number. It is personal information
//! (PIPL): stored in one normal form, shown only masked.

use std::fmt;

/// A mainland China mobile number in E.164 form, `+86` and 11 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("phone must be a mainland mobile number: 11 digits starting with 1, optionally with +86")]
pub struct InvalidPhone;

/// The spellings [`Phone::parse`] accepts, as a regular expression for the API
/// document: an optional `+86`, `0086` or `86`, then a mobile number (`1`,
/// `3`–`9`, nine more digits), with spaces, dashes and brackets anywhere after
/// the `+`. A test keeps the two in agreement.
/// Whitespace is named character by character rather than as `\s`, whose
/// members differ between Rust, ECMA-262 (what OpenAPI tools use) and Python.
pub const PHONE_PATTERN: &str = r"^[ \t\n\r\u3000]*(\+[ ()-]*8[ ()-]*6|[ ()-]*(0[ ()-]*0[ ()-]*)?8[ ()-]*6)?[ ()-]*1[ ()-]*[3-9]([ ()-]*[0-9]){9}[ ()-]*[ \t\n\r\u3000]*$";

/// What may surround a number: ASCII blanks and the ideographic space a
/// Chinese keyboard types.
const SURROUNDING_BLANKS: [char; 5] = [' ', '\t', '\n', '\r', '\u{3000}'];

impl Phone {
    /// Accepts `13812345678`, `+86 138 1234 5678`, `0086-138-1234-5678`, `86…`.
    pub fn parse(input: &str) -> Result<Phone, InvalidPhone> {
        let trimmed = input.trim_matches(SURROUNDING_BLANKS);
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' => {}
                _ => return Err(InvalidPhone),
            }
        }
        let national = if plus {
            digits.strip_prefix("86").ok_or(InvalidPhone)?
        } else if let Some(national) = digits.strip_prefix("0086") {
            national
        } else if digits.len() == 13 {
            digits.strip_prefix("86").ok_or(InvalidPhone)?
        } else {
            &digits
        };
        let bytes = national.as_bytes();
        if bytes.len() != 11 || bytes[0] != b'1' || !(b'3'..=b'9').contains(&bytes[1]) {
            return Err(InvalidPhone);
        }
        Ok(Phone(format!("+86{national}")))
    }

    /// The stored form, `+8613812345678`. Never put this in a response.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// `+86 138****5678`: enough for a person to recognise their own number.
    pub fn masked(&self) -> String {
        let national = &self.0[3..];
        format!("+86 {}****{}", &national[..3], &national[7..])
    }

    /// Rebuilds from the stored form.
    pub fn from_stored(stored: &str) -> Result<Phone, InvalidPhone> {
        Phone::parse(stored)
    }
}

// Debug prints the masked form so a phone can never reach a log in clear.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_common_spellings() {
        for input in [
            "13812345678",
            "+8613812345678",
            "+86 138 1234 5678",
            "008613812345678",
            "8613812345678",
            " 138-1234-5678 ",
            "\u{3000}138 1234 5678\u{3000}",
        ] {
            let phone = Phone::parse(input).unwrap_or_else(|_| panic!("{input:?} should parse"));
            assert_eq!(phone.as_e164(), "+8613812345678", "{input:?}");
        }
    }

    #[test]
    fn rejects_non_mobile_numbers() {
        for input in [
            "",
            "12345",
            "1381234567",
            "138123456789",
            "+1 415 555 0100",
            "02512345678",
            "12012345678",
            "1381234567a",
            "+8623812345678",
            "１３８１２３４５６７８",
        ] {
            assert_eq!(Phone::parse(input), Err(InvalidPhone), "{input:?}");
        }
    }

    #[test]
    fn the_documented_pattern_accepts_exactly_what_parse_does() {
        let pattern = regex::Regex::new(PHONE_PATTERN).unwrap();
        let mut inputs = vec![
            "13812345678",
            "+8613812345678",
            "+86 138 1234 5678",
            "+ 86 (138) 1234-5678",
            "008613812345678",
            "00 86 138 1234 5678",
            "(86) 138 1234 5678",
            "8613812345678",
            " 138-1234-5678 ",
            "\t13812345678\n",
            "\u{3000}13812345678\u{3000}",
            "\u{feff}13812345678",
            "\u{85}13812345678",
            "\u{1c}13812345678",
            "\u{a0}13812345678",
            "13812345678\u{2028}",
            "",
            "+",
            "12345",
            "1381234567",
            "138123456789",
            "+1 415 555 0100",
            "+0086 13812345678",
            "(+86) 13812345678",
            "8686 13812345678",
            "0086 0086 13812345678",
            "02512345678",
            "12012345678",
            "1381234567a",
            "138 1234\t5678",
            "+8623812345678",
            "１３８１２３４５６７８",
        ];
        // Every prefix and every one-character deletion of the valid ones, so
        // the edges of each part are probed.
        let valid: Vec<String> = inputs
            .iter()
            .filter(|i| Phone::parse(i).is_ok())
            .map(|i| i.to_string())
            .collect();
        let mut variants = Vec::new();
        for v in &valid {
            for (i, _) in v.char_indices() {
                variants.push(v[..i].to_owned());
                let mut deleted = v.clone();
                deleted.remove(i);
                variants.push(deleted);
            }
        }
        inputs.extend(variants.iter().map(String::as_str));
        for input in inputs {
            assert_eq!(
                pattern.is_match(input),
                Phone::parse(input).is_ok(),
                "{input:?}"
            );
        }
    }

    #[test]
    fn masks_the_middle_four_digits() {
        let phone = Phone::parse("13812345678").unwrap();
        assert_eq!(phone.masked(), "+86 138****5678");
        assert_eq!(format!("{phone:?}"), "Phone(+86 138****5678)");
    }
}
