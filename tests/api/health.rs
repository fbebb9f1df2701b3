//! Liveness, and readiness through a real database outage and recovery without a restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

async fn healthz_and_readyz_answer(app: TestApp) {
    let r = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
}

backend_tests!(healthz_and_readyz_answer);

async fn readyz_status(app: &TestApp) -> u16 {
    let r = app.req(reqwest::Method::GET, "/readyz", None, None).await;
    if r.status == 503 {
        r.problem(503, "service_unavailable");
        return 503;
    }
    r.status.as_u16()
}

/// Polls readiness a bounded number of times (pooled connections that died are discarded one per probe).
async fn eventually(app: &TestApp, want: u16) -> bool {
    for _ in 0..40 {
        if readyz_status(app).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_a_sqlite_file_that_goes_and_comes_back() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(readyz_status(&app).await, 200);
    let path = app.database_url.trim_start_matches("sqlite://").to_owned();
    let moved = format!("{path}.away");
    std::fs::rename(&path, &moved).unwrap();
    assert_eq!(readyz_status(&app).await, 503, "the database file is gone");
    app.client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    std::fs::rename(&moved, &path).unwrap();
    assert_eq!(readyz_status(&app).await, 200, "back without a restart");
}

/// A TCP forwarder that can cut every connection and refuse new ones, to take PostgreSQL "away", or stall:
/// keep every connection open and accept new ones, but forward nothing (a database that stopped answering).
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    flowing: tokio::sync::watch::Sender<bool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Copies `from` to `to`, holding what it read while the proxy is stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut flowing: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if flowing.wait_for(|f| *f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (flowing, _) = tokio::sync::watch::channel(true);
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (u, c, f) = (up.clone(), conns.clone(), flowing.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut gate = f.subscribe();
                c.lock().await.push(tokio::spawn(async move {
                    // A stalled proxy does not even connect onwards.
                    if gate.wait_for(|f| *f).await.is_err() {
                        return;
                    }
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (ir, iw) = inbound.into_split();
                    let (or, ow) = outbound.into_split();
                    tokio::join!(pump(ir, ow, gate.clone()), pump(or, iw, gate));
                }));
            }
        });
        Self {
            addr,
            up,
            flowing,
            conns,
        }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().await.drain(..) {
            h.abort();
        }
    }

    fn stall(&self) {
        self.flowing.send_replace(false);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
        self.flowing.send_replace(true);
    }
}

/// `host:port` of a postgres URL (after the credentials).
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hp = rest.split(['/', '?']).next().unwrap_or(rest);
    if hp.contains(':') {
        hp.to_owned()
    } else {
        format!("{hp}:5432")
    }
}

/// A server on PostgreSQL reached through a [`Proxy`], or `None` (reported by `spawn_pg`, a failure under
/// CI) when no PostgreSQL is configured.
async fn behind_proxy() -> Option<(TestApp, Proxy)> {
    let Ok(base) = std::env::var("FIELDWORK_TEST_POSTGRES_URL") else {
        assert!(TestApp::spawn_pg().await.is_none());
        return None;
    };
    let real = host_port(&base);
    let proxy = Proxy::start(real.clone()).await;
    let via = proxy.addr.to_string();
    let app = TestApp::spawn_pg_via(|url| url.replacen(&real, &via, 1))
        .await
        .unwrap();
    Some((app, proxy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_a_postgres_outage_and_recovery() {
    let Some((app, proxy)) = behind_proxy().await else {
        return;
    };
    assert!(
        app.database_url.contains(&proxy.addr.to_string()),
        "the server talks through the proxy"
    );
    assert_eq!(readyz_status(&app).await, 200);
    proxy.cut().await;
    assert!(
        eventually(&app, 503).await,
        "503 while PostgreSQL is unreachable"
    );
    app.client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    proxy.restore();
    assert!(
        eventually(&app, 200).await,
        "200 again once it is back, without a restart"
    );
}

/// The test server's bound on database work (`db_timeout_secs` in the tests' settings).
const BOUND: Duration = Duration::from_secs(2);
/// What a request may take beyond the bound (the answer itself, a loaded test machine).
const SLACK: Duration = Duration::from_millis(1500);

/// Sends `path` with `token`; returns the status and how long the answer took.
async fn timed(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Duration) {
    let start = std::time::Instant::now();
    let r = tokio::time::timeout(
        BOUND + SLACK + Duration::from_secs(5),
        app.req(reqwest::Method::GET, path, token, None),
    )
    .await
    .unwrap_or_else(|_| panic!("{path}: no answer at all"));
    let took = start.elapsed();
    let status = r.status.as_u16();
    if status == 503 {
        r.problem(503, "service_unavailable");
    }
    (status, took)
}

/// A PostgreSQL that stops answering (connections stay open, nothing comes back): every request that needs it,
/// `/readyz` included, is answered 503 within the bound, and all is well again once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_that_stops_answering_gives_503_within_the_bound() {
    let Some((app, proxy)) = behind_proxy().await else {
        return;
    };
    let token = app.login("M0001").await;
    assert_eq!(timed(&app, "/api/v1/me", Some(&token)).await.0, 200);
    proxy.stall();
    // More requests than pooled connections: the ones waiting for a connection are bounded too.
    let paths = [
        "/readyz",
        "/api/v1/me",
        "/api/v1/customers",
        "/api/v1/me/today",
    ];
    let answers = futures_util::future::join_all(
        (0..3)
            .flat_map(|_| paths)
            .map(|p| timed(&app, p, (p != "/readyz").then_some(token.as_str()))),
    )
    .await;
    for (status, took) in answers {
        assert_eq!(status, 503);
        assert!(took < BOUND + SLACK, "answered after {took:?}");
    }
    let login = app.login_full("M0002", "demo1234").await;
    login.problem(503, "service_unavailable");
    proxy.restore();
    assert!(eventually(&app, 200).await, "ready again once it answers");
    assert_eq!(timed(&app, "/api/v1/me", Some(&token)).await.0, 200);
}

/// SQLite whose file another process holds locked for writing: a write is answered 503 within the bound
/// (the busy timeout), reads go on, and writes work again once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_gives_503_within_the_bound() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.login("M0001").await;
    let path = app.database_url.trim_start_matches("sqlite://").to_owned();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut other = diesel::SqliteConnection::establish(&path).unwrap();
        other.batch_execute("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        other.batch_execute("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    let start = std::time::Instant::now();
    let logout = app
        .req(
            reqwest::Method::POST,
            "/api/v1/auth/logout",
            Some(&token),
            None,
        )
        .await;
    let took = start.elapsed();
    logout.problem(503, "service_unavailable");
    assert!(took < BOUND + SLACK, "answered after {took:?}");
    assert_eq!(
        timed(&app, "/api/v1/me", Some(&token)).await.0,
        200,
        "reads go on"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    // The write answered 503 was not carried out later: the session is still live, and ends now.
    app.req(
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(&token),
        None,
    )
    .await
    .expect(204);
}
