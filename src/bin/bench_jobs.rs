//! `bench_jobs`: the background jobs benchmark of issue 4, apart from the tests (which never assert timings).
//!
//! ```text
//! cargo build --release --bin bench_jobs
//! ./target/release/bench_jobs                                     # SQLite in a temporary directory
//! ./target/release/bench_jobs --database-url postgres://postgres@127.0.0.1:5432/fw_jobs
//! ```
//!
//! Over an EMPTY database it migrates, loads the demo org tree and users, generates `--customers` customers
//! and `--holdings` holdings with set-based SQL (birthdays uniform over the year, ~10 % lunar; maturities
//! uniform over the next 365 days, ~10 % loans with a next repayment date), then times:
//!
//! 1. scheduler passes (`scheduler::tick` over the default 7-day window): the first over the database as
//!    loaded, then `--passes` − 1 more, each after the reminders are emptied again, so the same work is
//!    timed several times; the verdict is on the median, and the first and slowest are printed beside it;
//! 2. a dispatcher draining `--notifications` push_outbox rows (one device per demo user) through
//!    `FcmGateway` to a minimal fake FCM v1 server in this process on loopback, with `--batch` and
//!    `--concurrency`.
//!
//! and prints a Markdown table with PASS/MISS against the targets (scheduler ≤ 3 s, dispatch ≥ 2,000/s).
//! The FCM assertion is signed with the TEST-ONLY key of `tests/fixtures/` (read at run time: run from the
//! repository root or pass `--key`); it signs nothing real.
//!
//! PostgreSQL: create the database empty first, e.g. `psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF
//! EXISTS fw_jobs' -c 'CREATE DATABASE fw_jobs'`. After the bulk load the bench runs `VACUUM ANALYZE` there
//! (as autovacuum would soon after such a load: statistics and the
//! visibility map); on SQLite it runs nothing of the kind (the server does not).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use fieldwork::clock::SystemClock;
use fieldwork::db::schema::{customers, push_outbox, users};
use fieldwork::db::{Db, DbConn};
use fieldwork::push::outbox::{DispatchSettings, dispatch_once};
use fieldwork::push::{FcmConfig, FcmGateway, PushGateway, ServiceAccountKey};

/// Command line of `bench_jobs`.
#[derive(Parser)]
#[command(
    name = "bench_jobs",
    about = "Scheduler pass and push dispatch over a generated large database (issue 4)"
)]
struct Cli {
    /// `postgres://…` (or `sqlite://PATH`) of an EMPTY database. Default: a fresh SQLite file in a temp dir.
    #[arg(long)]
    database_url: Option<String>,
    /// Customers to generate.
    #[arg(long, default_value_t = 1_000_000)]
    customers: i64,
    /// Holdings to generate.
    #[arg(long, default_value_t = 2_000_000)]
    holdings: i64,
    /// Notifications (and push_outbox rows) to dispatch.
    #[arg(long, default_value_t = 20_000)]
    notifications: i64,
    /// Dispatcher batch (rows leased per pass).
    #[arg(long, default_value_t = 1000)]
    batch: i64,
    /// Dispatcher concurrency (sends in flight).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The TEST-ONLY RSA key (PEM) that signs the fake FCM's OAuth2 assertion.
    #[arg(
        long,
        default_value = "tests/fixtures/TEST-ONLY-fake-fcm-service-account-key.pem"
    )]
    key: PathBuf,
    /// Scheduler passes to time: the first over the freshly loaded database, each further one after the
    /// reminders table is emptied again (the same work, to show the spread). The verdict is on the median.
    #[arg(long, default_value_t = 5)]
    passes: usize,
    /// Reuse a database an earlier run generated (same sizes) instead of requiring an empty one: only for
    /// iterating on the scheduler; reminders, notifications and the outbox are emptied first.
    #[arg(long)]
    reuse: bool,
}

const SCHEDULER_TARGET_SECS: f64 = 3.0;
const DISPATCH_TARGET_PER_SEC: f64 = 2000.0;

/// SQL spelling of literals and date arithmetic per backend.
#[derive(Clone, Copy)]
struct Dialect {
    pg: bool,
}

