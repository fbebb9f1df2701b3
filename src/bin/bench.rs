//! `bench`: a load report of a release build, apart from the tests (which never assert timings).
//!
//! It builds nothing. Build first, then run it:
//!
//! ```text
//! cargo build --release --bins
//! ./target/release/bench                                   # SQLite in a temporary directory
//! ./target/release/bench --database-url postgres://postgres@127.0.0.1:5432/fw_bench
//! ```
//!
//! It starts the sibling `fieldwork` executable (`target/release/fieldwork serve --demo`: about 5,000
//! customers over 24 managers) on a free loopback port and drives it with `wrk` (installed with apt-get when
//! missing), one endpoint after the other, `--connections` (32) connections for `--duration` (10) seconds
//! each, then prints a Markdown table (requests/s, p50, p99, server RSS, share of the `/readyz` requests/s of
//! the same run) and the targets of issues 2, 3 and 4 with PASS/MISS.
//!
//! - `/healthz`, `/readyz`, `GET /api/v1/me` and `GET /api/v1/users?limit=50` as `admin`;
//! - `GET /api/v1/customers?limit=50` and `GET /api/v1/customers/{id}` as `M0001` (208 customers of their
//!   own), the detail on one of those customers;
//! - `GET /api/v1/me/today` (the phone's home screen) as `M0001`;
//! - a full first sync (`GET /api/v1/sync`, then `?since=next_token` while `has_more`) as `admin`, whose
//!   scope is all 5,000 customers: one client, idle server, wall time of all pages (best and median of
//!   `--sync-runs`); "not available" when the route answers 404;
//! - check-in (`POST /api/v1/visits`) and check-out (`POST /api/v1/visits/{id}/checkout`), each timed on
//!   its own: a manager may have one open visit only, so the run alternates rounds. In a check-in round
//!   every one of `--checkin-managers` managers (the 24 demo managers and bench managers created through
//!   the API, one customer each) checks in once; in the next round each checks out of that visit. Rounds go
//!   on until the check-in rounds add up to `--duration`. A row's requests/s is its successes over the
//!   summed time of its rounds (first request to last answer, as the generated wrk Lua script measures it),
//!   its p50/p99 over every request of its rounds. It runs after the reads and the sync, since it adds
//!   visits that a later sync would carry;
//! - `/readyz` once more, last, always: its share of the first `/readyz` row shows how far the speed of this
//!   shared machine drifted during the run (measured: one build's detail share was 52–64 % in three runs minutes apart).
//!
//! The database must be **empty** so the demo data loads. The default is a fresh SQLite file in a temporary
//! directory (removed afterwards). `--database-url postgres://…` uses the given database as is and creates
//! nothing but statistics (`ANALYZE` after the demo load, as autovacuum would): create it empty first,
//! e.g. `psql -h 127.0.0.1 -U postgres -c 'DROP DATABASE IF EXISTS fw_bench' -c 'CREATE DATABASE fw_bench'`.
//!
//! A missed target is reported, not failed: the exit code is non-zero only on real failures (the server
//! does not start, a login or a probe request fails, `wrk` cannot run).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};

