//! Push delivery: the layer the outbox dispatcher calls to put one notification on one device. No database code
//! lives here; the dispatcher owns leasing, attempts and device state, and acts on the [`SendOutcome`].
//!
//! # Design
//!
//! - [`PushGateway`] is the one seam: `send(&PushMessage) -> SendOutcome`, object safe (a boxed future, no
//!   `async-trait`), so the application holds an `Arc<dyn PushGateway>`.
//! - [`FcmGateway`] speaks **FCM HTTP v1** (`POST {base}/v1/projects/{project}/messages:send`). Its OAuth2
//!   access token comes from a service-account key: an RS256 JWT assertion (iss = `client_email`, scope
//!   `firebase.messaging`, aud = `token_uri`, one hour) exchanged at `token_uri` with the `jwt-bearer` grant.
//!   The token is cached, refreshed before expiry (5 minutes early by default) by one request even when many
//!   sends wait for it, and on a 401 from FCM it is refreshed once and the send retried once.
//! - [`LogGateway`] is used when no FCM credentials are configured: it logs (without PII) what would have been
//!   sent and answers [`SendOutcome::Sent`] with a synthetic id, so the inbox and the outbox behave the same.
//! - What FCM answers is mapped to four outcomes:
//!
//!   | FCM answer | outcome |
//!   |---|---|
//!   | 200 | `Sent { message_id }` (the `name` FCM returns) |
//!   | 404 `UNREGISTERED` / `NOT_FOUND` | `DeadToken`: disable the device |
//!   | 400 `INVALID_ARGUMENT` about the registration token | `DeadToken` |
//!   | 403 `SENDER_ID_MISMATCH` | `DeadToken` (the token belongs to another Firebase project) |
//!   | other 400, other 4xx, 404 without an FCM error body | `Failed`: permanent, do not retry this message |
//!   | 429, 5xx (`Retry-After` in seconds or as an HTTP date honoured) | `Retry { after }` |
//!   | timeout, connection error, token endpoint unreachable or refusing | `Retry { after: None }` |
//!   | 401 again after one token refresh; other 403 (permission: a configuration fault) | `Retry` |
//!
//! - [`retry_delay`] is the dispatcher's backoff: exponential with full jitter, capped at
//!   [`BACKOFF_CAP`], never less than the server's `Retry-After`.
//! - PII: a device token, a title or a body is never logged, not even at trace level; logs carry
//!   [`token_hash`] (12 hex digits of its SHA-256) at most. `PushMessage`'s `Debug` is redacted the same way,
//!   and outcome reasons never contain the token.
//! - Every message carries both an `android` and an `apns` block (FCM applies the one matching the token), so a
//!   device whose recorded platform is wrong still gets the right priority, TTL and collapse id.

pub mod fcm;
pub mod log;
pub mod outbox;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::Clock;

pub use fcm::{FcmConfig, FcmGateway, ServiceAccountKey};
pub use log::LogGateway;

/// The device's operating system (what the app registered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Android (FCM native).
    Android,
    /// iOS (FCM relays to APNs).
    Ios,
}

impl Platform {
    /// `android` or `ios`, as stored and as sent by the apps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Android => "android",
            Self::Ios => "ios",
        }
    }

    /// Parses `android` / `ios` (exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "android" => Some(Self::Android),
            "ios" => Some(Self::Ios),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One push to one device. Title and body must already be the generic, PII-free text in the user's language.
#[derive(Clone, PartialEq, Eq)]
pub struct PushMessage {
    /// The FCM registration token of the device (secret-ish: never logged).
    pub device_token: String,
    /// The device's platform.
    pub platform: Platform,
    /// Generic title ("客户生日提醒").
    pub title: String,
    /// Generic body ("您有 1 笔产品 7 天后到期").
    pub body: String,
    /// String data for the app: the deep link (type, id) and the notification id. FCM reserves the keys
    /// `from`, `notification`, `message_type` and any starting with `google` or `gcm`.
    pub data: BTreeMap<String, String>,
    /// High priority (Android `HIGH`, APNs `10`) for urgent kinds; normal otherwise.
    pub urgent: bool,
    /// How long the push stays relevant; FCM drops it if the device is offline longer (capped at 28 days).
    pub ttl: Duration,
    /// The notification id: a re-send replaces rather than duplicates on the phone. At most 64 bytes; empty
    /// means none.
    pub collapse_key: String,
}

