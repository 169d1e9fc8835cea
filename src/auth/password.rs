//! Staff passwords, hashed with Argon2id (the crate's recommended parameters).
//! Both functions are CPU-heavy on purpose: call them from a blocking thread.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

/// Longest staff username; a longer one names no account, so sign-in refuses
/// it without looking it up or counting it.
pub const MAX_USERNAME_CHARS: usize = 64;

/// A username staff can be given: 1 to [`MAX_USERNAME_CHARS`] characters, no
/// spaces or control characters (it is typed at sign-in and shown in logs).
pub fn check_username(username: &str) -> Result<(), String> {
    let chars = username.chars().count();
    if chars == 0 || chars > MAX_USERNAME_CHARS {
        return Err(format!(
            "a username has 1 to {MAX_USERNAME_CHARS} characters"
        ));
    }
    if username
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("a username has no spaces or control characters".into());
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| format!("cannot hash password: {e}"))
}

/// `None` as the stored hash still costs a full verification, so that an unknown
/// username takes as long to refuse as a wrong password.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    // A valid hash of a random string nobody knows.
    const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$UUfZ3bTn6Jsd2lxQJfj5HhtWNN0OrTqv62eonW3+3L0";
    let argon = Argon2::default();
    match stored {
        Some(hash) => argon.verify_password(password.as_bytes(), hash).is_ok(),
        None => {
            let _ = argon.verify_password(password.as_bytes(), DECOY);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&a)));
        assert!(!verify_password("wrong horse", Some(&a)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a hash")));
    }

    #[test]
    fn usernames_are_short_printable_words() {
        for good in [
            "admin",
            "zhang.wei",
            "张伟",
            &"a".repeat(MAX_USERNAME_CHARS),
        ] {
            assert_eq!(check_username(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "zhang wei",
            "tab\there",
            "new\nline",
            &"a".repeat(MAX_USERNAME_CHARS + 1),
        ] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
    }
}
