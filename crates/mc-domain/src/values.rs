//! Parse-don't-validate value types: once you hold an `Email`, it is a valid email.
//!
//! Each type deserializes from a string and rejects bad input with a message that the
//! JSON extractor reports against the field's path.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident, $parse:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String)]
        pub struct $name(String);

        impl $name {
            /// The validated string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                $parse(&raw).map(Self)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = String;
            fn try_from(raw: &str) -> Result<Self, Self::Error> {
                $parse(raw).map(Self)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn parse_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    if email.len() < 3 || email.len() > 254 {
        return Err("must be between 3 and 254 characters".into());
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces".into());
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.') =>
        {
            Ok(email)
        }
        _ => Err("must be an email address like name@example.com".into()),
    }
}

fn parse_slug(raw: &str) -> Result<String, String> {
    let slug = raw.trim().to_owned();
    let valid_chars = slug
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !(2..=64).contains(&slug.len()) {
        Err("must be between 2 and 64 characters".into())
    } else if !valid_chars {
        Err("may contain only lowercase letters, digits and '-'".into())
    } else if slug.starts_with('-') || slug.ends_with('-') {
        Err("must not start or end with '-'".into())
    } else {
        Ok(slug)
    }
}

fn parse_username(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_lowercase();
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !(3..=64).contains(&name.len()) {
        Err("must be between 3 and 64 characters".into())
    } else if !valid_chars {
        Err("may contain only letters, digits, '_', '.' and '-'".into())
    } else {
        Ok(name)
    }
}

fn parse_display_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_owned();
    if name.is_empty() {
        Err("must not be empty".into())
    } else if name.chars().count() > 128 {
        Err("must be at most 128 characters".into())
    } else if has_control_chars(&name) {
        Err("must not contain control characters".into())
    } else {
        Ok(name)
    }
}

fn parse_phone(raw: &str) -> Result<String, String> {
    let phone = raw.trim().to_owned();
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let valid_chars = phone
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'));
    if !valid_chars || !(5..=20).contains(&digits) || phone.len() > 32 {
        Err("must be a phone number of 5 to 20 digits".into())
    } else {
        Ok(phone)
    }
}

fn parse_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().to_owned();
    if trimmed.len() > 512 {
        return Err("must be at most 512 characters".into());
    }
    match url::Url::parse(&trimmed) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(trimmed),
        _ => Err("must be an http(s) URL".into()),
    }
}

string_value!(
    /// A lowercased, syntactically valid email address.
    Email, parse_email
);
string_value!(
    /// A URL-safe identifier: 2-64 of `a-z`, `0-9`, `-`, not starting or ending with `-`.
    Slug, parse_slug
);
string_value!(
    /// An H5 username: 3-64 of letters, digits, `_`, `.`, `-`; stored lowercased.
    Username, parse_username
);
string_value!(
    /// A human-readable name: 1-128 characters, trimmed, no control characters.
    DisplayName, parse_display_name
);
string_value!(
    /// A phone number.
    Phone, parse_phone
);
string_value!(
    /// An http(s) URL of at most 512 characters.
    HttpUrl, parse_url
);

/// A new password that meets the policy (8-256 characters). Never logged or serialized.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String")]
#[schema(value_type = String, format = Password)]
pub struct NewPassword(Secret);

impl NewPassword {
    /// The password text, for hashing.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

impl TryFrom<String> for NewPassword {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        let chars = raw.chars().count();
        if raw.trim().is_empty() {
            Err("must not be empty".into())
        } else if chars < 8 {
            Err("must be at least 8 characters".into())
        } else if chars > 256 {
            Err("must be at most 256 characters".into())
        } else {
            Ok(Self(Secret::new(raw)))
        }
    }
}

/// A password presented at login: any non-empty string up to 1024 bytes (the policy is
/// enforced when passwords are set, not when they are checked).
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String")]
#[schema(value_type = String, format = Password)]
pub struct PresentedPassword(Secret);