/// Command line of `bench`.
#[derive(Parser)]
#[command(
    name = "bench",
    about = "Load report of target/release/fieldwork, driven by wrk"
)]
struct Cli {
    /// Seconds of load per endpoint.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent connections (wrk -c).
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// `postgres://…` (or `sqlite://PATH`) of an EMPTY database, used as is: the demo data is loaded into it.
    /// Default: a fresh SQLite file in a temporary directory.
    #[arg(long)]
    database_url: Option<String>,
    /// How many full first syncs to time (the best and the median are reported).
    #[arg(long, default_value_t = 3)]
    sync_runs: u32,
    /// Page size asked of the sync (`limit`); default: the server's.
    #[arg(long)]
    sync_limit: Option<u32>,
    /// Managers in the check-in rounds (the 24 demo managers and bench managers created for the run); each
    /// checks in once per round.
    #[arg(long, default_value_t = 1000)]
    checkin_managers: usize,
    /// Run only the steps whose name contains one of these comma-separated words (e.g. `me,check-in`);
    /// `/readyz` always runs, as the reference.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// The reference row for the shares.
const READYZ: &str = "/readyz";
/// The reference measured once more at the end of the run (its share of the first is the drift).
const READYZ_AGAIN: &str = "/readyz (again, last)";
/// Target: p99 latency of every endpoint, in ms.
const MAX_P99_MS: f64 = 20.0;
/// Target: peak resident memory of the server (VmHWM), in MB.
const MAX_PEAK_RSS_MB: f64 = 150.0;
/// Target: wall time of a full first sync of 5,000 customers, in seconds.
const MAX_SYNC_SECS: f64 = 2.0;
/// How long the server may take to answer `/healthz` (the demo load included).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// The manager whose customers are listed and read (208 own customers in the demo).
const LIST_MANAGER: &str = "M0001";
/// Demo managers M0001–M0024.
const DEMO_MANAGERS: usize = 24;

/// One table row.
struct Row {
    name: String,
    /// Who sent the requests.
    who: String,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Server VmRSS right after the run, in kB.
    rss_kb: u64,
    /// Target: at least this share of the `/readyz` requests/s of the same run.
    min_share: Option<f64>,
    /// Errors seen in the run (non-2xx answers, socket errors); a row with any is INVALID.
    problems: Vec<String>,
}

/// The timed first syncs.
enum SyncOutcome {
    /// The route answered 404.
    NotAvailable,
    Timed(SyncTiming),
}

struct SyncTiming {
    /// Wall time of each full sync, in seconds.
    runs: Vec<f64>,
    pages: usize,
    /// Items per entity of one full sync (`changes.*`, plus `removed`).
    items: BTreeMap<String, usize>,
    bytes: usize,
    /// Same for a manager, for scale (one run).
    manager: Option<(f64, usize, usize)>,
}

/// A scratch directory (database, server log, Lua script), removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The server child process, killed on drop (also when the benchmark fails).
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Current VmRSS in kB.
    fn rss_kb(&self) -> anyhow::Result<u64> {
        Ok(memory_kb(self.child.id())?.0)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.connections == 0 || cli.duration == 0 {
        bail!("--connections and --duration must be at least 1");
    }
    ensure_wrk()?;
    let exe = std::env::current_exe()?
        .parent()
        .context("no directory of the bench executable")?
        .join("fieldwork");
    if !exe.is_file() {
        bail!(
            "{} not found: build it first with `cargo build --release --bins`",
            exe.display()
        );
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let scratch = Scratch(
        std::env::temp_dir().join(format!("fieldwork-bench-{}-{nanos}", std::process::id())),
    );
    std::fs::create_dir_all(&scratch.0)
        .with_context(|| format!("cannot create {}", scratch.0.display()))?;
    let database_url = match &cli.database_url {
        Some(url) => without_tls(url),
        None => format!("sqlite://{}", scratch.0.join("bench.db").display()),
    };
    let backend = if database_url.starts_with("sqlite://") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let load_before = loadavg();
    let started = Instant::now();
    let server = start_server(&exe, &database_url, &scratch.0)?;
    eprintln!(
        "bench: server up on port {} after {:.1} s (demo data loaded)",
        server.port,
        started.elapsed().as_secs_f64()
    );
    if backend == "PostgreSQL" {
        analyze(&database_url)?;
    }
    let port = server.port;
    let wanted = |name: &str| {
        name == READYZ || cli.only.is_empty() || cli.only.iter().any(|w| name.contains(w.as_str()))
    };
    let mut rows = Vec::new();
    let mut get = |name: &str, user: &str, path: &str, min_share: Option<f64>| {
        if !wanted(name) {
            return Ok(());
        }
        // Access tokens last 15 minutes: a fresh one per endpoint keeps long runs valid.
        let token = login(port, user)?;
        let probe = http(port, "GET", path, Some(&token), None)?;
        if probe.status != 200 {
            bail!(
                "probe of {name} as {user} answered {}: {}",
                probe.status,
                probe.body
            );
        }
        eprintln!("bench: {name} as {user} for {} s…", cli.duration);
        let mut row = run_wrk_get(&cli, port, &token, name, path)?;
        row.who = user.to_owned();
        row.min_share = min_share;
        row.rss_kb = server.rss_kb()?;
        rows.push(row);
        anyhow::Ok(())
    };
    get("/healthz", "admin", "/healthz", None)?;
    get(READYZ, "admin", READYZ, None)?;
    get("GET /api/v1/me", "admin", "/api/v1/me", Some(0.60))?;
    get(
        "GET /api/v1/users?limit=50",
        "admin",
        "/api/v1/users?limit=50",
        Some(0.30),
    )?;
    let manager = login(port, LIST_MANAGER)?;
    let (own_customers, detail_id) = manager_customers(port, &manager)?;
    let list_name = "GET /api/v1/customers?limit=50";
    get(
        list_name,
        LIST_MANAGER,
        "/api/v1/customers?limit=50",
        Some(0.30),
    )?;
    get(
        "GET /api/v1/customers/{id}",
        LIST_MANAGER,
        &format!("/api/v1/customers/{detail_id}"),
        Some(0.50),
    )?;
    get(
        "GET /api/v1/me/today",
        LIST_MANAGER,
        "/api/v1/me/today",
        Some(0.30),
    )?;
    let sync = if wanted("sync") {
        eprintln!("bench: full first sync as admin, {} runs…", cli.sync_runs);
        Some(time_sync(&cli, port)?)
    } else {
        None
    };
    if wanted("check-in") {
        eprintln!("bench: preparing check-in managers…");
        let managers = checkin_managers(port, cli.checkin_managers.max(DEMO_MANAGERS))?;
        if backend == "PostgreSQL" {
            // Again: the managers' users and sessions would otherwise be planned from statistics taken when
            // those tables held the demo's two dozen rows (measured: the session check of every check-in
            // scanned both tables).
            analyze(&database_url)?;
        }
        eprintln!(
            "bench: check-in and check-out rounds by {} managers for {} s of check-ins…",
            managers.len(),
            cli.duration
        );
        for mut row in run_wrk_checkin(&cli, port, &scratch.0, &managers)? {
            row.rss_kb = server.rss_kb()?;
            rows.push(row);
        }
    }
    // The reference again, last: its share of the first shows how far this shared machine's speed drifted
    // during the run, so a share near a target can be read against it.
    eprintln!(
        "bench: {READYZ} again, after the rest, for {} s…",
        cli.duration
    );
    let admin = login(port, "admin")?;
    let mut again = run_wrk_get(&cli, port, &admin, READYZ_AGAIN, READYZ)?;
    again.who = "admin".to_owned();
    again.rss_kb = server.rss_kb()?;
    rows.push(again);
    let (_, peak_kb) = memory_kb(server.child.id())?;
    drop(server);
    let env = Environment {
        backend,
        database: if cli.database_url.is_some() {
            database_url.clone()
        } else {
            "sqlite://<temporary file>".into()
        },
        load_before,
        load_after: loadavg(),
        own_customers,
    };
    print_report(&cli, &env, &rows, sync.as_ref(), peak_kb);
    Ok(())
}

/// Runs `ANALYZE` after the demo load, and again after the check-in managers are created, as autovacuum
/// would soon after each (this machine's server runs with autovacuum off, so the planner would otherwise
/// plan the demo tables as empty), like `bench_jobs`.
fn analyze(database_url: &str) -> anyhow::Result<()> {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let mut conn = diesel::PgConnection::establish(database_url)
        .with_context(|| "cannot connect to run ANALYZE")?;
    conn.batch_execute("ANALYZE")?;
    Ok(())
}

/// A PostgreSQL URL with `sslmode=disable` unless it names an `sslmode` itself: libpq's default `prefer`
/// negotiates TLS even on loopback, which measured a quarter of the server's CPU on `/me`.
fn without_tls(url: &str) -> String {
    let pg = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !pg || url.contains("sslmode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=disable")
}

/// Installs wrk with apt-get when it is not on PATH.
fn ensure_wrk() -> anyhow::Result<()> {
    if Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
    {
        return Ok(());
    }
    eprintln!("bench: wrk is not on PATH: installing it with `apt-get install -y wrk`");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
    };
    if !install().context("cannot run apt-get")?.success() {
        eprintln!("bench: install failed: running `apt-get update` and trying again");
        let _ = Command::new("apt-get").arg("update").status();
        if !install().context("cannot run apt-get")?.success() {
            bail!("could not install wrk: install the Debian package `wrk` and run again");
        }
    }
    Ok(())
}

/// Starts `fieldwork serve --demo` on a free loopback port and waits until `/healthz` answers. The server
/// runs with its defaults (pool size, workers, log level) but a fixed random JWT secret.
fn start_server(exe: &Path, database_url: &str, scratch: &Path) -> anyhow::Result<Server> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let log = scratch.join("server.log");
    let out = std::fs::File::create(&log)?;
    let secret: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let child = Command::new(exe)
        .args(["serve", "--demo"])
        .env("DATABASE_URL", database_url)
        .env("FIELDWORK_BIND", format!("127.0.0.1:{port}"))
        .env("FIELDWORK_JWT_SECRET", secret)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let mut server = Server { child, port, log };
    let started = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!(
                "fieldwork exited ({status}) before answering /healthz. Its output:\n{}",
                server_log(&server)
            );
        }
        if http(port, "GET", "/healthz", None, None).is_ok_and(|r| r.status == 200) {
            break;
        }
        if started.elapsed() > START_TIMEOUT {
            bail!(
                "fieldwork did not answer /healthz within {} s. Its output:\n{}",
                START_TIMEOUT.as_secs(),
                server_log(&server)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if server_log(&server).contains("not loaded") {
        bail!(
            "the database was not empty, so the demo data was not loaded: give the bench an empty database"
        );
    }
    Ok(server)
}

fn server_log(server: &Server) -> String {
    std::fs::read_to_string(&server.log).unwrap_or_default()
}

/// Logs in as a user with the demo password and returns the access token.
fn login(port: u16, employee_no: &str) -> anyhow::Result<String> {
    let body = json!({ "employee_no": employee_no, "password": fieldwork::demo::DEMO_PASSWORD })
        .to_string();
    let reply = http(port, "POST", "/api/v1/auth/login", None, Some(&body))?;
    if reply.status != 200 {
        bail!(
            "login as {employee_no} failed: HTTP {} {}",
            reply.status,
            reply.body
        );
    }
    reply
        .json()?
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("login answer has no access_token")
}

/// A request that must answer `status`; returns the JSON body.
fn call(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
    status: u16,
) -> anyhow::Result<Value> {
    let body = body.map(Value::to_string);
    let reply = http(port, method, path, Some(token), body.as_deref())?;
    if reply.status != status {
        bail!(
            "{method} {path} answered {} (expected {status}): {}",
            reply.status,
            reply.body
        );
    }
    reply.json()
}

/// The user id and org id of a token's user.
fn me(port: u16, token: &str) -> anyhow::Result<(i64, i64)> {
    let me = call(port, "GET", "/api/v1/me", token, None, 200)?;
    // The user's fields are at the top level (flattened), `user` in older answers.
    let user = me.get("user").unwrap_or(&me);
    let id = user.get("id").and_then(Value::as_i64);
    let org = user
        .get("org")
        .and_then(|o| o.get("id"))
        .and_then(Value::as_i64);
    id.zip(org).context("/me without user.id or user.org.id")
}

/// Pages through the manager's customer list: (how many they see, one of their own customers' id).
fn manager_customers(port: u16, token: &str) -> anyhow::Result<(usize, i64)> {
    let (me_id, _) = me(port, token)?;
    let (mut seen, mut own, mut cursor) = (0, None, None::<String>);
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/customers?limit=200&cursor={}", encode(c)),
            None => "/api/v1/customers?limit=200".to_owned(),
        };
        let page = call(port, "GET", &path, token, None, 200)?;
        let items = page
            .get("items")
            .and_then(Value::as_array)
            .context("customer list without items")?;
        seen += items.len();
        if own.is_none() {
            own = items
                .iter()
                .filter(|c| c.get("manager_id").and_then(Value::as_i64) == Some(me_id))
                .find_map(|c| c.get("id").and_then(Value::as_i64));
        }
        cursor = page
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok((
        seen,
        own.context("the list manager has no customer of their own")?,
    ))
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A response of the minimal client.
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }
}

