//! Database access: the two-backend connection type, the pools, the blocking helpers every handler uses,
//! and the embedded migrations. SQL itself lives in `db::repo`; nothing here knows about HTTP.

pub mod models;
pub mod repo;
pub mod schema;
pub mod time;

use std::path::PathBuf;
use std::sync::Arc;
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
pub struct Manager {
    target: DbTarget,
    /// The longest a statement may run (PostgreSQL `statement_timeout`) or wait for a lock (SQLite
    /// `busy_timeout`), and the longest a new PostgreSQL connection may take to open.
    bound: Duration,
    /// SQLite: whether a commit on these connections may run a WAL checkpoint itself (SQLite's default).
    /// Off for the write connection, whose checkpoints `start_checkpointer`'s thread runs instead.
    autocheckpoint: bool,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match &self.target {
            DbTarget::Sqlite(path) => {
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(r2d2::Error::ConnectionError)?;
                // `temp_store = MEMORY`: the writer runs each request in a savepoint of its batch, and
                // SQLite keeps the pages a savepoint may have to restore in a sub-journal, a temporary
                // file by default (measured: a sixth of the writer's time went to writing it).
                c.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {}; \
                     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA temp_store = MEMORY;",
                    self.bound.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                if !self.autocheckpoint {
                    c.batch_execute("PRAGMA wal_autocheckpoint = 0;")
                        .map_err(r2d2::Error::QueryError)?;
                }
                Ok(DbConn::Sqlite(c))
            }
            DbTarget::Postgres(url) => {
                let mut c = diesel::PgConnection::establish(&with_connect_timeout(url, self.bound))
                    .map_err(r2d2::Error::ConnectionError)?;
                c.batch_execute(&format!(
                    "SET statement_timeout = {}",
                    self.bound.as_millis()
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConn::Pg(c))
            }
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

/// A PostgreSQL URL with libpq's `connect_timeout` (whole seconds, at least 2) unless it names one: opening a
/// connection to a server that does not answer fails instead of waiting for the operating system's TCP
/// timeout.
fn with_connect_timeout(url: &str, bound: Duration) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={}", bound.as_secs().max(2))
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
/// PostgreSQL. On SQLite, `write` hands its work to one writer thread (`Writer`) instead of a blocking task.
#[derive(Clone)]
pub struct Db {
    target: DbTarget,
    read: Pool,
    write: Pool,
    writer: Option<Writer>,
    /// One permit per pooled connection: a request waits for one here, asynchronously, before it takes a
    /// blocking thread. Without it, a burst of requests parked one blocking thread each on the pool's
    /// checkout (32 connections: 24 threads waiting for 8 connections), and every such thread kept its own
    /// allocator cache (the server's peak RSS grew by ~60 MB in the sync benchmark).
    slots: Arc<tokio::sync::Semaphore>,
    /// The longest a request waits for the database, connection and work together, before it is answered
    /// 503 (the work may still finish on its blocking thread, which keeps its slot until then).
    timeout: Duration,
    /// Background jobs: `timeout` is their longer bound, applied on PostgreSQL as the statement timeout of
    /// their writes (their reads keep the request bound).
    jobs: bool,
}

/// A unit of work for the SQLite writer thread: runs inside the batch's transaction and returns what
/// delivers its answer once the batch's commit is known (`Ok`) or failed (`Err`, with the reason).
type WriteJob = Box<dyn FnOnce(&mut DbConn) -> Deliver + Send>;
type Deliver = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Most write requests the SQLite writer commits together.
const MAX_WRITE_BATCH: usize = 64;

/// The SQLite writer: one thread that takes the write connection for each batch of queued writes and runs
/// them in one transaction, each in its own savepoint (so one write's error undoes only that write), and
/// answers them after the one COMMIT.
///
/// Why: with one write connection behind a pool, every write handed the connection to the next blocking
/// thread through a condition variable and paid its own COMMIT; under 32 concurrent check-ins the
/// connection sat idle between writes (measured: the server used half a core at 300 check-ins/s). The
/// writer thread never waits between queued writes, and one COMMIT (WAL append, checkpoint check) serves
/// the batch. Sync stays correct: sequence numbers are taken in the batch's order and all of them become
/// visible at once, at the commit; no answer is sent before it.
#[derive(Clone)]
struct Writer {
    jobs: std::sync::mpsc::Sender<WriteJob>,
    /// Never sent on: when the last clone is dropped, the checkpointer thread ends.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

/// How often the checkpointer copies the WAL's committed pages into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Starts the SQLite checkpointer: a thread with its own connection that runs a PASSIVE checkpoint every
/// [`CHECKPOINT_EVERY`] (it never waits for the writer or readers, and copies what it can).
///
/// Why: with SQLite's default, the commit that takes the WAL past 1,000 pages runs the checkpoint itself
/// (copy the pages, `fsync` the database file) on the writer thread, and every write queued behind that
/// batch waited for it: the check-in benchmark's p99 latency. The write connection has
/// `wal_autocheckpoint = 0`, so no commit checkpoints; readers never do.
fn start_checkpointer(manager: Manager) -> anyhow::Result<std::sync::mpsc::Sender<()>> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut conn = None;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(CHECKPOINT_EVERY)
            {
                if conn.is_none() {
                    conn = manager
                        .connect()
                        .inspect_err(
                            |e| tracing::warn!(error = %e, "sqlite checkpointer: no connection"),
                        )
                        .ok();
                }
                let Some(c) = conn.as_mut() else { continue };
                if let Err(e) = c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
                    tracing::warn!(error = %e, "sqlite checkpoint failed");
                    conn = None;
                }
            }
        })?;
    Ok(stop)
}

