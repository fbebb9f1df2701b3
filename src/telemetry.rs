//! Logs, request ids and Prometheus metrics. The request id lives in a task-local for the whole request so
//! that error bodies and audit rows carry it; metrics are labelled by route template, never by raw path.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

/// The request/response header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or `-` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// The request id and client address of a request, kept in its extensions for handlers (audit).
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The request id.
    pub request_id: String,
    /// The client's address: the TCP peer, or the last `X-Forwarded-For` hop when `TrustForwardedFor` is set.
    pub client_ip: Option<String>,
}

/// App data: whether the last `X-Forwarded-For` hop names the client (`FIELDWORK_TRUST_FORWARDED_FOR`).
#[derive(Debug, Clone, Copy)]
pub struct TrustForwardedFor(pub bool);

/// The client address of a request: the last hop of `X-Forwarded-For` (the one the proxy in front of us
/// appended) when trusted and well-formed, else the TCP peer.
fn client_address(req: &ServiceRequest) -> Option<String> {
    let trusted = req
        .app_data::<actix_web::web::Data<TrustForwardedFor>>()
        .is_some_and(|t| t.0);
    let forwarded = trusted
        .then(|| req.headers().get("x-forwarded-for"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|hop| hop.trim().parse::<std::net::IpAddr>().ok());
    forwarded
        .or_else(|| req.peer_addr().map(|a| a.ip()))
        .map(|ip| ip.to_string())
}

/// Installs the global subscriber: `FIELDWORK_LOG` filter (default `info`), JSON when asked.
pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_env("FIELDWORK_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a person at a terminal, never in a file or a log shipper.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn valid_client_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_owned())
}

/// Middleware: assigns (or echoes) the request id, scopes it over the request and sets the header.
pub async fn request_id_mw(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(valid_client_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let client_ip = client_address(&req);
    req.extensions_mut().insert(RequestMeta {
        request_id: id.clone(),
        client_ip,
    });
    let header = HeaderValue::from_str(&id).ok();
    let mut res = REQUEST_ID.scope(id, next.call(req)).await?;
    if let Some(h) = header {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), h);
    }
    Ok(res)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

/// The process's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

struct MetricsInner {
    registry: Registry,
    requests: Family<HttpLabels, Counter>,
    latency: Family<HttpLabels, Histogram>,
    auth_failures: Family<ReasonLabels, Counter>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with the HTTP and pool metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fieldwork");
        let requests = Family::<HttpLabels, Counter>::default();
        let latency = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
        });
        let auth_failures = Family::<ReasonLabels, Counter>::default();
        let pool_connections = Gauge::default();
        let pool_idle = Gauge::default();
        let pool_max = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and status",
            latency.clone(),
        );
        registry.register(
            "auth_failures",
            "Refused password checks by reason: wrong (wrong password or unknown employee number), \
             locked (a locked employee number or client address)",
            auth_failures.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Open connections in the read pool",
            pool_connections.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle connections in the read pool",
            pool_idle.clone(),
        );
        registry.register(
            "db_pool_max_connections",
            "Configured size of the read pool",
            pool_max.clone(),
        );
        Self {
            inner: Arc::new(MetricsInner {
                registry,
                requests,
                latency,
                auth_failures,
                pool_connections,
                pool_idle,
                pool_max,
            }),
        }
    }

    fn observe(&self, method: &str, route: &str, status: u16, secs: f64) {
        let labels = HttpLabels {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        self.inner.requests.get_or_create(&labels).inc();
        self.inner.latency.get_or_create(&labels).observe(secs);
    }

    /// Counts a refused password check (`wrong` or `locked`).
    pub fn auth_failure(&self, reason: &'static str) {
        self.inner
            .auth_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Renders the Prometheus text format, with the pool state read now.
    pub fn render(&self, pool: (u32, u32), pool_max: u32) -> String {
        self.inner.pool_connections.set(i64::from(pool.0));
        self.inner.pool_idle.set(i64::from(pool.1));
        self.inner.pool_max.set(i64::from(pool_max));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Middleware: counts and times every request by method, route template and status.
pub async fn metrics_mw(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let metrics = req.app_data::<actix_web::web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        let route = res
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        m.observe(
            &method,
            &route,
            res.status().as_u16(),
            start.elapsed().as_secs_f64(),
        );
    }
    Ok(res)
}
