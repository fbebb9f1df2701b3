//! Database access: the two-backend connection type, the pools, the blocking helpers every handler uses,
//! and the embedded migrations. SQL itself lives in `db::repo`; nothing here knows about HTTP.

pub mod models;
pub mod repo;
pub mod schema;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::AppError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection to either backend; diesel generates the shared `MultiBackend` for it.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// The embedded default.
    Sqlite(diesel::SqliteConnection),
    /// Production and scale-out.
    Pg(diesel::PgConnection),
}

/// Runs one diesel query on whichever backend `conn` is. Used only where the shared `MultiBackend`
/// lacks a feature both backends have (e.g. `ON CONFLICT`): the query is still written once.
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Pg($c) => $body,
        }
    };
}

/// Which backend a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbTarget {
    /// `sqlite://PATH`: a file (never `:memory:` behind a pool).
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to libpq as is.
    Postgres(String),
}

impl DbTarget {
    /// Parses a `DATABASE_URL`; unknown schemes are refused.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path.contains(":memory:") {
                return Err(
                    "sqlite:// needs a file path (an in-memory database cannot be pooled)".into(),
                );
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err("DATABASE_URL must start with sqlite:// or postgres://".into())
        }
    }

    /// True for SQLite.
    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }
}

/// An r2d2 manager that picks the backend from the URL scheme (diesel's own would try each in turn).
#[derive(Debug, Clone)]
pub struct Manager(DbTarget);

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match &self.0 {
            DbTarget::Sqlite(path) => {
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(r2d2::Error::ConnectionError)?;
                c.batch_execute(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Sqlite(c))
            }
            DbTarget::Postgres(url) => diesel::PgConnection::establish(url)
                .map(DbConn::Pg)
                .map_err(r2d2::Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        use diesel::r2d2::R2D2Connection;
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        use diesel::r2d2::R2D2Connection;
        // diesel does not notice a PostgreSQL connection whose server went away; the error mapping marks it.
        conn.is_broken() || CONNECTION_BROKEN.with(|b| b.replace(false))
    }
}

thread_local! {
    static CONNECTION_BROKEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the connection in use on this thread as broken, so the pool drops it instead of reusing it.
pub fn mark_connection_broken() {
    CONNECTION_BROKEN.with(|b| b.set(true));
}

/// A pool of connections.
pub type Pool = r2d2::Pool<Manager>;
/// A connection checked out of a pool.
pub type Conn = PooledConnection<Manager>;

/// Reads go to a pool; writes to a pool of one on SQLite (one writer avoids lock waits), the same pool on
/// PostgreSQL.
#[derive(Clone)]
pub struct Db {
    target: DbTarget,
    read: Pool,
    write: Pool,
}

impl Db {
    /// Builds the pools without connecting eagerly, so a server can start while the database is briefly away.
    pub fn new(url: &str, pool_size: u32, timeout: Duration) -> anyhow::Result<Self> {
        let target = DbTarget::parse(url).map_err(anyhow::Error::msg)?;
        if let DbTarget::Sqlite(path) = &target
            && let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let build = |size: u32| {
            r2d2::Pool::builder()
                .max_size(size)
                .min_idle(Some(0))
                .connection_timeout(timeout)
                .test_on_check_out(false)
                .build_unchecked(Manager(target.clone()))
        };
        let read = build(pool_size.max(1));
        let write = if target.is_sqlite() {
            build(1)
        } else {
            read.clone()
        };
        Ok(Self {
            target,
            read,
            write,
        })
    }

    /// The backend in use.
    pub fn target(&self) -> &DbTarget {
        &self.target
    }

    /// Pool statistics for `/metrics`: (connections, idle) of the read pool.
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.read.state();
        (s.connections, s.idle_connections)
    }

    /// The pool size configured for reads.
    pub fn pool_max(&self) -> u32 {
        self.read.max_size()
    }

    /// Runs `f` on a read connection off the async workers.
    pub async fn read<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        run_blocking(self.read.clone(), f).await
    }

    /// Runs `f` inside one transaction on the write connection, off the async workers.
    pub async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        run_blocking(self.write.clone(), move |conn| conn.transaction(f)).await
    }

    /// A connection for synchronous callers (CLI commands, demo loader, tests).
    pub fn get_sync(&self) -> Result<Conn, AppError> {
        self.write
            .get()
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }

    /// Readiness: a pooled round trip, and on SQLite the file must still be where we opened it.
    pub async fn ping(&self) -> Result<(), AppError> {
        if let DbTarget::Sqlite(path) = &self.target
            && !path.exists()
        {
            return Err(AppError::Unavailable(format!(
                "database file {} is gone",
                path.display()
            )));
        }
        self.read(|conn| {
            use diesel::r2d2::R2D2Connection;
            conn.ping().map_err(|e| {
                mark_connection_broken();
                AppError::Unavailable(e.to_string())
            })
        })
        .await
    }

    /// Applies all pending migrations.
    pub fn migrate(&self) -> anyhow::Result<usize> {
        let mut conn = self.write.get()?;
        run_migrations(&mut conn)
    }
}

/// Applies pending migrations on one connection and returns how many ran.
pub fn run_migrations(conn: &mut DbConn) -> anyhow::Result<usize> {
    let done = match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Pg(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    done.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

/// Reverts every applied migration (used by the migration round-trip test).
pub fn revert_all_migrations(conn: &mut DbConn) -> anyhow::Result<usize> {
    let done = match conn {
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Pg(c) => c
            .revert_all_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    };
    done.map_err(|e| anyhow::anyhow!("migration revert failed: {e}"))
}

async fn run_blocking<T, F>(pool: Pool, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
{
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        let _guard = span.enter();
        let mut conn = pool
            .get()
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        f(&mut conn)
    })
    .await
    .map_err(|e| AppError::Unavailable(e.to_string()))?
}
