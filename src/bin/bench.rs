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
//! - check-in (`POST /api/v1/visits`): a manager may have one open visit only, so every manager checks in
//!   and then out (`POST /api/v1/visits/{id}/checkout`) in turn. A generated wrk Lua script drives 24 demo
//!   managers plus as many bench managers (created through the API, one customer each) as are needed for
//!   every connection to always have a manager without a request in flight. Check-ins and check-outs are
//!   counted and timed separately (one row each); the check-in row's requests/s counts check-ins only,
//!   although the server served as many check-outs in the same seconds. It runs last, since it adds
//!   visits that a later sync would carry.
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
    /// Run only the steps whose name contains one of these comma-separated words (e.g. `me,check-in`);
    /// `/readyz` always runs, as the reference.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// The reference row for the shares.
const READYZ: &str = "/readyz";
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
        let managers = checkin_managers(port, cli.connections)?;
        eprintln!(
            "bench: check-in/check-out pairs by {} managers for {} s…",
            managers.len(),
            cli.duration
        );
        for mut row in run_wrk_checkin(&cli, port, &scratch.0, &managers)? {
            row.rss_kb = server.rss_kb()?;
            rows.push(row);
        }
    }
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

/// Runs `ANALYZE` after the demo load, as autovacuum would soon after it (this machine's server runs with
/// autovacuum off, so the planner would otherwise plan the demo tables as empty), like `bench_jobs`.
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