impl fmt::Debug for PushMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushMessage")
            .field(
                "device_token",
                &format_args!("#{}", token_hash(&self.device_token)),
            )
            .field("platform", &self.platform)
            .field(
                "title",
                &format_args!("<{} chars>", self.title.chars().count()),
            )
            .field(
                "body",
                &format_args!("<{} chars>", self.body.chars().count()),
            )
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("urgent", &self.urgent)
            .field("ttl", &self.ttl)
            .field("collapse_key", &self.collapse_key)
            .finish()
    }
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted by the provider.
    Sent {
        /// The provider's id (FCM: `projects/{project}/messages/{id}`; log gateway: `log:{uuid}`).
        message_id: String,
    },
    /// Transient failure: send again later, not before `after` when the provider said so.
    Retry {
        /// The provider's `Retry-After`, when it gave one.
        after: Option<Duration>,
        /// What happened (no PII), for `last_error`.
        reason: String,
    },
    /// The token is no longer valid: disable the device, do not retry.
    DeadToken {
        /// What the provider said (no PII).
        reason: String,
    },
    /// Permanent failure of this message (other than a dead token): do not retry it.
    Failed {
        /// What the provider said (no PII).
        reason: String,
    },
}

impl SendOutcome {
    /// `sent`, `retry`, `dead_token` or `failed`: a label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::Retry { .. } => "retry",
            Self::DeadToken { .. } => "dead_token",
            Self::Failed { .. } => "failed",
        }
    }
}

/// The future a [`PushGateway`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

/// Delivers one push. Implementations never panic and never return early with an error: every failure is a
/// [`SendOutcome`]. They may be called concurrently.
pub trait PushGateway: Send + Sync {
    /// Sends `message` once (an implementation may retry internally only where documented, e.g. FCM on 401).
    fn send<'a>(&'a self, message: &'a PushMessage) -> SendFuture<'a>;

    /// A short name for logs and metrics (`fcm`, `log`).
    fn name(&self) -> &'static str;
}

