//! Customers: their enumerations, the field rules (ID numbers, birthdays, lunar birthdays, tags,
//! coordinates) and PII masking for lists.
//!
//! Decisions where the issue is silent:
//! - ID numbers: an individual's is an 18-character PRC resident ID (17 digits, then a digit or `X`; a lower
//!   `x` is upper-cased; the check digit is not verified so imported legacy data is not refused); a corporate
//!   customer's may be any document of 1–32 ASCII letters, digits or `-` (e.g. the 18-character unified
//!   social credit code), upper-cased.
//! - Coordinates are stored as WGS-84 whatever datum the client sent; the datum it sent is kept beside them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::geo::{self, Datum};
use crate::error::FieldErrors;

/// Longest customer or contact name.
pub const NAME_MAX: usize = 100;
/// Most tags on a customer.
pub const TAGS_MAX: usize = 20;
/// Longest tag.
pub const TAG_MAX: usize = 20;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// The stored string.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }

            /// Parses the stored string.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some(Self::$v),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// Individual (个人) or corporate (对公) customer.
    CustomerKind {
        /// A person.
        Individual => "individual",
        /// A company; it has key contacts.
        Corporate => "corporate",
    }
);

string_enum!(
    /// Gender of an individual customer.
    Gender {
        /// Female.
        Female => "female",
        /// Male.
        Male => "male",
        /// Not known or not disclosed.
        Unknown => "unknown",
    }
);

string_enum!(
    /// Where the relationship stands. `archived` is set only by `DELETE` and never accepted in a body.
    CustomerStatus {
        /// Being prospected, not yet a customer of the bank.
        Prospect => "prospect",
        /// An active customer.
        Active => "active",
        /// No business for a long time.
        Dormant => "dormant",
        /// Archived (soft-deleted); kept, never shown.
        Archived => "archived",
    }
);

string_enum!(
    /// Status of a holding.
    HoldingStatus {
        /// Held now.
        Active => "active",
        /// Reached its maturity date.
        Matured => "matured",
        /// Closed, repaid or redeemed.
        Closed => "closed",
    }
);

/// A lunar (农历) birthday: month 1–12, day 1–30, and whether it is in the leap month (闰月).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LunarBirthday {
    /// Lunar month, 1–12.
    pub month: i32,
    /// Lunar day, 1–30.
    pub day: i32,
    /// True for the leap month of that number.
    #[serde(default)]
    pub leap: bool,
}

impl LunarBirthday {
    /// From the stored columns (all or nothing).
    pub fn from_columns(month: Option<i32>, day: Option<i32>, leap: bool) -> Option<Self> {
        Some(Self {
            month: month?,
            day: day?,
            leap,
        })
    }
}

/// Checks a lunar birthday's ranges under `field` (`field.month`, `field.day`).
pub fn check_lunar(errs: &mut FieldErrors, field: &str, l: &LunarBirthday) {
    if !(1..=12).contains(&l.month) {
        errs.add(&format!("{field}.month"), "out_of_range", "1 to 12");
    }
    if !(1..=30).contains(&l.day) {
        errs.add(&format!("{field}.day"), "out_of_range", "1 to 30");
    }
}

/// A solar birthday must not lie after `today`.
pub fn check_birthday(errs: &mut FieldErrors, field: &str, d: NaiveDate, today: NaiveDate) {
    if d > today {
        errs.add(field, "in_future", "a birthday cannot be in the future");
    }
}

/// Checks an ID number for a customer of `kind`; returns it normalised (trimmed, upper case).
pub fn check_id_number(errs: &mut FieldErrors, field: &str, v: &str, kind: CustomerKind) -> String {
    let v = v.trim().to_ascii_uppercase();
    let ok = match kind {
        CustomerKind::Individual => {
            v.len() == 18
                && v.bytes().take(17).all(|b| b.is_ascii_digit())
                && v.bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_digit() || b == b'X')
        }
        CustomerKind::Corporate => {
            (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        }
    };
    if !ok {
        let msg = match kind {
            CustomerKind::Individual => {
                "an 18-character PRC ID number: 17 digits, then a digit or X"
            }
            CustomerKind::Corporate => "1 to 32 letters, digits or '-'",
        };
        errs.add(field, "invalid_format", msg);
    }
    v
}

