//! Typed settings. Every value comes from a command-line flag or its `FIELDWORK_*` / `DATABASE_URL`
//! environment variable (see README); tests build `Settings` in code. `validate()` fails fast at start-up.

use std::time::Duration;

use clap::Args;

/// Whether the process runs for development/demo or in production (stricter checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    /// Development and demo: a missing JWT secret is generated (and said so).
    Dev,
    /// Production: a JWT secret of at least 32 bytes is required.
    Production,
}

/// Settings of the HTTP server and its database.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "FIELDWORK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// `sqlite://PATH` (embedded default) or `postgres://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://data/fieldwork.db"
    )]
    pub database_url: String,
    /// Maximum connections in the read pool (SQLite writes always use one dedicated connection).
    #[arg(long, env = "FIELDWORK_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    #[arg(long, env = "FIELDWORK_DB_TIMEOUT_SECS", default_value_t = 5)]
    pub db_timeout_secs: u64,
    /// HMAC key for access tokens; at least 32 bytes. Generated per process in dev when absent.
    #[arg(long, env = "FIELDWORK_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Access-token lifetime in seconds (at most 900).
    #[arg(long, env = "FIELDWORK_ACCESS_TOKEN_TTL_SECS", default_value_t = 900)]
    pub access_token_ttl_secs: u64,
    /// Refresh-token (session) lifetime in days.
    #[arg(long, env = "FIELDWORK_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30)]
    pub refresh_token_ttl_days: u64,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "FIELDWORK_MAX_BODY_BYTES", default_value_t = 65_536)]
    pub max_body_bytes: usize,
    /// HTTP worker threads (0 = one per core).
    #[arg(long, env = "FIELDWORK_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// `dev` or `production`.
    #[arg(long, env = "FIELDWORK_ENV", value_enum, default_value = "dev")]
    pub environment: Environment,
    /// Log as JSON lines (production log shippers).
    #[arg(long, env = "FIELDWORK_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
    /// Seconds between scheduler and push-dispatcher passes (0: no background jobs).
    #[arg(long, env = "FIELDWORK_TICK_SECS", default_value_t = 60)]
    pub tick_secs: u64,
    /// Where 29 February birthdays are remembered in common years: `feb28` or `mar1`.
    #[arg(long, env = "FIELDWORK_FEB29", value_enum, default_value = "feb28")]
    pub feb29: Feb29,
    /// Days the scheduler looks ahead when generating reminders.
    #[arg(long, env = "FIELDWORK_REMINDER_WINDOW_DAYS", default_value_t = 7,
          value_parser = clap::value_parser!(i64).range(1..=60))]
    pub reminder_window_days: i64,
    /// Bound of each cache of rendered rows (customers, users, reminders per language: about 1 KB a row) and
    /// of kept weeks of birthdays (managers); 0: none.
    #[arg(long, env = "FIELDWORK_RENDERED_ROWS", default_value_t = 50_000)]
    pub rendered_rows: usize,
    /// Metres from a customer's registered location beyond which a check-in is flagged `far_from_customer`
    /// (the flag never rejects the check-in).
    #[arg(long, env = "FIELDWORK_VISIT_RADIUS_M", default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(10..=100_000))]
    pub visit_radius_m: u32,
    /// Path of a Firebase service-account key (JSON). Unset: pushes are only logged (the log gateway).
    #[arg(long, env = "FIELDWORK_FCM_SERVICE_ACCOUNT_KEY")]
    pub fcm_service_account_key: Option<std::path::PathBuf>,
    /// Firebase project id (default: the key file's `project_id`).
    #[arg(long, env = "FIELDWORK_FCM_PROJECT_ID")]
    pub fcm_project_id: Option<String>,
    /// Base URL of the FCM HTTP v1 API.
    #[arg(
        long,
        env = "FIELDWORK_FCM_BASE_URL",
        default_value = "https://fcm.googleapis.com"
    )]
    pub fcm_base_url: String,
    /// Failed password checks one client address may make per 15 minutes over all employee numbers before
    /// it is locked for 15 minutes (beside the per-number limit of five). Phones behind one carrier NAT share
    /// an address, so it is well above five.
    #[arg(long, env = "FIELDWORK_LOGIN_ADDRESS_LIMIT", default_value_t = 30,
          value_parser = clap::value_parser!(i32).range(5..=100_000))]
    pub login_address_limit: i32,
    /// Take the client address from the last `X-Forwarded-For` hop (set this only behind a reverse proxy
    /// that appends it; otherwise the header is ignored and the TCP peer is the client).
    #[arg(long, env = "FIELDWORK_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,
    /// Seconds after a refresh during which the same refresh token may be presented again and answers with
    /// a fresh pair for the same session (a phone that lost the answer retries); after it, a reuse ends the
    /// session.
    #[arg(long, env = "FIELDWORK_REFRESH_GRACE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=300))]
    pub refresh_grace_secs: u64,
    /// Bearer token that `/metrics` requires. Unset: `/metrics` answers only requests from the loopback
    /// interface that came through no proxy (no `Forwarded` or `X-Forwarded-For` header); 404 otherwise.
    #[arg(long, env = "FIELDWORK_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