/// The gateway for a configuration: FCM when `fcm` is given (failing fast on a bad key file), else the log
/// gateway.
pub fn build_gateway(
    fcm: Option<FcmConfig>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn PushGateway>> {
    Ok(match fcm {
        Some(config) => Arc::new(FcmGateway::new(config, clock)?),
        None => Arc::new(LogGateway::new()),
    })
}

/// The first 12 hex digits of the SHA-256 of a device token: enough to correlate log lines, useless to send.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Ceiling of the first retry's delay; it doubles with every attempt.
pub const BACKOFF_BASE: Duration = Duration::from_secs(30);
/// Largest delay the exponential part can reach.
pub const BACKOFF_CAP: Duration = Duration::from_secs(3600);
/// Smallest delay ever returned (full jitter may otherwise pick zero).
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// A `Retry-After` longer than this is taken as this (a confused server must not park a row for weeks).
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(24 * 3600);

/// How long to wait before the next attempt after `attempt` failed ones (1 after the first failure; 0 is taken
/// as 1), with `jitter` a uniform draw in `[0, 1]` (clamped; NaN counts as 0).
///
/// Full jitter: `max(BACKOFF_MIN, jitter × min(BACKOFF_CAP, BACKOFF_BASE × 2^(attempt−1)))`, then raised to
/// `retry_after` (itself capped at [`RETRY_AFTER_CAP`]) when the server gave one: never earlier than it asked.
pub fn retry_delay(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let exponent = attempt.max(1).saturating_sub(1).min(30);
    let ceiling = BACKOFF_BASE
        .checked_mul(1u32 << exponent)
        .map_or(BACKOFF_CAP, |d| d.min(BACKOFF_CAP));
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let jittered = ceiling.mul_f64(jitter).max(BACKOFF_MIN);
    match retry_after {
        Some(after) => jittered.max(after.min(RETRY_AFTER_CAP)),
        None => jittered,
    }
}

/// [`retry_delay`] with a random jitter.
pub fn retry_delay_random(attempt: u32, retry_after: Option<Duration>) -> Duration {
    retry_delay(attempt, retry_after, rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn full_jitter_upper_bound_doubles_per_attempt_until_the_cap() {
        assert_eq!(retry_delay(1, None, 1.0), secs(30));
        assert_eq!(retry_delay(2, None, 1.0), secs(60));
        assert_eq!(retry_delay(3, None, 1.0), secs(120));
        assert_eq!(retry_delay(7, None, 1.0), secs(1920));
        assert_eq!(retry_delay(8, None, 1.0), BACKOFF_CAP);
        assert_eq!(retry_delay(40, None, 1.0), BACKOFF_CAP);
        assert_eq!(retry_delay(u32::MAX, None, 1.0), BACKOFF_CAP);
        // Attempt 0 is the same as attempt 1.
        assert_eq!(retry_delay(0, None, 1.0), secs(30));
    }

    #[test]
    fn jitter_scales_the_delay_and_never_goes_below_the_minimum() {
        assert_eq!(retry_delay(3, None, 0.5), secs(60));
        assert_eq!(retry_delay(3, None, 0.25), secs(30));
        assert_eq!(retry_delay(3, None, 0.0), BACKOFF_MIN);
        assert_eq!(retry_delay(1, None, 0.001), BACKOFF_MIN);
        // Out-of-range draws are clamped.
        assert_eq!(retry_delay(2, None, 7.0), secs(60));
        assert_eq!(retry_delay(2, None, -1.0), BACKOFF_MIN);
        assert_eq!(retry_delay(2, None, f64::NAN), BACKOFF_MIN);
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(retry_delay(1, Some(secs(120)), 0.5), secs(120));
        assert_eq!(retry_delay(1, Some(secs(120)), 0.0), secs(120));
        // A larger jittered delay wins over a small Retry-After.
        assert_eq!(retry_delay(5, Some(secs(10)), 1.0), secs(480));
        // Retry-After may exceed the exponential cap…
        assert_eq!(retry_delay(9, Some(secs(7200)), 1.0), secs(7200));
        // …but not a day.
        assert_eq!(
            retry_delay(1, Some(secs(30 * 24 * 3600)), 0.5),
            RETRY_AFTER_CAP
        );
        assert_eq!(retry_delay(1, Some(Duration::ZERO), 0.0), BACKOFF_MIN);
    }

    #[test]
    fn random_delays_stay_within_bounds() {
        for attempt in 1..=10 {
            for _ in 0..50 {
                let d = retry_delay_random(attempt, Some(secs(5)));
                assert!(d >= secs(5), "{d:?}");
                assert!(d <= BACKOFF_CAP, "{d:?}");
            }
        }
    }

    #[test]
    fn token_hash_is_a_short_stable_prefix() {
        let h = token_hash("dQw4w9WgXcQ:APA91bH-secret-token");
        assert_eq!(h.len(), 12);
        assert!(h.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(h, token_hash("dQw4w9WgXcQ:APA91bH-secret-token"));
        assert_ne!(h, token_hash("another-token"));
        // SHA-256("abc") starts with ba7816bf8f01.
        assert_eq!(token_hash("abc"), "ba7816bf8f01");
    }

    #[test]
    fn debug_of_a_message_hides_token_title_and_body() {
        let m = PushMessage {
            device_token: "tok-SECRET-123".into(),
            platform: Platform::Ios,
            title: "客户生日提醒".into(),
            body: "张三 生日".into(),
            data: BTreeMap::from([("notification_id".into(), "42".into())]),
            urgent: true,
            ttl: Duration::from_secs(60),
            collapse_key: "42".into(),
        };
        let s = format!("{m:?}");
        assert!(!s.contains("tok-SECRET-123"), "{s}");
        assert!(!s.contains("客户生日提醒"), "{s}");
        assert!(!s.contains("张三"), "{s}");
        assert!(s.contains(&token_hash("tok-SECRET-123")), "{s}");
        assert!(s.contains("notification_id"), "{s}");
    }

    #[test]
    fn without_fcm_settings_the_log_gateway_is_used() {
        let g = build_gateway(None, Arc::new(crate::clock::SystemClock)).unwrap();
        assert_eq!(g.name(), "log");
        let missing = FcmConfig::new("/nonexistent/fieldwork-fcm-key.json");
        assert!(build_gateway(Some(missing), Arc::new(crate::clock::SystemClock)).is_err());
    }

    #[test]
    fn platform_round_trips() {
        for p in [Platform::Android, Platform::Ios] {
            assert_eq!(Platform::parse(p.as_str()), Some(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(Platform::parse("Android"), None);
        assert_eq!(Platform::parse("hms"), None);
    }
}
