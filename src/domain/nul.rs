//! The NUL character (U+0000): SQLite stores it in text and PostgreSQL cannot,
//! so anything a client or an admin sends is refused when it holds one, before
//! either database sees it, and both answer alike.

/// How a text carries its characters: JSON may also escape a NUL as `\u0000`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Plain,
}

/// Whether `text` holds a NUL: a raw one, or in JSON the escape `\u0000`
/// (`\\u0000` is a backslash and `u0000`, not a NUL; in plain text, such as
/// CSV, the six characters are just text).
pub fn holds_nul(text: &[u8], format: Format) -> bool {
    text.contains(&0) || (format == Format::Json && holds_escaped_nul(text))
}

fn holds_escaped_nul(json: &[u8]) -> bool {
    const ESCAPE: &[u8] = b"\\u0000";
    json.windows(ESCAPE.len()).enumerate().any(|(at, window)| {
        window == ESCAPE && json[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_nul_is_one_in_json_only_and_an_escaped_backslash_is_not_one() {
        assert!(holds_nul(br#"{"description":"a\u0000b"}"#, Format::Json));
        assert!(holds_nul(br#"{"u":"\\\u0000"}"#, Format::Json));
        assert!(!holds_nul(br#"{"path":"C:\\u0000"}"#, Format::Json));
        assert!(!holds_nul(br#"{"text":"\u0001"}"#, Format::Json));
        assert!(!holds_nul(br"CN,2027-01-01,holiday,\u0000", Format::Plain));
    }

    #[test]
    fn a_raw_nul_is_one_in_any_format() {
        for format in [Format::Json, Format::Plain] {
            assert!(holds_nul(b"CN,2027-01-01,holiday,\0", format));
            assert!(!holds_nul(b"CN,2027-01-01,holiday", format));
        }
    }
}