/// One HTTP/1.1 request on its own connection (`Connection: close`), read to the end.
fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> anyhow::Result<Reply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    if let Some(token) = token {
        let _ = write!(request, "Authorization: Bearer {token}\r\n");
    }
    if let Some(body) = body {
        let _ = write!(
            request,
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// Splits status, headers and body; honours `Content-Length` and chunked encoding.
fn parse_response(raw: &[u8]) -> anyhow::Result<Reply> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("response without end of headers")?;
    let head = std::str::from_utf8(&raw[..end])?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .context("bad status line")?;
    let (mut length, mut chunked) = (None, false);
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.trim().parse::<usize>()?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.trim().eq_ignore_ascii_case("chunked");
        }
    }
    let body = match (chunked, length) {
        (true, _) => dechunk(rest)?,
        (false, Some(n)) => rest
            .get(..n)
            .context("body shorter than Content-Length")?
            .to_vec(),
        (false, None) => rest.to_vec(),
    };
    Ok(Reply {
        status,
        body: String::from_utf8(body)?,
    })
}

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk header")?;
        let size = std::str::from_utf8(&rest[..eol])?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or_default().trim(), 16)?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).context("truncated chunk")?);
        rest = rest.get(size + 2..).context("truncated chunk")?;
    }
}

fn wrk_threads(cli: &Cli) -> u32 {
    cli.connections.min(2)
}

fn wrk_command(cli: &Cli) -> Command {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{}", wrk_threads(cli)))
        .arg(format!("-c{}", cli.connections))
        .arg(format!("-d{}s", cli.duration))
        .arg("--timeout")
        .arg("10s")
        .arg("--latency");
    cmd
}

