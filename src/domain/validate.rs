//! Small field checks shared by every request type; each records into `FieldErrors` and never panics.

use crate::error::FieldErrors;

/// Checks a required text: trimmed, non-empty, at most `max` characters, one line (no control characters);
/// returns the trimmed value. Names, titles, codes and the like.
pub fn text(errs: &mut FieldErrors, field: &str, value: &str, max: usize) -> String {
    check(errs, field, value, max, char::is_control)
}

/// Checks prose a person types (a report, a log, a note, a comment): as `text`, but line breaks and tabs are
/// part of it; other control characters are not.
pub fn prose(errs: &mut FieldErrors, field: &str, value: &str, max: usize) -> String {
    check(errs, field, value, max, |c| {
        c.is_control() && !matches!(c, '\n' | '\r' | '\t')
    })
}

/// Like `prose` for an optional value; an empty string counts as absent.
pub fn opt_prose(
    errs: &mut FieldErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    optional(value, |v| prose(errs, field, v, max))
}

/// `None` for an absent or blank value, else what `check` makes of it.
fn optional(value: Option<&str>, check: impl FnOnce(&str) -> String) -> Option<String> {
    match value.map(str::trim) {
        None | Some("") => None,
        Some(v) => Some(check(v)),
    }
}

fn check(
    errs: &mut FieldErrors,
    field: &str,
    value: &str,
    max: usize,
    refused: fn(char) -> bool,
) -> String {
    let v = value.trim();
    if v.is_empty() {
        errs.add(field, "required", "must not be empty");
    } else if v.chars().count() > max {
        errs.add(field, "too_long", format!("at most {max} characters"));
    } else if v.chars().any(refused) {
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
    optional(value, |v| text(errs, field, v, max))
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
        let mut p = FieldErrors::default();
        assert_eq!(
            prose(&mut p, "g", " 第一行\r\n第二行\t完 ", 20),
            "第一行\r\n第二行\t完"
        );
        assert!(p.0.is_empty(), "line breaks and tabs are prose");
        prose(&mut p, "h", "a\u{7}b", 20);
        prose(&mut p, "i", "a\u{1b}[31mb", 20);
        assert_eq!(opt_prose(&mut p, "j", Some("  "), 3), None);
        let fields: Vec<_> = p.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["h", "i"], "other control characters are not");
        let mut one = FieldErrors::default();
        text(&mut one, "k", "a\nb", 20);
        assert_eq!(one.0.len(), 1, "a one-line text refuses a line break");
        assert_eq!(
            text(&mut FieldErrors::default(), "f", "中文名字", 4),
            "中文名字"
        );
    }
}
