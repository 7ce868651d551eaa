//! The process's metrics, rendered in the Prometheus text exposition format 0.0.4
//! (`routes::observe` serves them at `GET /metrics` and counts every request).
//!
//! Counters live in memory per process; gauges (hash queue depth, open tenants, connections)
//! are read when scraped. Label values come from a bounded set: the matched route template
//! (never the raw path, which may carry ids), the method, the status, a login outcome, a node
//! id. Nothing a user typed becomes a label.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tenant_runtime::RouterStats;

/// Set on a response that came from another node: that node's id (for the request log).
#[derive(Debug, Clone)]
pub struct ForwardedTo(pub String);

/// Values read when metrics are scraped.
#[derive(Debug, Clone)]
pub struct Gauges<'a> {
    pub node_id: &'a str,
    pub hash_queue_depth: usize,
    pub tenants: RouterStats,
    /// Under replication: the worst lag in seconds (once read), databases replicated, and
    /// restarts of Litestream.
    pub replication: Option<(Option<i64>, i64, i64)>,
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LoginOutcome {
    Success,
    Invalid,
    Blocked,
    Suspended,
    ResetRequired,
    /// The password was right; a second step or enrolling a factor follows.
    SecondStep,
    Throttled,
    Busy,
    Error,
}

impl LoginOutcome {
    const ALL: [Self; 9] = [
        Self::Success,
        Self::Invalid,
        Self::Blocked,
        Self::Suspended,
        Self::ResetRequired,
        Self::SecondStep,
        Self::Throttled,
        Self::Busy,
        Self::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Invalid => "invalid",
            Self::Blocked => "blocked",
            Self::Suspended => "suspended",
            Self::ResetRequired => "reset_required",
            Self::SecondStep => "second_step",
            Self::Throttled => "throttled",
            Self::Busy => "busy",
            Self::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
struct Histogram {
    /// Count per bucket (not cumulative), plus one for +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS.len() + 1],
            sum: 0.0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[i] += 1;
        self.sum += secs;
    }
}

type RequestKey = (String, String, u16);

#[derive(Default)]
struct Inner {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    logins: [AtomicU64; LoginOutcome::ALL.len()],
    forwarded: Mutex<BTreeMap<(String, &'static str), u64>>,
    forward_latency: Mutex<BTreeMap<String, Histogram>>,
}

/// The process's counters; cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn observe_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        *self
            .inner
            .requests
            .lock()
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        self.inner
            .latency
            .lock()
            .entry((route.to_owned(), method.to_owned()))
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn login(&self, outcome: LoginOutcome) {
        let i = LoginOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(LoginOutcome::ALL.len() - 1);
        self.inner.logins[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn logins(&self, outcome: LoginOutcome) -> u64 {
        LoginOutcome::ALL
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |i| self.inner.logins[i].load(Ordering::Relaxed))
    }

    /// A request proxied to node `to`: `result` is `ok` (an answer came back) or `unavailable`.
    pub fn forwarded(&self, to: &str, result: &'static str, took: Duration) {
        *self
            .inner
            .forwarded
            .lock()
            .entry((to.to_owned(), result))
            .or_default() += 1;
        self.inner
            .forward_latency
            .lock()
            .entry(to.to_owned())
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Requests proxied to other nodes so far, whatever the result.
    pub fn forwarded_total(&self) -> u64 {
        self.inner.forwarded.lock().values().sum()
    }

    /// The text exposition of every metric, with the gauges read now.
    pub fn render(&self, gauges: &Gauges<'_>) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let node = escape(gauges.node_id);

        family(
            &mut out,
            "tenantd_http_requests_total",
            "counter",
            "HTTP requests answered, by matched route, method and status.",
        );
        for ((route, method, status), n) in self.inner.requests.lock().iter() {
            let _ = writeln!(
                out,
                "tenantd_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        family(
            &mut out,
            "tenantd_http_request_duration_seconds",
            "histogram",
            "Time to answer an HTTP request, by matched route and method.",
        );
        for ((route, method), h) in self.inner.latency.lock().iter() {
            let labels = format!("route=\"{}\",method=\"{}\"", escape(route), escape(method));
            histogram(
                &mut out,
                "tenantd_http_request_duration_seconds",
                &labels,
                h,
            );
        }

        family(
            &mut out,
            "tenantd_logins_total",
            "counter",
            "Sign-in attempts by outcome.",
        );
        for (i, o) in LoginOutcome::ALL.iter().enumerate() {
            let n = self.inner.logins[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tenantd_logins_total{{outcome=\"{}\"}} {n}",
                o.as_str()
            );
        }

        family(
            &mut out,
            "tenantd_forwarded_requests_total",
            "counter",
            "Requests proxied to the node holding the tenant, by node and result.",
        );
        for ((to, result), n) in self.inner.forwarded.lock().iter() {
            let _ = writeln!(
                out,
                "tenantd_forwarded_requests_total{{to=\"{}\",result=\"{result}\"}} {n}",
                escape(to)
            );
        }
        family(
            &mut out,
            "tenantd_forward_duration_seconds",
            "histogram",
            "Round trip of a proxied request, by target node.",
        );
        for (to, h) in self.inner.forward_latency.lock().iter() {
            let labels = format!("to=\"{}\"", escape(to));
            histogram(&mut out, "tenantd_forward_duration_seconds", &labels, h);
        }

        let stats = &gauges.tenants;
        gauge(
            &mut out,
            "tenantd_hash_queue_depth",
            "Password hash jobs running or waiting.",
            gauges.hash_queue_depth as u64,
        );
        gauge(
            &mut out,
            "tenantd_open_tenants",
            "Tenants with an open connection pool.",
            stats.open_tenants as u64,
        );
        gauge(
            &mut out,
            "tenantd_max_connections",
            "Cap on open tenant database connections.",
            stats.max_connections as u64,
        );
        gauge(
            &mut out,
            "tenantd_open_connections",
            "Open tenant database connections.",
            stats.open_connections as u64,
        );
        family(
            &mut out,
            "tenantd_tenant_opens_total",
            "counter",
            "Times a closed tenant was opened.",
        );
        let _ = writeln!(out, "tenantd_tenant_opens_total {}", stats.tenant_opens);
        family(
            &mut out,
            "tenantd_tenant_evictions_total",
            "counter",
            "Idle tenants closed to stay under the connection cap.",
        );
        let _ = writeln!(out, "tenantd_tenant_evictions_total {}", stats.evictions);
        family(
            &mut out,
            "tenantd_node_info",
            "gauge",
            "This node's id (always 1).",
        );
        let _ = writeln!(out, "tenantd_node_info{{node=\"{node}\"}} 1");
        if let Some((worst, databases, restarts)) = gauges.replication {
            if let Some(worst) = worst {
                gauge(
                    &mut out,
                    "tenantd_replica_lag_seconds",
                    "Seconds since the database Litestream synced longest ago was last synced.",
                    u64::try_from(worst).unwrap_or(0),
                );
            }
            gauge(
                &mut out,
                "tenantd_replica_databases",
                "Databases Litestream replicates.",
                u64::try_from(databases).unwrap_or(0),
            );
            family(
                &mut out,
                "tenantd_replica_restarts_total",
                "counter",
                "Times Litestream exited and was started again.",
            );
            let _ = writeln!(out, "tenantd_replica_restarts_total {restarts}");
        }
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn histogram(out: &mut String, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (i, le) in BUCKETS.iter().enumerate() {
        cumulative += h.counts[i];
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    cumulative += h.counts[BUCKETS.len()];
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

/// A label value as the exposition format wants it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