fn wrk_output(mut cmd: Command, name: &str) -> anyhow::Result<String> {
    let out = cmd.output().context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "wrk failed on {name}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(text)
}

/// A body-less GET with the bearer token of `token`.
fn run_wrk_get(cli: &Cli, port: u16, token: &str, name: &str, path: &str) -> anyhow::Result<Row> {
    let mut cmd = wrk_command(cli);
    cmd.arg("-H")
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("http://127.0.0.1:{port}{path}"));
    let text = wrk_output(cmd, name)?;
    let r =
        parse_wrk(&text).with_context(|| format!("cannot read wrk's report on {name}:\n{text}"))?;
    let mut problems = Vec::new();
    if r.non_2xx > 0 {
        problems.push(format!("{} non-2xx/3xx", r.non_2xx));
    }
    if let Some(s) = r.socket_errors {
        problems.push(format!("socket errors: {s}"));
    }
    Ok(Row {
        name: name.to_owned(),
        who: String::new(),
        rps: r.rps,
        p50_ms: r.p50_ms,
        p99_ms: r.p99_ms,
        rss_kb: 0,
        min_share: None,
        problems,
    })
}

/// What wrk reported for one endpoint.
#[derive(Debug, Default)]
struct WrkResult {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// "Non-2xx or 3xx responses".
    non_2xx: u64,
    /// "Socket errors: …", when wrk printed it.
    socket_errors: Option<String>,
}

/// Reads requests/s, the 50 % and 99 % lines of `--latency`, and the error lines.
fn parse_wrk(text: &str) -> anyhow::Result<WrkResult> {
    let mut result = WrkResult::default();
    let (mut rps, mut p50, mut p99) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = Some(v.trim().parse::<f64>()?);
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = Some(to_ms(v.trim())?);
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = Some(to_ms(v.trim())?);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = v.trim().parse()?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            result.socket_errors = Some(v.trim().to_owned());
        }
    }
    result.rps = rps.context("no Requests/sec line")?;
    result.p50_ms = p50.context("no 50% latency line")?;
    result.p99_ms = p99.context("no 99% latency line")?;
    Ok(result)
}

/// `812.00us`, `1.25ms`, `2.01s`, `1.50m` → milliseconds.
fn to_ms(value: &str) -> anyhow::Result<f64> {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .context("latency without unit")?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .with_context(|| format!("bad latency {value}"))?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => bail!("unknown latency unit in {value}"),
    };
    Ok(number * factor)
}

/// Times `--sync-runs` full first syncs as admin (and one as the list manager, for scale).
fn time_sync(cli: &Cli, port: u16) -> anyhow::Result<SyncOutcome> {
    let token = login(port, "admin")?;
    let probe = http(port, "GET", &sync_path(cli, None), Some(&token), None)?;
    if probe.status == 404 {
        return Ok(SyncOutcome::NotAvailable);
    }
    let mut runs = Vec::new();
    let mut last = None;
    for _ in 0..cli.sync_runs.max(1) {
        let (secs, pages, items, bytes) = full_sync(cli, port, &token)?;
        runs.push(secs);
        last = Some((pages, items, bytes));
    }
    let (pages, items, bytes) = last.context("no sync run")?;
    let manager = login(port, LIST_MANAGER)?;
    let (secs, m_pages, m_items, _) = full_sync(cli, port, &manager)?;
    let m_total = m_items.values().sum();
    Ok(SyncOutcome::Timed(SyncTiming {
        runs,
        pages,
        items,
        bytes,
        manager: Some((secs, m_pages, m_total)),
    }))
}

fn sync_path(cli: &Cli, since: Option<&str>) -> String {
    let mut query = Vec::new();
    if let Some(s) = since {
        query.push(format!("since={}", encode(s)));
    }
    if let Some(l) = cli.sync_limit {
        query.push(format!("limit={l}"));
    }
    if query.is_empty() {
        "/api/v1/sync".into()
    } else {
        format!("/api/v1/sync?{}", query.join("&"))
    }
}

/// One full first sync: (seconds, pages, items per entity, bytes).
fn full_sync(
    cli: &Cli,
    port: u16,
    token: &str,
) -> anyhow::Result<(f64, usize, BTreeMap<String, usize>, usize)> {
    let started = Instant::now();
    let (mut pages, mut bytes, mut items) = (0, 0, BTreeMap::<String, usize>::new());
    let mut since: Option<String> = None;
    loop {
        let path = sync_path(cli, since.as_deref());
        let reply = http(port, "GET", &path, Some(token), None)?;
        if reply.status != 200 {
            bail!("GET {path} answered {}: {}", reply.status, reply.body);
        }
        pages += 1;
        bytes += reply.body.len();
        let page = reply.json()?;
        if let Some(changes) = page.get("changes").and_then(Value::as_object) {
            for (entity, list) in changes {
                *items.entry(entity.clone()).or_default() += list.as_array().map_or(0, Vec::len);
            }
        }
        *items.entry("removed".into()).or_default() += page
            .get("removed")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let more = page
            .get("has_more")
            .and_then(Value::as_bool)
            .context("sync page without has_more")?;
        if !more {
            break;
        }
        let next = page
            .get("next_token")
            .and_then(Value::as_str)
            .context("sync page with has_more but no next_token")?;
        if since.as_deref() == Some(next) || pages > 100_000 {
            bail!("sync does not advance: next_token {next} after {pages} pages");
        }
        since = Some(next.to_owned());
    }
    Ok((started.elapsed().as_secs_f64(), pages, items, bytes))
}

/// A manager who checks in and out during the check-in run.
struct CheckInManager {
    user_id: i64,
    token: String,
    customer_id: i64,
    latitude: f64,
    longitude: f64,
}