impl Writer {
    /// Starts the thread; it ends when the last `Db` clone (the last sender) is dropped.
    fn start(pool: Pool, manager: Manager) -> anyhow::Result<Self> {
        let checkpointer = start_checkpointer(manager)?;
        let (jobs, queue) = std::sync::mpsc::channel::<WriteJob>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_WRITE_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    run_write_batch(&pool, batch);
                }
            })?;
        Ok(Self {
            jobs,
            _checkpointer: checkpointer,
        })
    }
}

/// Runs a batch in one transaction and delivers every answer after the commit.
fn run_write_batch(pool: &Pool, batch: Vec<WriteJob>) {
    let mut conn = match pool.get() {
        Ok(c) => c,
        Err(e) => {
            let reason = e.to_string();
            for job in batch {
                // Never run: its answer is the pool's error (the job's sender is dropped unanswered).
                drop(job);
            }
            tracing::warn!(error = %reason, "sqlite writer: no write connection");
            return;
        }
    };
    let mut delivers = Vec::with_capacity(batch.len());
    let mut panicked = false;
    let outcome = conn.transaction::<_, diesel::result::Error, _>(|c| {
        // Take the write lock first (as `BEGIN IMMEDIATE` would): a job that reads before it writes must
        // not find its snapshot stale when another process wrote meanwhile (SQLITE_BUSY without waiting).
        // Taking it first makes the busy timeout apply instead. The statement that takes it reads the
        // change counter, and the batch hands out sequence numbers in memory (`repo::batch`).
        crate::db::repo::batch::begin(c)?;
        for job in batch {
            if panicked {
                // Unanswered (sender dropped): 503, as a panic in a blocking task.
                drop(job);
                continue;
            }
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(c))) {
                Ok(deliver) => delivers.push(deliver),
                Err(_) => panicked = true,
            }
        }
        if panicked {
            // A panic may have left a savepoint open: give up the whole batch and the connection.
            Err(diesel::result::Error::RollbackTransaction)
        } else {
            crate::db::repo::batch::end(c)
        }
    });
    crate::db::repo::batch::abandon();
    if panicked {
        mark_connection_broken();
    }
    drop(conn);
    let result = outcome.map_err(|e| e.to_string());
    for deliver in delivers {
        deliver(result.clone());
    }
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
        let manager = |autocheckpoint: bool| Manager {
            target: target.clone(),
            bound: timeout,
            autocheckpoint,
        };
        let build = |size: u32, manager: Manager| {
            r2d2::Pool::builder()
                .max_size(size)
                .min_idle(Some(0))
                .connection_timeout(timeout)
                .test_on_check_out(false)
                .build_unchecked(manager)
        };
        let read = build(pool_size.max(1), manager(true));
        let (write, writer) = if target.is_sqlite() {
            let write = build(1, manager(false));
            let writer = Writer::start(write.clone(), manager(true))?;
            (write, Some(writer))
        } else {
            (read.clone(), None)
        };
        let slots = Arc::new(tokio::sync::Semaphore::new(read.max_size() as usize));
        Ok(Self {
            target,
            read,
            write,
            writer,
            slots,
            timeout,
            jobs: false,
        })
    }

    /// This database for background jobs (scheduler passes, push dispatch), whose work may take up to
    /// `bound`: requests keep the configured bound, the jobs' statements get this one.
    pub fn for_jobs(&self, bound: Duration) -> Self {
        Self {
            timeout: bound,
            jobs: true,
            ..self.clone()
        }
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
        self.run_blocking(self.read.clone(), f).await
    }

    /// `read` for handlers that run many statements: on SQLite they share one read transaction, so they
    /// see one snapshot and take SQLite's shared WAL lock once instead of once per statement (a tenth of
    /// `/me/today`'s time went to taking and dropping it). On PostgreSQL each statement runs on its own,
    /// as with `read`: a transaction there costs two more round trips.
    pub async fn read_many<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        self.run_blocking(self.read.clone(), move |conn| match conn {
            DbConn::Sqlite(_) => conn.transaction(f),
            DbConn::Pg(_) => f(conn),
        })
        .await
    }

    /// Runs `f` inside one transaction on the write connection, off the async workers.
    pub async fn write<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        let Some(writer) = &self.writer else {
            // A background job's statements may take up to its bound (for this transaction only).
            let raise = self
                .jobs
                .then(|| format!("SET LOCAL statement_timeout = {}", self.timeout.as_millis()));
            return self
                .run_blocking(self.write.clone(), move |conn| {
                    conn.transaction(|c| {
                        if let Some(sql) = &raise {
                            c.batch_execute(sql)?;
                        }
                        f(c)
                    })
                })
                .await;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let job: WriteJob = Box::new(move |conn| {
            if tx.is_closed() {
                // The request was answered 503 meanwhile (the bound passed while it queued): what it
                // was told must stay true, so its write is not carried out.
                return Box::new(|_| {});
            }
            // A savepoint inside the batch's transaction: an error undoes this write only, with the
            // rows it queued for the end of the batch.
            let result = span.in_scope(|| crate::db::repo::batch::write(conn, f));
            Box::new(move |commit: Result<(), String>| {
                let answer = match commit {
                    Ok(()) => result,
                    // The batch did not commit, so neither did this write, even if it succeeded.
                    Err(e) => result.and(Err(AppError::Unavailable(e))),
                };
                let _ = tx.send(answer);
            })
        });
        writer
            .jobs
            .send(job)
            .map_err(|_| AppError::Unavailable("the database writer has stopped".into()))?;
        tokio::time::timeout(self.timeout, rx)
            .await
            .map_err(|_| self.too_slow())?
            .map_err(|_| {
                AppError::Unavailable(
                    "the write was not carried out (no connection or a panic)".into(),
                )
            })?
    }

    fn too_slow(&self) -> AppError {
        AppError::Unavailable(format!(
            "the database did not answer within {} ms",
            self.timeout.as_millis()
        ))
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

impl Db {
    /// Runs `f` on a connection of `pool` on a blocking thread, once a slot is free (see `slots`).
    async fn run_blocking<T, F>(&self, pool: Pool, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        let work = async move {
            let slot = self
                .slots
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
            let span = tracing::Span::current();
            actix_web::web::block(move || {
                // Held until the work is done, even if the request was answered meanwhile: a database
                // that stopped answering holds at most one thread per slot.
                let _slot = slot;
                let _guard = span.enter();
                let mut conn = pool
                    .get()
                    .map_err(|e| AppError::Unavailable(e.to_string()))?;
                f(&mut conn)
            })
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))?
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| self.too_slow())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The write connection never checkpoints (`wal_autocheckpoint = 0`) and readers do not write, so the
    /// main database file of a new database keeps its first page only (written when WAL mode is set) until
    /// the checkpointer copies the WAL into it.
    #[test]
    fn the_checkpointer_copies_committed_pages_into_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fw.db");
        let db = Db::new(
            &format!("sqlite://{}", path.display()),
            2,
            Duration::from_secs(5),
        )
        .unwrap();
        db.migrate().unwrap();
        let wal = dir.path().join("fw.db-wal");
        assert!(
            std::fs::metadata(&wal).unwrap().len() > 0,
            "the writes are in the WAL"
        );
        let before = std::fs::metadata(&path).unwrap().len();
        // Polls the outcome (up to 10 s), it times nothing: the first PASSIVE checkpoint runs within 200 ms.
        let mut copied = false;
        for _ in 0..200 {
            if std::fs::metadata(&path).unwrap().len() > before {
                copied = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            copied,
            "no checkpoint copied the WAL into the database file"
        );
        drop(db);
    }

    /// A migrated SQLite database with its writer thread, and a runtime to await writes on.
    fn writer_db() -> (tempfile::TempDir, Db, tokio::runtime::Runtime) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("fw.db").display());
        let db = Db::new(&url, 2, Duration::from_secs(5)).unwrap();
        db.migrate().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        (dir, db, rt)
    }

    /// The writer hands out sequence numbers in memory within a batch and stores the last one before the
    /// batch commits: numbers never repeat across batches, a failed write leaves only a gap, and the
    /// stored counter is the last number taken (the sync token of a caller who has everything).
    #[test]
    fn a_write_batch_hands_out_sequence_numbers_and_stores_the_last() {
        use crate::db::repo::changes;

        let (_dir, db, rt) = writer_db();
        let start = changes::current(&mut db.get_sync().unwrap()).unwrap();
        // Queued together, so they may share a batch; one takes two numbers, one fails after taking one.
        let writes = (0..40).map(|i| {
            db.write(move |c| {
                let first = changes::bump(c)?;
                if i % 10 == 3 {
                    return Err(AppError::Conflict(
                        crate::error::ErrorCode::VisitAlreadyClosed,
                    ));
                }
                let second = if i % 10 == 5 {
                    Some(changes::bump(c)?)
                } else {
                    None
                };
                Ok((first, second))
            })
        });
        let results = rt.block_on(futures_util::future::join_all(writes));
        let mut taken: Vec<i64> = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok((first, second)) => {
                    taken.push(first);
                    taken.extend(second);
                }
                Err(_) => assert_eq!(i % 10, 3, "only the failing writes fail"),
            }
        }
        assert_eq!(taken.len(), 36 + 4);
        let mut sorted = taken.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), taken.len(), "no number handed out twice");
        assert!(sorted[0] > start);
        let stored = changes::current(&mut db.get_sync().unwrap()).unwrap();
        assert!(
            stored >= *sorted.last().unwrap(),
            "the counter holds the last number taken"
        );
        // A later batch continues after it.
        let next = rt.block_on(db.write(|c| Ok(changes::bump(c)?))).unwrap();
        assert!(next > stored);
        assert_eq!(changes::current(&mut db.get_sync().unwrap()).unwrap(), next);
    }

    /// Audit rows queued by the writes of a batch are inserted before it commits, in the writes' order;
    /// a write that fails takes its queued rows with it.
    #[test]
    fn a_failed_write_leaves_no_queued_rows_behind() {
        use crate::db::models::NewAuditEvent;
        use crate::db::repo::audit;
        use crate::db::schema::audit_events;

        let (_dir, db, rt) = writer_db();
        let event = |i: usize| NewAuditEvent {
            actor_id: None,
            action: "test.write".into(),
            entity: "test".into(),
            entity_id: i.to_string(),
            org_path: "/".into(),
            at: chrono::NaiveDateTime::default(),
            request_id: format!("r{i}"),
            client_ip: None,
            detail: None,
        };
        let writes = (0..150).map(|i| {
            db.write(move |c| {
                audit::insert(c, event(i))?;
                if i % 7 == 3 {
                    return Err(AppError::Conflict(
                        crate::error::ErrorCode::VisitAlreadyClosed,
                    ));
                }
                Ok(())
            })
        });
        let results = rt.block_on(futures_util::future::join_all(writes));
        let failed = results.iter().filter(|r| r.is_err()).count();
        assert_eq!(failed, (0..150).filter(|i| i % 7 == 3).count());
        let stored: Vec<String> = audit_events::table
            .filter(audit_events::action.eq("test.write"))
            .order(audit_events::id.asc())
            .select(audit_events::entity_id)
            .load(&mut db.get_sync().unwrap())
            .unwrap();
        let want: Vec<String> = (0..150)
            .filter(|i| i % 7 != 3)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            stored, want,
            "the succeeded writes' rows, in order, and no others"
        );
    }
}