/// The demo managers, plus bench managers (`BENCH01`…, created by admin, one customer each) until every
/// wrk thread has at least two more managers than connections: a connection that asks for its next
/// request then always finds a manager with nothing in flight (wrk's start-up check consumes one request).
fn checkin_managers(port: u16, connections: u32) -> anyhow::Result<Vec<CheckInManager>> {
    let threads = connections.min(2) as usize;
    let per_thread = (connections as usize).div_ceil(threads) + 2;
    let needed = per_thread * threads;
    let admin = login(port, "admin")?;
    let mut out = Vec::new();
    let mut orgs = Vec::new();
    for i in 1..=DEMO_MANAGERS.min(needed) {
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
    for k in 1..=needed.saturating_sub(out.len()) {
        let no = format!("BENCH{k:02}");
        let org_id = *orgs.get(k % orgs.len().max(1)).context("no demo manager")?;
        let user = call(
            port,
            "POST",
            "/api/v1/users",
            &admin,
            Some(&json!({
                "employee_no": no,
                "name": format!("压测经理{k:02}"),
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
            &admin,
            Some(&json!({
                "kind": "individual",
                "name": format!("压测客户{k:02}"),
                "phone": format!("139{:08}", 10_000_000 + k),
                "address": "南京市中山路1号",
                "latitude": 32.0603,
                "longitude": 118.7969,
                "manager_id": user_id,
            })),
            201,
        )?;
        let token = login(port, &no)?;
        out.push(checkin_manager(user_id, token, &customer)?);
    }
    Ok(out)
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

/// The wrk Lua script of the check-in run. Each wrk thread owns every `threads`-th manager. A request is a
/// check-out of a manager whose check-in was answered, else a check-in of an idle manager. The manager of a
/// response is found from the `X-Request-Id` the server echoes, so errors cannot lose one. Latency is
/// measured per kind with CLOCK_MONOTONIC (LuaJIT FFI) from building the request to its response.
fn checkin_script(managers: &[CheckInManager], threads: u32, run: &str) -> String {
    let mut list = String::new();
    for m in managers {
        let _ = writeln!(
            list,
            "  {{uid={}, token=\"{}\", customer={}, lat={:.6}, lon={:.6}}},",
            m.user_id, m.token, m.customer_id, m.latitude, m.longitude
        );
    }
    format!(
        r#"-- Generated by fieldwork's bench: paired check-in / check-out by many managers.
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

local THREADS = {threads}
local RUN = "{run}"
local MANAGERS = {{
{list}}}

local threads = {{}}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end

function init(args)
  idle, pending, by_uid = {{}}, {{}}, {{}}
  checkins, checkouts, conflicts, errors, stalls, seq = 0, 0, 0, 0, 0, 0
  lat_in, lat_out = {{}}, {{}}
  err_sample = ""
  for i, m in ipairs(MANAGERS) do
    if (i - 1) % THREADS == tid then
      local own = {{uid = m.uid, token = m.token, customer = m.customer, lat = m.lat, lon = m.lon}}
      table.insert(idle, own)
      by_uid[m.uid] = own
    end
  end
end

local function headers(m)
  seq = seq + 1
  return {{
    ["Authorization"] = "Bearer " .. m.token,
    ["Content-Type"] = "application/json",
    ["X-Request-Id"] = "fwb-" .. m.uid .. "-" .. seq,
  }}
end

function request()
  local m = table.remove(pending, 1)
  if m ~= nil then
    m.kind, m.started = "out", now_us()
    return wrk.format("POST", "/api/v1/visits/" .. m.visit .. "/checkout", headers(m), "{{}}")
  end
  m = table.remove(idle, 1)
  if m == nil then
    stalls = stalls + 1
    return wrk.format("GET", "/healthz", {{}})
  end
  local h = headers(m)
  local body = string.format(
    '{{"customer_id":%d,"purpose":"bench visit","phone_time":"%s","latitude":%.6f,"longitude":%.6f,' ..
    '"accuracy_m":15,"datum":"wgs84","client_id":"bench-%s-%d-%d"}}',
    m.customer, os.date("!%Y-%m-%dT%H:%M:%SZ"), m.lat, m.lon, RUN, tid, seq)
  m.kind, m.started = "in", now_us()
  return wrk.format("POST", "/api/v1/visits", h, body)
end

function response(status, headers, body)
  local rid = headers["x-request-id"] or headers["X-Request-Id"] or ""
  local uid = tonumber(rid:match("^fwb%-(%d+)%-"))
  local m = uid and by_uid[uid]
  if m == nil then
    return
  end
  local dt = now_us() - m.started
  if m.kind == "in" then
    if status == 201 then
      checkins = checkins + 1
      lat_in[#lat_in + 1] = dt
      m.visit = body:match('^{{"id":(%d+)')
      table.insert(pending, m)
      return
    end
    local open = body:match('"open_visit_id":(%d+)')
    if status == 409 and open then
      conflicts = conflicts + 1
      m.visit = open
      table.insert(pending, m)
      return
    end
  elseif status == 200 then
    checkouts = checkouts + 1
    lat_out[#lat_out + 1] = dt
    table.insert(idle, m)
    return
  end
  errors = errors + 1
  if err_sample == "" then
    err_sample = m.kind .. " " .. status .. " " .. string.sub(body, 1, 300):gsub("\n", " ")
  end
  table.insert(idle, m)
end

local function pct(a, p)
  if #a == 0 then return -1 end
  return a[math.max(1, math.ceil(#a * p))]
end

function done(summary, latency, requests)
  local c = {{checkins = 0, checkouts = 0, conflicts = 0, errors = 0, stalls = 0}}
  local all_in, all_out, sample = {{}}, {{}}, ""
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do c[k] = c[k] + t:get(k) end
    for _, v in ipairs(t:get("lat_in")) do all_in[#all_in + 1] = v end
    for _, v in ipairs(t:get("lat_out")) do all_out[#all_out + 1] = v end
    if sample == "" then sample = t:get("err_sample") end
  end
  table.sort(all_in)
  table.sort(all_out)
  io.write(string.format(
    "FWBENCH checkins=%d checkouts=%d conflicts=%d errors=%d stalls=%d secs=%.6f " ..
    "in_p50_us=%.1f in_p99_us=%.1f out_p50_us=%.1f out_p99_us=%.1f\n",
    c.checkins, c.checkouts, c.conflicts, c.errors, c.stalls, summary.duration / 1000000,
    pct(all_in, 0.5), pct(all_in, 0.99), pct(all_out, 0.5), pct(all_out, 0.99)))
  if sample ~= "" then io.write("FWBENCH_ERROR " .. sample .. "\n") end
end
"#
    )
}

/// What the check-in script's `done` printed.
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
            .with_context(|| format!("no {key} in the check-in report"))
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
    let script = scratch.join("checkin.lua");
    std::fs::write(&script, checkin_script(managers, wrk_threads(cli), &run))?;
    let mut cmd = wrk_command(cli);
    cmd.arg("-s")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/api/v1/visits"));
    let name = "check-in";
    let text = wrk_output(cmd, name)?;
    let r = parse_checkin(&text)
        .with_context(|| format!("cannot read the check-in report:\n{text}"))?;
    let secs = r.get("secs")?.max(1e-9);
    let mut problems = Vec::new();
    for key in ["errors", "stalls", "conflicts"] {
        let n = r.get(key)?;
        if n > 0.0 {
            problems.push(format!("{n} {key}"));
        }
    }
    if let Some(s) = &r.error_sample {
        problems.push(format!("first error: {s}"));
    }
    let row = |name: &str, count: &str, p50: &str, p99: &str, min_share| -> anyhow::Result<Row> {
        Ok(Row {
            name: name.to_owned(),
            who: format!("{} managers", managers.len()),
            rps: r.get(count)? / secs,
            p50_ms: r.get(p50)? / 1000.0,
            p99_ms: r.get(p99)? / 1000.0,
            rss_kb: 0,
            min_share,
            problems: problems.clone(),
        })
    };
    Ok(vec![
        row(
            "POST /api/v1/visits (check-in)",
            "checkins",
            "in_p50_us",
            "in_p99_us",
            Some(0.30),
        )?,
        row(
            "POST /api/v1/visits/{id}/checkout (paired)",
            "checkouts",
            "out_p50_us",
            "out_p99_us",
            None,
        )?,
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
        "The customer rows are {LIST_MANAGER}'s view ({} customers in scope). Check-in: each manager checks in \
         and then out in turn (one open visit per manager); the check-in row counts check-ins only, while \
         the server also served the check-outs of the next row in the same seconds.",
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
    fn reads_the_checkin_report() {
        let text = "Running 1s test\nRequests/sec: 10\nFWBENCH checkins=10 checkouts=9 conflicts=0 errors=1 \
                    stalls=0 secs=2.000000 in_p50_us=1500.0 in_p99_us=9000.5 out_p50_us=1.0 out_p99_us=2.0\n\
                    FWBENCH_ERROR in 500 {\"code\":\"internal\"}\n";
        let r = parse_checkin(text).unwrap();
        assert_eq!(r.get("checkins").unwrap(), 10.0);
        assert_eq!(r.get("in_p99_us").unwrap(), 9000.5);
        assert_eq!(
            r.error_sample.as_deref(),
            Some("in 500 {\"code\":\"internal\"}")
        );
        assert!(parse_checkin("nothing").is_err());
    }

    #[test]
    fn the_checkin_script_lists_every_manager_and_escapes_format_braces() {
        let m = CheckInManager {
            user_id: 7,
            token: "tok".into(),
            customer_id: 9,
            latitude: 32.0,
            longitude: 118.0,
        };
        let lua = checkin_script(&[m], 2, "run1");
        assert!(lua.contains("{uid=7, token=\"tok\", customer=9, lat=32.000000, lon=118.000000},"));
        assert!(lua.contains("local THREADS = 2"));
        assert!(lua.contains(r#"'{"customer_id":%d,"#));
        assert!(lua.contains("body:match('^{\"id\":(%d+)')"));
    }
}