/// Checks tags (at most 20, each 1–20 characters, duplicates dropped) and returns them as stored JSON text.
pub fn check_tags(errs: &mut FieldErrors, field: &str, tags: &[String]) -> String {
    if tags.len() > TAGS_MAX {
        errs.add(field, "too_many", format!("at most {TAGS_MAX} tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for (i, t) in tags.iter().enumerate() {
        let t = crate::domain::validate::text(errs, &format!("{field}.{i}"), t, TAG_MAX);
        if !out.contains(&t) {
            out.push(t);
        }
    }
    serde_json::to_string(&out).unwrap_or_else(|_| "[]".to_owned())
}

/// The tags of a stored JSON text (empty when unreadable).
pub fn parse_tags(stored: &str) -> Vec<String> {
    serde_json::from_str(stored).unwrap_or_default()
}

/// A checked location: WGS-84 coordinates and the datum the client sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// WGS-84 latitude.
    pub lat: f64,
    /// WGS-84 longitude.
    pub lon: f64,
    /// The datum the client sent.
    pub datum: Datum,
}

/// Checks a coordinate pair (both or neither; each in range) and converts it to WGS-84. `datum` defaults
/// to `wgs84`; a datum without coordinates is refused.
pub fn check_location(
    errs: &mut FieldErrors,
    lat: Option<f64>,
    lon: Option<f64>,
    datum: Option<Datum>,
) -> Option<Location> {
    let lat_ok = lat.is_none_or(|v| v.is_finite() && (-90.0..=90.0).contains(&v));
    let lon_ok = lon.is_none_or(|v| v.is_finite() && (-180.0..=180.0).contains(&v));
    if !lat_ok {
        errs.add("latitude", "out_of_range", "between -90 and 90");
    }
    if !lon_ok {
        errs.add("longitude", "out_of_range", "between -180 and 180");
    }
    match (lat, lon) {
        (Some(lat), Some(lon)) if lat_ok && lon_ok && geo::valid(lat, lon) => {
            let datum = datum.unwrap_or(Datum::Wgs84);
            let p = geo::to_wgs84(lat, lon, datum);
            Some(Location {
                lat: p.lat,
                lon: p.lon,
                datum,
            })
        }
        (Some(_), None) => {
            errs.add(
                "longitude",
                "required",
                "give latitude and longitude together",
            );
            None
        }
        (None, Some(_)) => {
            errs.add(
                "latitude",
                "required",
                "give latitude and longitude together",
            );
            None
        }
        (None, None) => {
            if datum.is_some() {
                errs.add(
                    "location_datum",
                    "requires_coordinates",
                    "give latitude and longitude with a datum",
                );
            }
            None
        }
        _ => None,
    }
}

/// Masks a phone for lists: `13812345678` → `138****5678`.
pub fn mask_phone(phone: &str) -> String {
    crate::domain::user::mask_phone(phone)
}

/// Masks an ID number for lists: the first 4 and last 4 characters stay (`3201**********1234`); shorter
/// documents (8 characters or fewer) are masked entirely.
pub fn mask_id_number(id: &str) -> String {
    crate::domain::user::mask_middle(id, 4, 4, 9)
}

/// How a `q` search reads: a name prefix, and also a phone suffix when it is 4 or more digits.
pub fn phone_suffix(q: &str) -> Option<&str> {
    (q.len() >= 4 && q.bytes().all(|b| b.is_ascii_digit())).then_some(q)
}

/// Maker-checker on a customer transfer: whoever proposed it may withdraw it (reject), but someone else
/// approves it. Ownership decides whose performance a customer counts for, so a leader does not move a
/// customer and sign the move off alone; with one leader in a sub-branch, a leader above it or an admin
/// approves.
pub fn may_decide_transfer(proposed_by: i64, decider: i64, approve: bool) -> bool {
    !approve || proposed_by != decider
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_is_approved_by_someone_other_than_its_proposer() {
        assert!(may_decide_transfer(7, 9, true));
        assert!(!may_decide_transfer(7, 7, true));
        // Withdrawing one's own proposal is a rejection, and allowed.
        assert!(may_decide_transfer(7, 7, false));
        assert!(may_decide_transfer(7, 9, false));
    }

    fn codes(f: impl FnOnce(&mut FieldErrors)) -> Vec<(String, String)> {
        let mut e = FieldErrors::default();
        f(&mut e);
        e.0.into_iter().map(|x| (x.field, x.code)).collect()
    }

    #[test]
    fn masks() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_id_number("320102199001011234"), "3201**********1234");
        assert_eq!(mask_id_number("91320102MA1XYZ12"), "9132********YZ12");
        assert_eq!(mask_id_number("12345678"), "********");
        assert_eq!(mask_id_number("123456789"), "1234*6789");
    }

    #[test]
    fn id_numbers() {
        let ind = CustomerKind::Individual;
        let corp = CustomerKind::Corporate;
        assert!(codes(|e| drop(check_id_number(e, "id", "320102199001011234", ind))).is_empty());
        let mut e = FieldErrors::default();
        assert_eq!(
            check_id_number(&mut e, "id", "32010219900101123x", ind),
            "32010219900101123X"
        );
        assert!(e.0.is_empty());
        assert_eq!(
            codes(|e| drop(check_id_number(e, "id", "3201021990010112", ind)))[0].1,
            "invalid_format"
        );
        assert_eq!(
            codes(|e| drop(check_id_number(e, "id", "32010219900101123Y", ind)))[0].1,
            "invalid_format"
        );
        assert!(codes(|e| drop(check_id_number(e, "id", "91320102MA1XYZ1234", corp))).is_empty());
        assert_eq!(
            codes(|e| drop(check_id_number(e, "id", &"A".repeat(33), corp)))[0].1,
            "invalid_format"
        );
        assert_eq!(
            codes(|e| drop(check_id_number(e, "id", "有限公司", corp)))[0].1,
            "invalid_format"
        );
    }

    #[test]
    fn tags_and_lunar() {
        let mut e = FieldErrors::default();
        let stored = check_tags(
            &mut e,
            "tags",
            &["VIP".into(), "VIP".into(), " 代发工资 ".into()],
        );
        assert!(e.0.is_empty());
        assert_eq!(parse_tags(&stored), ["VIP", "代发工资"]);
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert_eq!(
            codes(|e| drop(check_tags(e, "tags", &many))),
            [("tags".into(), "too_many".into())]
        );
        assert_eq!(
            codes(|e| drop(check_tags(e, "tags", &["x".repeat(21)]))),
            [("tags.0".into(), "too_long".into())]
        );
        let bad = LunarBirthday {
            month: 13,
            day: 0,
            leap: false,
        };
        assert_eq!(
            codes(|e| check_lunar(e, "lunar_birthday", &bad)),
            [
                ("lunar_birthday.month".into(), "out_of_range".into()),
                ("lunar_birthday.day".into(), "out_of_range".into())
            ]
        );
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert!(codes(|e| check_birthday(e, "b", d(2026, 1, 1), d(2026, 1, 1))).is_empty());
        assert_eq!(
            codes(|e| check_birthday(e, "b", d(2026, 1, 2), d(2026, 1, 1)))[0].1,
            "in_future"
        );
    }

    #[test]
    fn locations() {
        assert_eq!(
            codes(|e| {
                let _ = check_location(e, Some(91.0), Some(118.0), None);
            }),
            [("latitude".into(), "out_of_range".into())]
        );
        assert_eq!(
            codes(|e| {
                let _ = check_location(e, Some(32.0), Some(-181.0), None);
            }),
            [("longitude".into(), "out_of_range".into())]
        );
        assert_eq!(
            codes(|e| {
                let _ = check_location(e, Some(32.0), None, None);
            })[0]
                .0,
            "longitude"
        );
        assert_eq!(
            codes(|e| {
                let _ = check_location(e, None, None, Some(Datum::Gcj02));
            })[0]
                .1,
            "requires_coordinates"
        );
        let mut e = FieldErrors::default();
        let w = check_location(&mut e, Some(32.06), Some(118.79), None).unwrap();
        assert_eq!((w.lat, w.lon, w.datum), (32.06, 118.79, Datum::Wgs84));
        // A GCJ-02 point in Nanjing lies a few hundred metres from its WGS-84 position.
        let g = check_location(&mut e, Some(32.06), Some(118.79), Some(Datum::Gcj02)).unwrap();
        assert_eq!(g.datum, Datum::Gcj02);
        let moved = geo::distance_m(
            geo::Point {
                lat: 32.06,
                lon: 118.79,
            },
            geo::Point {
                lat: g.lat,
                lon: g.lon,
            },
        );
        assert!((100.0..1000.0).contains(&moved), "{moved}");
        let back = geo::wgs84_to_gcj02(geo::Point {
            lat: g.lat,
            lon: g.lon,
        });
        assert!((back.lat - 32.06).abs() < 1e-6 && (back.lon - 118.79).abs() < 1e-6);
        assert!(e.0.is_empty());
    }

    #[test]
    fn search_and_enums() {
        assert_eq!(phone_suffix("5678"), Some("5678"));
        assert_eq!(phone_suffix("567"), None);
        assert_eq!(phone_suffix("王5678"), None);
        for k in [CustomerKind::Individual, CustomerKind::Corporate] {
            assert_eq!(CustomerKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(CustomerStatus::parse("gone"), None);
    }
}