impl Dialect {
    fn ts(self, t: &str) -> String {
        if self.pg {
            format!("TIMESTAMP '{t}'")
        } else {
            format!("'{t}'")
        }
    }
    fn bool(self, b: bool) -> &'static str {
        match (self.pg, b) {
            (true, true) => "TRUE",
            (true, false) => "FALSE",
            (false, true) => "1",
            (false, false) => "0",
        }
    }
    /// `day + expr` days, as a DATE.
    fn date_plus(self, day: NaiveDate, expr: &str) -> String {
        if self.pg {
            format!("(DATE '{day}' + ({expr})::int)")
        } else {
            format!("date('{day}', '+' || ({expr}) || ' days')")
        }
    }
    /// 'MM-DD' of `day + expr` days.
    fn md_plus(self, day: NaiveDate, expr: &str) -> String {
        if self.pg {
            format!("to_char(DATE '{day}' + ({expr})::int, 'MM-DD')")
        } else {
            format!("strftime('%m-%d', '{day}', '+' || ({expr}) || ' days')")
        }
    }
    /// `WITH … SELECT` prefix over n = 1..=count (the body follows `FROM s`).
    fn series(self, count: i64) -> String {
        if self.pg {
            format!("WITH s(n) AS (SELECT generate_series(1, {count})::bigint)")
        } else {
            format!(
                "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count})"
            )
        }
    }
}

/// `CASE (expr) % len WHEN 0 THEN ids[0] … END`.
fn pick(expr: &str, ids: &[i64]) -> String {
    let mut s = format!("CASE ({expr}) % {} ", ids.len());
    for (i, id) in ids.iter().enumerate() {
        let _ = write!(s, "WHEN {i} THEN {id} ");
    }
    s.push_str("END");
    s
}

fn generate(
    conn: &mut DbConn,
    d: Dialect,
    now: DateTime<Utc>,
    customers_n: i64,
    holdings_n: i64,
) -> anyhow::Result<()> {
    let stamp = now.format("%Y-%m-%d %H:%M:%S").to_string();
    let ts = d.ts(&stamp);
    let today = fieldwork::domain::calendar::local_date(now);
    let leap_year = NaiveDate::from_ymd_opt(2000, 1, 1).context("date")?;
    let birth = NaiveDate::from_ymd_opt(1980, 1, 1).context("date")?;
    let managers: Vec<i64> = users::table
        .filter(users::role.eq("manager"))
        .order(users::id.asc())
        .select(users::id)
        .load(conn)?;
    if managers.is_empty() {
        bail!("no demo managers loaded");
    }
    let manager = pick("n", &managers);
    let f = d.bool(false);
    // Birthdays: day offset n % 366 over a leap year (so 02-29 occurs); one customer in ten (by n / 366, so
    // independent of the day) has a lunar birthday instead.
    let lunar = "(n / 366) % 10 = 0";
    let sql = format!(
        "INSERT INTO customers (kind, name, phone, birthday, birthday_md, lunar_month, lunar_day, lunar_leap, \
         tags, status, manager_id, originator_id, seq, created_at, updated_at) \
         {series} SELECT 'individual', 'Bench ' || n, '139' || (10000000 + n), {bday}, {md}, \
         CASE WHEN {lunar} THEN 1 + (n / 7) % 12 END, CASE WHEN {lunar} THEN 1 + (n / 3) % 30 END, {f}, \
         '[]', 'active', {manager}, {manager}, n, {ts}, {ts} FROM s",
        series = d.series(customers_n),
        bday = d.date_plus(birth, "n % 366"),
        md = d.md_plus(leap_year, "n % 366"),
    );
    conn.batch_execute(&sql)?;
    let first: Option<i64> = customers::table
        .select(diesel::dsl::min(customers::id))
        .first(conn)?;
    let first = first.context("no customers generated")?;
    // Holdings: one in ten a loan (next repayment uniform over the next 365 days), the others maturing
    // uniformly over the next 365 days.
    let loan = "n % 10 = 0";
    let sql = format!(
        "INSERT INTO holdings (customer_id, product_type, product_name, amount_fen, open_date, maturity_date, \
         status, next_repayment_date, overdue, seq, created_at, updated_at) \
         {series} SELECT {first} + (n % {customers_n}), \
         CASE WHEN {loan} THEN 'loan' ELSE 'time_deposit' END, 'Bench product ' || n, 100000 * (1 + n % 500), \
         {open}, CASE WHEN {loan} THEN {loan_end} ELSE {maturity} END, 'active', \
         CASE WHEN {loan} THEN {repay} END, {f}, n, {ts}, {ts} FROM s",
        series = d.series(holdings_n),
        open = d.date_plus(today - chrono::Duration::days(365), "n % 365"),
        loan_end = d.date_plus(today + chrono::Duration::days(365), "n % 365"),
        maturity = d.date_plus(today, "n % 365"),
        repay = d.date_plus(today, "(n / 10) % 365"),
    );
    conn.batch_execute(&sql)?;
    if d.pg {
        // What autovacuum does soon after a bulk insert: statistics, and the visibility map that lets the
        // pass's index-only scans skip the tables.
        for sql in [
            "VACUUM ANALYZE customers",
            "VACUUM ANALYZE holdings",
            "ANALYZE",
        ] {
            conn.batch_execute(sql)?;
        }
    } else {
        // The server's checkpointer would copy the load's write-ahead log into the database file within
        // the next seconds; do it now, as part of the load, so the timed pass does not share the disk and
        // a core with it.
        conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?;
    }
    Ok(())
}