impl PresentedPassword {
    /// The password text, for verification.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl fmt::Debug for PresentedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PresentedPassword(***)")
    }
}

impl TryFrom<String> for PresentedPassword {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        if raw.is_empty() {
            Err("must not be empty".into())
        } else if raw.len() > 1024 {
            Err("must be at most 1024 bytes".into())
        } else {
            Ok(Self(Secret::new(raw)))
        }
    }
}

/// For PATCH bodies: distinguishes an absent field (`None`) from an explicit `null`
/// (`Some(None)`). Use with `#[serde(default, deserialize_with = "values::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Free text up to a limit, trimmed; empty after trimming is rejected.
pub fn bounded_text(raw: &str, max_chars: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() {
        Err("must not be empty".into())
    } else if text.chars().count() > max_chars {
        Err(format!("must be at most {max_chars} characters"))
    } else {
        Ok(text.to_owned())
    }
}

fn parse_title(raw: &str) -> Result<String, String> {
    let text = bounded_text(raw, 500)?;
    if has_control_chars(&text) {
        Err("must not contain control characters".into())
    } else {
        Ok(text)
    }
}

fn parse_long_text(raw: &str) -> Result<String, String> {
    bounded_text(raw, 50_000)
}

fn parse_comment(raw: &str) -> Result<String, String> {
    bounded_text(raw, 20_000)
}

fn parse_color(raw: &str) -> Result<String, String> {
    let c = raw.trim();
    if c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit()) {
        Ok(c.to_lowercase())
    } else {
        Err("must be a hex color like #3b82f6".into())
    }
}

string_value!(
    /// A title: 1-500 characters, trimmed, single line.
    Title, parse_title
);
string_value!(
    /// Long free text (descriptions): 1-50,000 characters.
    LongText, parse_long_text
);
string_value!(
    /// A comment body: 1-20,000 characters.
    CommentBody, parse_comment
);
string_value!(
    /// A `#rrggbb` color.
    Color, parse_color
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::try_from(" Admin@Example.COM ").unwrap().as_str(),
            "admin@example.com"
        );
        for bad in [
            "", "no-at", "a@b", "a@@b.c", "a b@c.d", "@x.io", "a@.io", "a@io.",
        ] {
            assert!(Email::try_from(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn slugs() {
        assert!(Slug::try_from("demo").is_ok());
        assert!(Slug::try_from("acme-2").is_ok());
        for bad in ["a", "Demo", "-x", "x-", "a_b", &"x".repeat(65)] {
            assert!(Slug::try_from(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn usernames_and_names() {
        assert_eq!(
            Username::try_from("Demo-User").unwrap().as_str(),
            "demo-user"
        );
        assert!(Username::try_from("ab").is_err());
        assert!(Username::try_from("a b c").is_err());
        assert!(DisplayName::try_from("  ").is_err());
        assert!(DisplayName::try_from("x\u{0007}").is_err());
        assert!(DisplayName::try_from("x".repeat(129)).is_err());
        assert!(DisplayName::try_from("张三").is_ok());
    }

    #[test]
    fn passwords() {
        assert!(NewPassword::try_from(String::new()).is_err());
        assert!(NewPassword::try_from("short".to_owned()).is_err());
        assert!(NewPassword::try_from("        ".to_owned()).is_err());
        let ok = NewPassword::try_from("correct horse".to_owned()).unwrap();
        assert_eq!(format!("{ok:?}"), "NewPassword(***)");
        assert!(PresentedPassword::try_from(String::new()).is_err());
        assert!(PresentedPassword::try_from("x".to_owned()).is_ok());
    }

    #[test]
    fn phones_and_urls() {
        assert!(Phone::try_from("+86 138-0000-0000").is_ok());
        assert!(Phone::try_from("call me").is_err());
        assert!(HttpUrl::try_from("https://cdn.example.com/a.png").is_ok());
        assert!(HttpUrl::try_from("javascript:alert(1)").is_err());
    }
}
