//! Small field checks shared by every request type; each records into `FieldErrors` and never panics.

use crate::error::FieldErrors;

/// Checks a required text: trimmed, non-empty, at most `max` characters; returns the trimmed value.
pub fn text(errs: &mut FieldErrors, field: &str, value: &str, max: usize) -> String {
    let v = value.trim();
    if v.is_empty() {
        errs.add(field, "required", "must not be empty");
    } else if v.chars().count() > max {
        errs.add(field, "too_long", format!("at most {max} characters"));
    } else if v.chars().any(char::is_control) {
        errs.add(
            field,
            "invalid_format",
            "must not contain control characters",
        );
    }
    v.to_owned()
}

/// Like `text` for an optional value; an empty string counts as absent.
pub fn opt_text(
    errs: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    match value.map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(text(errs, field, v, max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        let mut e = FieldErrors::default();
        assert_eq!(text(&mut e, "a", "  x ", 3), "x");
        assert!(e.0.is_empty());
        text(&mut e, "b", "   ", 3);
        text(&mut e, "c", "abcd", 3);
        text(&mut e, "d", "a\u{0}b", 3);
        let codes: Vec<_> =
            e.0.iter()
                .map(|f| (f.field.as_str(), f.code.as_str()))
                .collect();
        assert_eq!(
            codes,
            vec![
                ("b", "required"),
                ("c", "too_long"),
                ("d", "invalid_format")
            ]
        );
        assert_eq!(opt_text(&mut e, "e", Some(""), 3), None);
        assert_eq!(
            text(&mut FieldErrors::default(), "f", "中文名字", 4),
            "中文名字"
        );
    }
}