/// Notifications, one device per demo user and one outbox row per notification.
fn outbox_rows(
    conn: &mut DbConn,
    d: Dialect,
    now: DateTime<Utc>,
    count: i64,
) -> anyhow::Result<()> {
    let ts = d.ts(&now.format("%Y-%m-%d %H:%M:%S").to_string());
    let f = d.bool(false);
    let all: Vec<i64> = users::table
        .order(users::id.asc())
        .select(users::id)
        .load(conn)?;
    let user = pick("n", &all);
    conn.batch_execute(&format!(
        "INSERT INTO devices (user_id, provider, token, platform, created_at, updated_at) \
         SELECT id, 'fcm', 'bench-token-' || id, 'android', {ts}, {ts} FROM users"
    ))?;
    conn.batch_execute(&format!(
        "INSERT INTO notifications (user_id, kind, title, body, link_type, link_id, urgent, dedupe_key, \
         deliver_at, created_at) \
         {series} SELECT {user}, 'customer_birthday', '客户生日提醒', 'Bench customer ' || n || ' 3 天后生日', \
         'customer', n, {f}, 'bench:' || n, {ts}, {ts} FROM s",
        series = d.series(count),
    ))?;
    conn.batch_execute(&format!(
        "INSERT INTO push_outbox (notification_id, device_id, status, attempts, next_attempt_at, created_at) \
         SELECT nt.id, dv.id, 'pending', 0, {ts}, {ts} FROM notifications nt \
         JOIN devices dv ON dv.user_id = nt.user_id WHERE nt.dedupe_key LIKE 'bench:%'"
    ))?;
    Ok(())
}

/// How many customers an earlier run generated (0 on an empty database).
fn generated(conn: &mut DbConn) -> anyhow::Result<i64> {
    Ok(customers::table.count().get_result(conn)?)
}

/// Empties what a scheduler pass and the dispatch write, so the next pass does the whole work again.
fn empty_jobs(conn: &mut DbConn, d: Dialect) -> anyhow::Result<()> {
    let tables = ["push_outbox", "notifications", "reminders", "devices"];
    if d.pg {
        conn.batch_execute(&format!("TRUNCATE {}", tables.join(", ")))?;
    } else {
        for t in tables {
            conn.batch_execute(&format!("DELETE FROM {t}"))?;
        }
    }
    Ok(())
}

/// (median, first, slowest) of the pass times (the upper median for an even count: never the flattering one).
fn spread(times: &[f64]) -> (f64, f64, f64) {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let first = times.first().copied().unwrap_or(0.0);
    let worst = sorted.last().copied().unwrap_or(0.0);
    (median, first, worst)
}

async fn token_endpoint() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "access_token": "x", "expires_in": 3600, "token_type": "Bearer"
    }))
}