/// Where 29 February birthdays go in common years (the setting; the rule is `domain::reminders::Feb29Rule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Feb29 {
    /// 28 February.
    Feb28,
    /// 1 March.
    Mar1,
}

impl Feb29 {
    /// The domain rule this setting selects.
    pub fn rule(self) -> crate::domain::reminders::Feb29Rule {
        match self {
            Self::Feb28 => crate::domain::reminders::Feb29Rule::Feb28,
            Self::Mar1 => crate::domain::reminders::Feb29Rule::Mar1,
        }
    }
}

impl Settings {
    /// Settings for tests and tools: loopback on a random port, the given database, a fixed secret.
    pub fn for_tests(database_url: &str) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            database_url: database_url.into(),
            db_pool_size: 4,
            db_timeout_secs: 2,
            jwt_secret: Some("test-secret-test-secret-test-secret!".into()),
            access_token_ttl_secs: 900,
            refresh_token_ttl_days: 30,
            max_body_bytes: 65_536,
            workers: 2,
            environment: Environment::Dev,
            log_json: false,
            tick_secs: 0,
            feb29: Feb29::Feb28,
            reminder_window_days: 7,
            rendered_rows: 50_000,
            visit_radius_m: 500,
            fcm_service_account_key: None,
            fcm_project_id: None,
            fcm_base_url: "https://fcm.googleapis.com".into(),
            login_address_limit: 30,
            trust_forwarded_for: false,
            refresh_grace_secs: 30,
            metrics_token: None,
        }
    }

    /// Checks values that would make the server unsafe or useless.
    pub fn validate(&self) -> anyhow::Result<()> {
        crate::db::DbTarget::parse(&self.database_url).map_err(anyhow::Error::msg)?;
        if self.access_token_ttl_secs == 0 || self.access_token_ttl_secs > 900 {
            anyhow::bail!("FIELDWORK_ACCESS_TOKEN_TTL_SECS must be 1..=900");
        }
        if self.refresh_token_ttl_days == 0 || self.refresh_token_ttl_days > 365 {
            anyhow::bail!("FIELDWORK_REFRESH_TOKEN_TTL_DAYS must be 1..=365");
        }
        if self.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
            anyhow::bail!("FIELDWORK_METRICS_TOKEN must be at least 16 characters");
        }
        if self.max_body_bytes < 1024 {
            anyhow::bail!("FIELDWORK_MAX_BODY_BYTES must be at least 1024");
        }
        match (&self.jwt_secret, self.environment) {
            (Some(s), _) if s.len() < 32 => {
                anyhow::bail!("FIELDWORK_JWT_SECRET must be at least 32 bytes")
            }
            (None, Environment::Production) => {
                anyhow::bail!("FIELDWORK_JWT_SECRET is required in production")
            }
            _ => Ok(()),
        }
    }

    /// Pool checkout timeout.
    pub fn db_timeout(&self) -> Duration {
        Duration::from_secs(self.db_timeout_secs.max(1))
    }
}
