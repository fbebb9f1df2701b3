//! Coordinates for visit check-ins: datum conversion (GCJ-02, the "Mars" datum of Chinese maps, to WGS-84 as
//! GPS reports it), great-circle distance, and the check-in flags a leader sees. Flags never reject a check-in.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The datum a coordinate pair was taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Datum {
    /// Raw GPS (WGS-84).
    Wgs84,
    /// Chinese map SDKs (GCJ-02), offset by up to several hundred metres from WGS-84.
    Gcj02,
}

impl Datum {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wgs84 => "wgs84",
            Self::Gcj02 => "gcj02",
        }
    }
}

/// A WGS-84 point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
}

const EARTH_RADIUS_M: f64 = 6_371_008.8;
// Krasovsky 1940, as used by the GCJ-02 transform.
const GCJ_A: f64 = 6_378_245.0;
const GCJ_EE: f64 = 0.006_693_421_622_965_943;

/// True when latitude and longitude are finite and in range.
pub fn valid(lat: f64, lon: f64) -> bool {
    lat.is_finite()
        && lon.is_finite()
        && (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&lon)
}

/// GCJ-02 only applies inside (a box around) mainland China.
fn in_china(lat: f64, lon: f64) -> bool {
    (72.004..=137.8347).contains(&lon) && (0.8293..=55.8271).contains(&lat)
}

