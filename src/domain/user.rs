//! Users: roles, and the rules for employee numbers, phones, grades and passwords.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldErrors;

/// What a user may do; visibility follows the org tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 系统管理员: manages orgs and users in their subtree.
    Admin,
    /// 行领导: reads the subtree, assigns and reviews work.
    Leader,
    /// 客户经理: sees own data.
    Manager,
}

impl Role {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Leader => "leader",
            Self::Manager => "manager",
        }
    }

    /// Parses the stored string.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Admin, Self::Leader, Self::Manager]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Longest accepted password (argon2 input is bounded to keep hashing cheap for an attacker's junk).
pub const PASSWORD_MAX: usize = 128;
/// Shortest accepted password.
pub const PASSWORD_MIN: usize = 8;

/// Employee numbers: 2–32 ASCII letters, digits, `-` or `_`.
pub fn check_employee_no(errs: &mut FieldErrors, field: &str, v: &str) -> String {
    let v = v.trim();
    let ok = (2..=32).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        errs.add(
            field,
            "invalid_format",
            "2 to 32 letters, digits, '-' or '_'",
        );
    }
    v.to_owned()
}

/// Mobile phones: 11 digits starting with 1 (mainland China), optionally prefixed `+86`.
pub fn check_phone(errs: &mut FieldErrors, field: &str, v: &str) -> String {
    let v = v.trim();
    let digits = v.strip_prefix("+86").unwrap_or(v);
    let ok =
        digits.len() == 11 && digits.starts_with('1') && digits.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        errs.add(
            field,
            "invalid_format",
            "an 11-digit mainland mobile number",
        );
    }
    digits.to_owned()
}

/// Passwords: 8–128 characters with at least one letter and one digit.
pub fn check_password(errs: &mut FieldErrors, field: &str, v: &str) {
    let n = v.chars().count();
    if n < PASSWORD_MIN {
        errs.add(
            field,
            "too_short",
            format!("at least {PASSWORD_MIN} characters"),
        );
    } else if n > PASSWORD_MAX {
        errs.add(
            field,
            "too_long",
            format!("at most {PASSWORD_MAX} characters"),
        );
    } else if !(v.chars().any(char::is_alphabetic) && v.chars().any(|c| c.is_ascii_digit())) {
        errs.add(
            field,
            "weak_password",
            "needs at least one letter and one digit",
        );
    }
}

/// Masks a phone for lists: `13812345678` → `138****5678`.
pub fn mask_phone(phone: &str) -> String {
    mask_middle(phone, 3, 4, 7)
}

/// Keeps the first `head` and the last `tail` characters of `s` and stars the rest; shorter than
/// `min_len` characters, all of it is starred. (Lists mask tens of values per row: no temporary strings.)
pub fn mask_middle(s: &str, head: usize, tail: usize, min_len: usize) -> String {
    let n = s.chars().count();
    let mut out = String::with_capacity(s.len());
    if n < min_len {
        out.extend(std::iter::repeat_n('*', n));
        return out;
    }
    for (i, c) in s.chars().enumerate() {
        out.push(if i < head || i >= n - tail { c } else { '*' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(f: impl FnOnce(&mut FieldErrors)) -> Vec<String> {
        let mut e = FieldErrors::default();
        f(&mut e);
        e.0.into_iter().map(|x| x.code).collect()
    }

    #[test]
    fn employee_numbers() {
        assert!(codes(|e| drop(check_employee_no(e, "f", "M0001"))).is_empty());
        assert_eq!(
            codes(|e| drop(check_employee_no(e, "f", "M"))),
            ["invalid_format"]
        );
        assert_eq!(
            codes(|e| drop(check_employee_no(e, "f", "M 01"))),
            ["invalid_format"]
        );
        assert_eq!(
            codes(|e| drop(check_employee_no(e, "f", "客户01"))),
            ["invalid_format"]
        );
    }

    #[test]
    fn phones_and_masks() {
        assert!(codes(|e| drop(check_phone(e, "f", "+8613812345678"))).is_empty());
        assert_eq!(
            codes(|e| drop(check_phone(e, "f", "2381234567"))),
            ["invalid_format"]
        );
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("123"), "***");
    }

    #[test]
    fn passwords() {
        assert!(codes(|e| check_password(e, "p", "demo1234")).is_empty());
        assert_eq!(codes(|e| check_password(e, "p", "short1")), ["too_short"]);
        assert_eq!(
            codes(|e| check_password(e, "p", "onlyletters")),
            ["weak_password"]
        );
        assert_eq!(
            codes(|e| check_password(e, "p", &"a1".repeat(65))),
            ["too_long"]
        );
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::Admin, Role::Leader, Role::Manager] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