/// The demo managers, plus bench managers (`BENCH0001`…, created by admin, one customer each) up to
/// `count` in all. Creating one costs two Argon2 hashes (the account, the login), so four client threads
/// share the work.
fn checkin_managers(port: u16, count: usize) -> anyhow::Result<Vec<CheckInManager>> {
    let admin = login(port, "admin")?;
    let mut out = Vec::new();
    let mut orgs = Vec::new();
    for i in 1..=DEMO_MANAGERS.min(count) {
        let no = format!("M{i:04}");
        let token = login(port, &no)?;
        let (user_id, org_id) = me(port, &token)?;
        orgs.push(org_id);
        let page = call(port, "GET", "/api/v1/customers?limit=50", &token, None, 200)?;
        let customer = page
            .get("items")
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .find(|c| c.get("manager_id").and_then(Value::as_i64) == Some(user_id))
            })
            .with_context(|| format!("{no} has no customer of their own"))?;
        out.push(checkin_manager(user_id, token, customer)?);
    }
    let extra: Vec<usize> = (1..=count.saturating_sub(out.len())).collect();
    let created = std::thread::scope(|s| {
        let workers: Vec<_> = extra
            .chunks(extra.len().div_ceil(4).max(1))
            .map(|ks| {
                let (admin, orgs) = (&admin, &orgs);
                s.spawn(move || {
                    ks.iter()
                        .map(|&k| bench_manager(port, admin, orgs, k))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a creating thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    out.extend(created.into_iter().flatten());
    Ok(out)
}

/// Creates bench manager `k` with one customer, and logs in as them.
fn bench_manager(port: u16, admin: &str, orgs: &[i64], k: usize) -> anyhow::Result<CheckInManager> {
    let no = format!("BENCH{k:04}");
    let org_id = *orgs.get(k % orgs.len().max(1)).context("no demo manager")?;
    let user = call(
        port,
        "POST",
        "/api/v1/users",
        admin,
        Some(&json!({
            "employee_no": no,
            "name": format!("压测经理{k:04}"),
            "role": "manager",
            "org_id": org_id,
            "password": fieldwork::demo::DEMO_PASSWORD,
        })),
        201,
    )?;
    let user_id = user
        .get("user")
        .and_then(|u| u.get("id"))
        .and_then(Value::as_i64)
        .context("created user without id")?;
    let customer = call(
        port,
        "POST",
        "/api/v1/customers",
        admin,
        Some(&json!({
            "kind": "individual",
            "name": format!("压测客户{k:04}"),
            "phone": format!("139{:08}", 10_000_000 + k),
            "address": "南京市中山路1号",
            "latitude": 32.0603,
            "longitude": 118.7969,
            "manager_id": user_id,
        })),
        201,
    )?;
    let token = login(port, &no)?;
    checkin_manager(user_id, token, &customer)
}

fn checkin_manager(
    user_id: i64,
    token: String,
    customer: &Value,
) -> anyhow::Result<CheckInManager> {
    let field = |name: &str| customer.get(name).and_then(Value::as_f64);
    Ok(CheckInManager {
        user_id,
        token,
        customer_id: customer
            .get("id")
            .and_then(Value::as_i64)
            .context("customer without id")?,
        // About 100 m north-east of the customer's registered place.
        latitude: field("latitude").unwrap_or(32.0603) + 0.0007,
        longitude: field("longitude").unwrap_or(118.7969) + 0.0007,
    })
}

/// Which request a round sends, once per manager.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Round {
    /// `POST /api/v1/visits`.
    CheckIn,
    /// `POST /api/v1/visits/{id}/checkout` of the visit the manager's check-in opened.
    CheckOut,
}

impl Round {
    fn mode(self) -> &'static str {
        match self {
            Self::CheckIn => "in",
            Self::CheckOut => "out",
        }
    }
}

/// The wrk Lua script of one kind of round. It reads its work from `work` (one line per manager:
/// `uid token customer lat lon visit round`), each wrk thread taking every `threads`-th line; every manager gets
/// exactly one request; a thread stops once all its managers are answered. Connections that find no
/// manager left meanwhile send `GET /healthz` (the last few milliseconds of a round). `done` writes one line
/// per success (`uid visit latency_us`) to `out` and prints the counts and the time from the round's first
/// request to its last answer; a thread with all its answers appends a line to `finished`.
/// The manager of a response is found from the `X-Request-Id` the server echoes. wrk calls `request()` once
/// on thread 0 before the run to check it; that call gets a `/healthz` request and uses no manager.
fn round_script(round: Round, threads: u32, run: &str, files: &RoundFiles) -> String {
    let mode = round.mode();
    let (work, out, fin) = (
        files.work.display(),
        files.out.display(),
        files.finished.display(),
    );
    format!(
        r#"-- Generated by fieldwork's bench: one {mode} round, one request per manager.
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} fw_timespec;
int clock_gettime(int clk_id, fw_timespec *tp);
]]
local ts = ffi.new("fw_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local MODE = "{mode}"
local THREADS = {threads}
local RUN = "{run}"
local WORK = "{work}"
local OUT = "{out}"
local FIN = "{fin}"

local threads = {{}}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  queue, by_uid, results = {{}}, {{}}, {{}}
  owned, answered, errors, qi, seq, checked = 0, 0, 0, 1, 0, false
  err_sample = ""
  local i = 0
  for line in io.lines(WORK) do
    if i % THREADS == tid then
      local uid, token, customer, lat, lon, visit, round =
        line:match("^(%d+) (%S+) (%d+) (%S+) (%S+) (%d+) (%d+)$")
      local m = {{uid = uid, token = token, customer = customer, lat = lat, lon = lon, visit = visit,
                 round = round}}
      table.insert(queue, m)
      by_uid[uid] = m
      owned = owned + 1
    end
    i = i + 1
  end
  if owned == 0 then
    -- Nothing to answer: finished at once (the round ends when every thread is).
    local f = assert(io.open(FIN, "a"))
    f:write(tid, "\n")
    f:close()
  end
end

function request()
  if tid == 0 and not checked then
    checked = true
    return wrk.format("GET", "/healthz", {{}})
  end
  local m = queue[qi]
  if m == nil then
    return wrk.format("GET", "/healthz", {{}})
  end
  qi = qi + 1
  seq = seq + 1
  if first_us == nil then first_us = now_us() end
  local h = {{
    ["Authorization"] = "Bearer " .. m.token,
    ["Content-Type"] = "application/json",
    ["X-Request-Id"] = "fwb-" .. m.uid .. "-" .. seq,
  }}
  m.started = now_us()
  if MODE == "out" then
    return wrk.format("POST", "/api/v1/visits/" .. m.visit .. "/checkout", h, "{{}}")
  end
  local body = string.format(
    '{{"customer_id":%d,"purpose":"bench visit","phone_time":"%s","latitude":%s,"longitude":%s,' ..
    '"accuracy_m":15,"datum":"wgs84","client_id":"bench-%s-%s-%s"}}',
    m.customer, os.date("!%Y-%m-%dT%H:%M:%SZ"), m.lat, m.lon, RUN, m.round, m.uid)
  return wrk.format("POST", "/api/v1/visits", h, body)
end

function response(status, headers, body)
  local rid = headers["x-request-id"] or headers["X-Request-Id"] or ""
  local uid = rid:match("^fwb%-(%d+)%-")
  local m = uid and by_uid[uid]
  if m == nil then
    return
  end
  answered = answered + 1
  last_us = now_us()
  local dt = last_us - m.started
  if MODE == "in" and status == 201 then
    local visit = body:match('^{{"id":(%d+)')
    results[#results + 1] = m.uid .. " " .. (visit or "0") .. " " .. string.format("%.0f", dt)
  elseif MODE == "out" and status == 200 then
    results[#results + 1] = m.uid .. " " .. m.visit .. " " .. string.format("%.0f", dt)
  else
    errors = errors + 1
    if err_sample == "" then
      err_sample = MODE .. " " .. status .. " " .. string.sub(body, 1, 300):gsub("\n", " ")
    end
  end
  if answered == owned then
    local f = assert(io.open(FIN, "a"))
    f:write(tid, "\n")
    f:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local f = assert(io.open(OUT, "w"))
  local ok, errs, sample, first, last = 0, 0, "", nil, nil
  for _, t in ipairs(threads) do
    local f0, l0 = t:get("first_us"), t:get("last_us")
    if f0 ~= nil and (first == nil or f0 < first) then first = f0 end
    if l0 ~= nil and (last == nil or l0 > last) then last = l0 end
    for _, line in ipairs(t:get("results")) do
      f:write(line, "\n")
      ok = ok + 1
    end
    errs = errs + t:get("errors")
    if sample == "" then sample = t:get("err_sample") end
  end
  f:close()
  io.write(string.format("FWBENCH ok=%d errors=%d secs=%.6f\n", ok, errs, ((last or 0) - (first or 0)) / 1000000))
  if sample ~= "" then io.write("FWBENCH_ERROR " .. sample .. "\n") end
end
"#
    )
}

/// What a round script's `done` printed.
#[derive(Debug, Default, PartialEq)]
struct CheckInResult {
    counts: BTreeMap<String, f64>,
    error_sample: Option<String>,
}

impl CheckInResult {
    fn get(&self, key: &str) -> anyhow::Result<f64> {
        self.counts
            .get(key)
            .copied()
            .with_context(|| format!("no {key} in the round's report"))
    }
}

fn parse_checkin(text: &str) -> anyhow::Result<CheckInResult> {
    let mut r = CheckInResult::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("FWBENCH_ERROR ") {
            r.error_sample = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("FWBENCH ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').context("bad FWBENCH pair")?;
                r.counts.insert(k.to_owned(), v.parse()?);
            }
        }
    }
    if r.counts.is_empty() {
        bail!("no FWBENCH line");
    }
    Ok(r)
}

/// One line of a round's output: (uid, visit id, latency in µs).
fn parse_result_line(line: &str) -> anyhow::Result<(i64, i64, f64)> {
    let mut it = line.split_whitespace();
    let mut next = || it.next().context("short result line");
    Ok((next()?.parse()?, next()?.parse()?, next()?.parse()?))
}

/// The timed totals of one kind of round.
#[derive(Default)]
struct RoundTotals {
    ok: usize,
    secs: f64,
    latencies_us: Vec<f64>,
    problems: Vec<String>,
}

impl RoundTotals {
    fn row(&mut self, name: &str, who: String, min_share: Option<f64>) -> Row {
        self.latencies_us.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            let n = self.latencies_us.len();
            let i = ((n as f64 * p).ceil() as usize).clamp(1, n.max(1)) - 1;
            self.latencies_us.get(i).copied().unwrap_or(f64::NAN) / 1000.0
        };
        Row {
            name: name.to_owned(),
            who,
            rps: self.ok as f64 / self.secs.max(1e-9),
            p50_ms: pct(0.5),
            p99_ms: pct(0.99),
            rss_kb: 0,
            min_share,
            problems: self.problems.clone(),
        }
    }
}

/// The files a round script reads and writes.
struct RoundFiles {
    /// The managers of the round, one per line.
    work: PathBuf,
    /// One line per success, written by `done`.
    out: PathBuf,
    /// One line per wrk thread that has every answer.
    finished: PathBuf,
}

/// Runs one round: writes the work file, runs wrk with the round's script, and returns the successes
/// (uid, visit). wrk's main thread sleeps for `-d` whatever its threads do, so once every thread has
/// all its answers the bench interrupts wrk (SIGINT: wrk then reports and calls `done` as usual); the
/// round's time is the script's own, from its first request to its last answer.
fn run_round(
    cli: &Cli,
    port: u16,
    script: &Path,
    files: &RoundFiles,
    lines: &[String],
    totals: &mut RoundTotals,
) -> anyhow::Result<Vec<(i64, i64)>> {
    std::fs::write(&files.work, lines.concat())?;
    std::fs::write(&files.finished, "")?;
    // Emptied too, so a round whose `done` failed cannot pass off the previous round's results.
    std::fs::write(&files.out, "")?;
    let threads = wrk_threads(cli) as usize;
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{}", cli.connections))
        .arg("-d300s")
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/api/v1/visits"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().context("cannot run wrk")?;
    let started = Instant::now();
    loop {
        let finished = std::fs::read_to_string(&files.finished)?.lines().count();
        if finished >= threads || started.elapsed() > Duration::from_secs(290) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let interrupted = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()?;
    if !interrupted.success() {
        bail!("cannot interrupt wrk");
    }
    let output = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let r = parse_checkin(&text).with_context(|| {
        format!(
            "cannot read the round's report:\n{text}{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let errors = r.get("errors")?;
    if errors > 0.0 {
        totals.problems.push(format!("{errors} errors"));
    }
    if let Some(s) = &r.error_sample
        && totals.problems.len() < 4
    {
        totals.problems.push(format!("first error: {s}"));
    }
    totals.secs += r.get("secs")?;
    let mut done = Vec::new();
    for line in std::fs::read_to_string(&files.out)?.lines() {
        let (uid, visit, us) = parse_result_line(line)?;
        totals.ok += 1;
        totals.latencies_us.push(us);
        done.push((uid, visit));
    }
    Ok(done)
}

/// The check-in rows: rounds in which every manager checks in once (timed), then rounds in which each
/// checks out of the visit it opened (timed apart), until the check-in rounds add up to `--duration`. So
/// each row measures its own endpoint: a manager may have one open visit only, and before, check-ins and
/// check-outs shared the server in the same seconds.
fn run_wrk_checkin(
    cli: &Cli,
    port: u16,
    scratch: &Path,
    managers: &[CheckInManager],
) -> anyhow::Result<Vec<Row>> {
    let run: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(8)
        .map(char::from)
        .collect();
    let threads = wrk_threads(cli);
    let files = RoundFiles {
        work: scratch.join("round-work.txt"),
        out: scratch.join("round-out.txt"),
        finished: scratch.join("round-finished.txt"),
    };
    let in_script = scratch.join("checkin.lua");
    let out_script = scratch.join("checkout.lua");
    std::fs::write(
        &in_script,
        round_script(Round::CheckIn, threads, &run, &files),
    )?;
    std::fs::write(
        &out_script,
        round_script(Round::CheckOut, threads, &run, &files),
    )?;
    let by_uid: BTreeMap<i64, &CheckInManager> = managers.iter().map(|m| (m.user_id, m)).collect();
    // The round number keeps each round's `client_id`s new.
    let line = |m: &CheckInManager, visit: i64, round: usize| {
        format!(
            "{} {} {} {:.6} {:.6} {visit} {round}\n",
            m.user_id, m.token, m.customer_id, m.latitude, m.longitude
        )
    };
    let (mut ins, mut outs) = (RoundTotals::default(), RoundTotals::default());
    let mut rounds = 0;
    while ins.secs < cli.duration as f64 {
        let lines: Vec<String> = managers.iter().map(|m| line(m, 0, rounds)).collect();
        let opened = run_round(cli, port, &in_script, &files, &lines, &mut ins)?;
        let lines: Vec<String> = opened
            .iter()
            .filter_map(|(uid, visit)| by_uid.get(uid).map(|m| line(m, *visit, rounds)))
            .collect();
        let closed = run_round(cli, port, &out_script, &files, &lines, &mut outs)?;
        rounds += 1;
        if opened.len() < managers.len() || closed.len() < opened.len() {
            bail!(
                "round {rounds}: {} of {} check-ins and {} check-outs succeeded: {}",
                opened.len(),
                managers.len(),
                closed.len(),
                ins.problems
                    .iter()
                    .chain(&outs.problems)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    let who = format!("{} managers × {rounds} rounds", managers.len());
    Ok(vec![
        ins.row("POST /api/v1/visits (check-in)", who.clone(), Some(0.30)),
        outs.row("POST /api/v1/visits/{id}/checkout", who, None),
    ])
}

/// (VmRSS, VmHWM) of a process, in kB.
fn memory_kb(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("cannot read the server's memory")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn cores() -> String {
    std::thread::available_parallelism().map_or("?".into(), |n| n.to_string())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Facts of the run printed above the table.
struct Environment {
    backend: &'static str,
    database: String,
    load_before: String,
    load_after: String,
    own_customers: usize,
}

fn verdict(pass: bool, valid: bool) -> &'static str {
    match (valid, pass) {
        (false, _) => "INVALID (errors in the run)",
        (true, true) => "PASS",
        (true, false) => "MISS",
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

fn print_report(
    cli: &Cli,
    env: &Environment,
    rows: &[Row],
    sync: Option<&SyncOutcome>,
    peak_kb: u64,
) {
    let readyz = rows
        .iter()
        .find(|r| r.name == READYZ)
        .map(|r| r.rps)
        .filter(|&r| r > 0.0);
    let share = |row: &Row| readyz.map(|base| row.rps / base);
    println!();
    println!(
        "fieldwork bench · {} ({}) · {} cores · wrk -t{} -c{} -d{}s per endpoint · load average {} before, {} after",
        env.backend,
        env.database,
        cores(),
        wrk_threads(cli),
        cli.connections,
        cli.duration,
        env.load_before,
        env.load_after
    );
    println!();
    println!("| endpoint | as | req/s | p50 ms | p99 ms | RSS MB | % of /readyz |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for row in rows {
        let pct = share(row).map_or("–".to_owned(), |s| format!("{:.0} %", s * 100.0));
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {pct} |",
            row.name,
            row.who,
            row.rps,
            row.p50_ms,
            row.p99_ms,
            mb(row.rss_kb)
        );
    }
    for row in rows.iter().filter(|r| !r.problems.is_empty()) {
        println!();
        println!("{}: {}", row.name, row.problems.join("; "));
    }
    println!();
    println!(
        "The customer rows are {LIST_MANAGER}'s view ({} customers in scope). Check-in and check-out: rounds in \
         which every manager checks in once, each followed by a round in which every manager checks out \
         (one open visit per manager); each row is timed over its own rounds only. The last row measures \
         /readyz again after everything else: its share of the first is how far the machine's speed drifted \
         during the run.",
        env.own_customers
    );
    match sync {
        None => {}
        Some(SyncOutcome::NotAvailable) => {
            println!();
            println!("Full first sync: not available (GET /api/v1/sync answered 404).");
        }
        Some(SyncOutcome::Timed(t)) => {
            println!();
            let items: Vec<String> = t.items.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let runs: Vec<String> = t.runs.iter().map(|s| format!("{s:.2}")).collect();
            println!(
                "Full first sync as admin (one client, idle server, uncompressed): {} pages, {:.1} MB, {}; \
                 runs {} s",
                t.pages,
                t.bytes as f64 / 1_048_576.0,
                items.join(", "),
                runs.join(" / ")
            );
            if let Some((secs, pages, total)) = t.manager {
                println!(
                    "Full first sync as {LIST_MANAGER}: {pages} pages, {total} items, {secs:.2} s"
                );
            }
        }
    }
    println!();
    println!("Targets:");
    for row in rows {
        let Some(min) = row.min_share else {
            continue;
        };
        let got = share(row);
        let shown = got.map_or("–".to_owned(), |s| format!("{:.0} %", s * 100.0));
        let v = verdict(
            got.is_some_and(|s| s >= min),
            got.is_some() && row.problems.is_empty(),
        );
        println!(
            "- {} ≥ {:.0} % of /readyz req/s: {shown} {v}",
            row.name,
            min * 100.0
        );
    }
    let worst = rows.iter().max_by(|a, b| a.p99_ms.total_cmp(&b.p99_ms));
    if let Some(w) = worst {
        let all_valid = rows.iter().all(|r| r.problems.is_empty());
        let v = verdict(w.p99_ms <= MAX_P99_MS, all_valid);
        println!(
            "- p99 ≤ {MAX_P99_MS:.0} ms on every endpoint: worst {:.2} ms ({}) {v}",
            w.p99_ms, w.name
        );
    }
    let peak = mb(peak_kb);
    println!(
        "- peak RSS (VmHWM) ≤ {MAX_PEAK_RSS_MB:.0} MB: {peak:.1} MB {}",
        verdict(peak <= MAX_PEAK_RSS_MB, true)
    );
    match sync {
        None => {}
        Some(SyncOutcome::NotAvailable) => {
            println!("- full first sync ≤ {MAX_SYNC_SECS:.0} s: not available");
        }
        Some(SyncOutcome::Timed(t)) => {
            let m = median(&t.runs);
            let best = t.runs.iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "- full first sync of all customers ≤ {MAX_SYNC_SECS:.0} s: median {m:.2} s (best {best:.2} s) {}",
                verdict(m <= MAX_SYNC_SECS, true)
            );
        }
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_get_sslmode_disable_unless_they_name_one() {
        assert_eq!(
            without_tls("postgres://u@h:5432/db"),
            "postgres://u@h:5432/db?sslmode=disable"
        );
        assert_eq!(
            without_tls("postgresql://u@h/db?connect_timeout=3"),
            "postgresql://u@h/db?connect_timeout=3&sslmode=disable"
        );
        assert_eq!(
            without_tls("postgres://u@h/db?sslmode=require"),
            "postgres://u@h/db?sslmode=require"
        );
        assert_eq!(without_tls("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }

    #[test]
    fn reads_a_wrk_report() {
        let text = "Running 1s test @ http://127.0.0.1:1/x\n  2 threads and 8 connections\n  Latency Distribution\n     \
                    50%  812.00us\n     75%    1.01ms\n     99%    2.50s\n  10 requests in 1.00s, 1.00KB read\n  \
                    Non-2xx or 3xx responses: 3\nRequests/sec:   1234.50\n";
        let r = parse_wrk(text).unwrap();
        assert!((r.rps - 1234.5).abs() < 1e-9);
        assert!((r.p50_ms - 0.812).abs() < 1e-9);
        assert!((r.p99_ms - 2500.0).abs() < 1e-9);
        assert_eq!(r.non_2xx, 3);
    }

    #[test]
    fn reads_plain_and_chunked_responses() {
        let plain = parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((plain.status, plain.body.as_str()), (200, "{}"));
        let chunked =
            parse_response(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!((chunked.status, chunked.body.as_str()), (201, "abcde"));
    }

    #[test]
    fn reads_a_round_report_and_its_result_lines() {
        let text = "Running 5m test\nFWBENCH ok=398 errors=2 secs=0.104000\n\
                    FWBENCH_ERROR in 500 {\"code\":\"internal\"}\n";
        let r = parse_checkin(text).unwrap();
        assert_eq!(r.get("ok").unwrap(), 398.0);
        assert_eq!(r.get("secs").unwrap(), 0.104);
        assert_eq!(
            r.error_sample.as_deref(),
            Some("in 500 {\"code\":\"internal\"}")
        );
        assert!(parse_checkin("nothing").is_err());
        assert_eq!(parse_result_line("7 123 4567").unwrap(), (7, 123, 4567.0));
        assert!(parse_result_line("7 123").is_err());
    }

    #[test]
    fn round_totals_give_the_rate_and_the_percentiles_of_every_round() {
        let mut t = RoundTotals {
            ok: 200,
            secs: 0.5,
            latencies_us: (1..=100).rev().map(|i| f64::from(i) * 1000.0).collect(),
            problems: Vec::new(),
        };
        let row = t.row("check-in", "who".into(), Some(0.3));
        assert_eq!(row.rps, 400.0);
        assert_eq!((row.p50_ms, row.p99_ms), (50.0, 99.0));
    }

    #[test]
    fn the_round_scripts_read_their_files_and_escape_format_braces() {
        let files = RoundFiles {
            work: "/tmp/w.txt".into(),
            out: "/tmp/o.txt".into(),
            finished: "/tmp/f.txt".into(),
        };
        let lua = round_script(Round::CheckIn, 2, "run1", &files);
        assert!(lua.contains("local MODE = \"in\""));
        assert!(lua.contains("local THREADS = 2"));
        assert!(lua.contains("local WORK = \"/tmp/w.txt\""));
        assert!(lua.contains("local FIN = \"/tmp/f.txt\""));
        assert!(lua.contains(r#"'{"customer_id":%d,"#));
        assert!(lua.contains("body:match('^{\"id\":(%d+)')"));
        let out = round_script(Round::CheckOut, 2, "run1", &files);
        assert!(out.contains("local MODE = \"out\""));
    }
}
