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

/// A TCP forwarder that can cut every connection and refuse new ones, to take PostgreSQL "away".
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (u, c) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                c.lock().await.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Self { addr, up, conns }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().await.drain(..) {
            h.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_a_postgres_outage_and_recovery() {
    let Ok(base) = std::env::var("FIELDWORK_TEST_POSTGRES_URL") else {
        // spawn_pg reports the skip (and fails under CI).
        assert!(TestApp::spawn_pg().await.is_none());
        return;
    };
    let real = host_port(&base);
    let proxy = Proxy::start(real.clone()).await;
    let via = proxy.addr.to_string();
    let app = TestApp::spawn_pg_via(|url| url.replacen(&real, &via, 1))
        .await
        .unwrap();
    assert!(
        app.database_url.contains(&via),
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