fn transform_lat(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn transform_lon(x: f64, y: f64) -> f64 {
    use std::f64::consts::PI;
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS-84 → GCJ-02 (the published forward transform).
pub fn wgs84_to_gcj02(p: Point) -> Point {
    use std::f64::consts::PI;
    if !in_china(p.lat, p.lon) {
        return p;
    }
    let d_lat = transform_lat(p.lon - 105.0, p.lat - 35.0);
    let d_lon = transform_lon(p.lon - 105.0, p.lat - 35.0);
    let rad = p.lat / 180.0 * PI;
    let magic = 1.0 - GCJ_EE * rad.sin() * rad.sin();
    let sqrt_magic = magic.sqrt();
    let d_lat = (d_lat * 180.0) / ((GCJ_A * (1.0 - GCJ_EE)) / (magic * sqrt_magic) * PI);
    let d_lon = (d_lon * 180.0) / (GCJ_A / sqrt_magic * rad.cos() * PI);
    Point {
        lat: p.lat + d_lat,
        lon: p.lon + d_lon,
    }
}

/// GCJ-02 → WGS-84 by fixed-point iteration of the forward transform (error well under a metre).
pub fn gcj02_to_wgs84(g: Point) -> Point {
    if !in_china(g.lat, g.lon) {
        return g;
    }
    let mut w = g;
    for _ in 0..10 {
        let f = wgs84_to_gcj02(w);
        let (dl, dn) = (f.lat - g.lat, f.lon - g.lon);
        w = Point {
            lat: w.lat - dl,
            lon: w.lon - dn,
        };
        if dl.abs() < 1e-9 && dn.abs() < 1e-9 {
            break;
        }
    }
    w
}

/// A point in the given datum, as WGS-84.
pub fn to_wgs84(lat: f64, lon: f64, datum: Datum) -> Point {
    let p = Point { lat, lon };
    match datum {
        Datum::Wgs84 => p,
        Datum::Gcj02 => gcj02_to_wgs84(p),
    }
}

/// Great-circle (haversine) distance in metres.
pub fn distance_m(a: Point, b: Point) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dla = (b.lat - a.lat).to_radians();
    let dlo = (b.lon - a.lon).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// Thresholds for the check-in flags.
#[derive(Debug, Clone, Copy)]
pub struct FlagRules {
    /// Farther than this from the customer's registered location is `far_from_customer`.
    pub radius_m: f64,
    /// A fix worse than this is `poor_accuracy`.
    pub poor_accuracy_m: f64,
    /// Phone time off the server's by more than this many seconds is `clock_skew`.
    pub max_skew_secs: i64,
    /// Faster than this from the previous check-in is `impossible_travel`.
    pub max_speed_kmh: f64,
}

impl Default for FlagRules {
    fn default() -> Self {
        Self {
            radius_m: 500.0,
            poor_accuracy_m: 200.0,
            max_skew_secs: 600,
            max_speed_kmh: 150.0,
        }
    }
}

/// Everything the flags are computed from.
#[derive(Debug, Clone, Copy)]
pub struct CheckIn {
    /// Where the phone was (WGS-84).
    pub at: Point,
    /// The fix's accuracy in metres.
    pub accuracy_m: f64,
    /// The phone's clock.
    pub phone_time: DateTime<Utc>,
    /// The server's clock when it received the check-in.
    pub server_time: DateTime<Utc>,
    /// The customer's registered location (WGS-84), if any.
    pub customer: Option<Point>,
    /// The manager's previous check-in: where and when (server time).
    pub previous: Option<(Point, DateTime<Utc>)>,
}

/// The computed distance (if the customer has a location) and the flags, in a fixed order.
pub fn assess(c: &CheckIn, rules: &FlagRules) -> (Option<f64>, Vec<&'static str>) {
    let mut flags = Vec::new();
    let distance = c.customer.map(|p| distance_m(c.at, p));
    match distance {
        Some(d) if d > rules.radius_m => flags.push("far_from_customer"),
        Some(_) => {}
        None => flags.push("no_customer_location"),
    }
    if c.accuracy_m > rules.poor_accuracy_m {
        flags.push("poor_accuracy");
    }
    if (c.phone_time - c.server_time).num_seconds().abs() > rules.max_skew_secs {
        flags.push("clock_skew");
    }
    if let Some((prev, when)) = c.previous {
        let secs = (c.server_time - when).num_milliseconds() as f64 / 1000.0;
        let km = distance_m(prev, c.at) / 1000.0;
        // Within a second any real move is "impossible"; ignore sub-100 m jitter.
        if km > 0.1 && (secs <= 1.0 || km / (secs / 3600.0) > rules.max_speed_kmh) {
            flags.push("impossible_travel");
        }
    }
    (distance, flags)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    // Tiananmen (WGS-84) and its well-known GCJ-02 counterpart.
    const TIANANMEN_WGS: Point = Point {
        lat: 39.908_692,
        lon: 116.397_477,
    };
    const TIANANMEN_GCJ: Point = Point {
        lat: 39.910_096,
        lon: 116.403_719,
    };

    #[test]
    fn known_distances() {
        // Beijing → Shanghai (city centres) is about 1,067 km.
        let bj = Point {
            lat: 39.9042,
            lon: 116.4074,
        };
        let sh = Point {
            lat: 31.2304,
            lon: 121.4737,
        };
        let d = distance_m(bj, sh);
        assert!((d - 1_067_000.0).abs() < 5_000.0, "{d}");
        // One thousandth of a degree of latitude is about 111 m.
        let a = Point {
            lat: 32.0,
            lon: 118.0,
        };
        let b = Point {
            lat: 32.001,
            lon: 118.0,
        };
        assert!((distance_m(a, b) - 111.2).abs() < 0.5);
        assert_eq!(distance_m(a, a), 0.0);
    }

    #[test]
    fn gcj02_round_trips_and_matches_the_reference_point() {
        let g = wgs84_to_gcj02(TIANANMEN_WGS);
        assert!(
            distance_m(g, TIANANMEN_GCJ) < 5.0,
            "forward transform off by {}",
            distance_m(g, TIANANMEN_GCJ)
        );
        let back = gcj02_to_wgs84(TIANANMEN_GCJ);
        assert!(distance_m(back, TIANANMEN_WGS) < 5.0);
        // The raw offset is several hundred metres: that is why the datum matters.
        assert!(distance_m(TIANANMEN_WGS, TIANANMEN_GCJ) > 400.0);
        // Outside China nothing changes.
        let london = Point {
            lat: 51.5,
            lon: -0.12,
        };
        assert_eq!(wgs84_to_gcj02(london), london);
    }

    #[test]
    fn flags() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 23, 2, 0, 0).unwrap();
        let cust = Point {
            lat: 32.0,
            lon: 118.0,
        };
        let near = Point {
            lat: 32.001,
            lon: 118.0,
        };
        let base = CheckIn {
            at: near,
            accuracy_m: 20.0,
            phone_time: t0,
            server_time: t0,
            customer: Some(cust),
            previous: None,
        };
        let r = FlagRules::default();
        let (d, f) = assess(&base, &r);
        assert!(d.is_some_and(|d| (d - 111.2).abs() < 1.0));
        assert!(f.is_empty());
        let far = CheckIn {
            at: Point {
                lat: 32.01,
                lon: 118.0,
            },
            ..base
        };
        assert_eq!(assess(&far, &r).1, ["far_from_customer"]);
        assert_eq!(
            assess(
                &CheckIn {
                    customer: None,
                    ..base
                },
                &r
            )
            .1,
            ["no_customer_location"]
        );
        assert_eq!(
            assess(
                &CheckIn {
                    accuracy_m: 250.0,
                    ..base
                },
                &r
            )
            .1,
            ["poor_accuracy"]
        );
        let skewed = CheckIn {
            phone_time: t0 - chrono::Duration::minutes(11),
            ..base
        };
        assert_eq!(assess(&skewed, &r).1, ["clock_skew"]);
        // 111 km in 30 minutes is 222 km/h.
        let prev = (
            Point {
                lat: 31.0,
                lon: 118.0,
            },
            t0 - chrono::Duration::minutes(30),
        );
        assert_eq!(
            assess(
                &CheckIn {
                    previous: Some(prev),
                    ..base
                },
                &r
            )
            .1,
            ["impossible_travel"]
        );
        let slow = (
            Point {
                lat: 31.0,
                lon: 118.0,
            },
            t0 - chrono::Duration::hours(2),
        );
        assert!(
            assess(
                &CheckIn {
                    previous: Some(slow),
                    ..base
                },
                &r
            )
            .1
            .is_empty()
        );
    }
}