async fn send_endpoint(path: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "name": format!("projects/{}/messages/1", path.into_inner())
    }))
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut tmp: Option<PathBuf> = None;
    let url = match &cli.database_url {
        Some(u) if u.starts_with("postgres") && !u.contains("sslmode=") => {
            let sep = if u.contains('?') { '&' } else { '?' };
            format!("{u}{sep}sslmode=disable")
        }
        Some(u) => u.clone(),
        None => {
            let dir = std::env::temp_dir().join(format!("bench_jobs-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir)?;
            let url = format!("sqlite://{}", dir.join("bench.db").display());
            tmp = Some(dir);
            url
        }
    };
    let result = run(&cli, &url).await;
    if let Some(dir) = tmp {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

async fn run(cli: &Cli, url: &str) -> anyhow::Result<()> {
    let db = Db::new(url, 4, Duration::from_secs(600))?;
    let d = Dialect {
        pg: !db.target().is_sqlite(),
    };
    let backend = if d.pg { "PostgreSQL" } else { "SQLite" };
    db.migrate()?;
    let now = Utc::now().trunc_subsecs(0);
    {
        let mut conn = db.get_sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let loaded = cli.reuse && generated(&mut conn)? == cli.customers;
        if loaded {
            empty_jobs(&mut conn, d)?;
            println!(
                "reusing the {} generated customers (--reuse)",
                cli.customers
            );
        } else {
            if !fieldwork::demo::load(&mut conn, now.naive_utc())
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
            {
                bail!("the database is not empty");
            }
            let t = Instant::now();
            generate(&mut conn, d, now, cli.customers, cli.holdings)?;
            println!(
                "generated {} customers and {} holdings on {backend} in {:.1} s (not part of the figures)",
                cli.customers,
                cli.holdings,
                secs(t.elapsed())
            );
        }
    }

    // 1. Scheduler passes: the first over the database as loaded, then again from no reminders.
    let mut times = Vec::with_capacity(cli.passes.max(1));
    let mut report = None;
    for pass in 0..cli.passes.max(1) {
        if pass > 0 {
            let mut conn = db.get_sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
            empty_jobs(&mut conn, d)?;
        }
        let t = Instant::now();
        let r = fieldwork::scheduler::tick(&db, now, fieldwork::scheduler::Settings::default())
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let took = secs(t.elapsed());
        println!(
            "scheduler pass {}: created {} reminders, followed {}, notified {} in {took:.3} s",
            pass + 1,
            r.created,
            r.followed,
            r.notified
        );
        times.push(took);
        report = Some(r);
    }
    let report = report.context("no pass ran")?;
    let (sched, first, worst) = spread(&times);

    // 2. Dispatch.
    {
        let mut conn = db.get_sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let t = Instant::now();
        outbox_rows(&mut conn, d, now, cli.notifications)?;
        println!(
            "queued {} notifications in {:.1} s (not part of the figures)",
            cli.notifications,
            secs(t.elapsed())
        );
    }
    let queued: i64 = db
        .read(|c| {
            Ok(push_outbox::table
                .filter(push_outbox::status.eq("pending"))
                .count()
                .get_result(c)?)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = HttpServer::new(|| {
        App::new()
            .route("/token", web::post().to(token_endpoint))
            .route(
                "/v1/projects/{project}/messages:send",
                web::post().to(send_endpoint),
            )
    })
    .workers(2)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);
    let base = format!("http://{addr}");
    let pem = std::fs::read_to_string(&cli.key)
        .with_context(|| format!("reading the TEST-ONLY key {}", cli.key.display()))?;
    let key = ServiceAccountKey {
        client_email: "bench@bench.iam.gserviceaccount.com".into(),
        private_key: pem,
        token_uri: format!("{base}/token"),
        project_id: Some("bench".into()),
        private_key_id: None,
    };
    let mut config = FcmConfig::new(&cli.key);
    config.base_url = base;
    let gateway: Arc<dyn PushGateway> =
        Arc::new(FcmGateway::with_key(&config, key, Arc::new(SystemClock))?);
    let settings = DispatchSettings {
        batch: cli.batch,
        concurrency: cli.concurrency,
        ..DispatchSettings::default()
    };
    let (mut sent, mut other, mut passes) = (0usize, 0usize, 0usize);
    let t = Instant::now();
    loop {
        let r = dispatch_once(&db, &gateway, &settings, Utc::now())
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if r.leased == 0 {
            break;
        }
        passes += 1;
        sent += r.sent;
        other += r.retried + r.dead;
    }
    let elapsed = secs(t.elapsed());
    handle.stop(false).await;
    let _ = server_task.await;
    let rate = sent as f64 / elapsed;
    println!(
        "dispatch: {sent} sent of {queued} queued ({other} not sent) in {passes} passes, {elapsed:.3} s = \
         {rate:.0} notifications/s (batch {}, concurrency {})",
        cli.batch, cli.concurrency
    );

    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!();
    println!(
        "### Issue 4 benchmark on {backend}: {} customers, {} holdings",
        cli.customers, cli.holdings
    );
    println!();
    println!("| Figure | Measured | Target | Result |");
    println!("|---|---|---|---|");
    println!(
        "| Scheduler pass, 7-day window ({} reminders created, {} notified): median of {} passes (first {first:.3} s, slowest {worst:.3} s) | {sched:.3} s | ≤ {SCHEDULER_TARGET_SECS} s | {} |",
        report.created,
        report.notified,
        times.len(),
        verdict(sched <= SCHEDULER_TARGET_SECS)
    );
    println!(
        "| Dispatch of {queued} to fake FCM on loopback (batch {}, concurrency {}) | {rate:.0} /s ({elapsed:.2} s) | ≥ {DISPATCH_TARGET_PER_SEC} /s | {} |",
        cli.batch,
        cli.concurrency,
        verdict(rate >= DISPATCH_TARGET_PER_SEC && sent as i64 == queued)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_takes_the_median_first_and_slowest() {
        assert_eq!(spread(&[2.5, 2.1, 3.1, 2.4, 2.2]), (2.4, 2.5, 3.1));
        assert_eq!(spread(&[2.0, 3.0]), (3.0, 2.0, 3.0));
        assert_eq!(spread(&[1.5]), (1.5, 1.5, 1.5));
        assert_eq!(spread(&[]), (0.0, 0.0, 0.0));
    }
}
