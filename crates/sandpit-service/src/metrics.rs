//! Counters for `GET /metrics` (Prometheus text): sessions open, runs and their durations by
//! operation, errors by kind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::ErrorKind;

/// Upper bounds of the duration buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    runs: Mutex<BTreeMap<&'static str, Histogram>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    pool_claims: Mutex<BTreeMap<&'static str, u64>>,
    sessions_opened: AtomicU64,
    sessions_closed: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// One operation (`execute`, `run`, `command`, `one_shot`, ...) that took `took`.
    pub fn run(&self, operation: &'static str, took: Duration) {
        let mut runs = self.runs.lock().expect("metrics");
        let h = runs.entry(operation).or_insert_with(|| Histogram {
            counts: vec![0; BUCKETS.len()],
            ..Default::default()
        });
        let secs = took.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// The mean time of the one-shot runs so far (one second before any ran).
    pub fn one_shot_pace(&self) -> Duration {
        let runs = self.runs.lock().expect("metrics");
        match runs.get("one_shot") {
            Some(h) if h.count > 0 => Duration::from_secs_f64(h.sum / h.count as f64),
            _ => Duration::from_secs(1),
        }
    }

    /// One request that failed with `kind`.
    pub fn error(&self, kind: ErrorKind) {
        *self
            .errors
            .lock()
            .expect("metrics")
            .entry(kind.as_str())
            .or_default() += 1;
    }

    /// A warm-pool member claimed across a cluster, by outcome: on the node that took the
    /// run `won`, `lost` (another node claimed it first) or `none` (nothing idle elsewhere);
    /// on the member's node `held` (taken for the run) or `gone` (no longer idle).
    pub fn pool_claim(&self, outcome: &'static str) {
        *self
            .pool_claims
            .lock()
            .expect("metrics")
            .entry(outcome)
            .or_default() += 1;
    }

    /// A session opened.
    pub fn opened(&self) {
        self.sessions_opened.fetch_add(1, Ordering::Relaxed);
    }

    /// A session closed.
    pub fn closed(&self) {
        self.sessions_closed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition, with `open` sessions now.
    pub fn render(&self, open: usize) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP sandpit_sessions_open Sessions open now.\n# TYPE sandpit_sessions_open gauge\n",
        );
        out.push_str(&format!("sandpit_sessions_open {open}\n"));
        out.push_str("# HELP sandpit_sessions_opened_total Sessions opened.\n# TYPE sandpit_sessions_opened_total counter\n");
        out.push_str(&format!(
            "sandpit_sessions_opened_total {}\n",
            self.sessions_opened.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP sandpit_sessions_closed_total Sessions closed or expired.\n# TYPE sandpit_sessions_closed_total counter\n");
        out.push_str(&format!(
            "sandpit_sessions_closed_total {}\n",
            self.sessions_closed.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP sandpit_run_duration_seconds Runs, executes and commands by operation.\n# TYPE sandpit_run_duration_seconds histogram\n");
        for (op, h) in self.runs.lock().expect("metrics").iter() {
            for (bound, count) in BUCKETS.iter().zip(&h.counts) {
                out.push_str(&format!(
                    "sandpit_run_duration_seconds_bucket{{operation=\"{op}\",le=\"{bound}\"}} {count}\n"
                ));
            }
            out.push_str(&format!(
                "sandpit_run_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}\n",
                h.count
            ));
            out.push_str(&format!(
                "sandpit_run_duration_seconds_sum{{operation=\"{op}\"}} {:.6}\n",
                h.sum
            ));
            out.push_str(&format!(
                "sandpit_run_duration_seconds_count{{operation=\"{op}\"}} {}\n",
                h.count
            ));
        }
        out.push_str("# HELP sandpit_errors_total Requests that failed, by kind.\n# TYPE sandpit_errors_total counter\n");
        let errors = self.errors.lock().expect("metrics");
        for kind in ErrorKind::ALL {
            out.push_str(&format!(
                "sandpit_errors_total{{kind=\"{}\"}} {}\n",
                kind.as_str(),
                errors.get(kind.as_str()).copied().unwrap_or(0)
            ));
        }
        let claims = self.pool_claims.lock().expect("metrics");
        if !claims.is_empty() {
            out.push_str("# HELP sandpit_pool_claims_total Warm-pool members claimed across the cluster, by outcome.\n# TYPE sandpit_pool_claims_total counter\n");
            for (outcome, n) in claims.iter() {
                out.push_str(&format!(
                    "sandpit_pool_claims_total{{outcome=\"{outcome}\"}} {n}\n"
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_buckets() {
        let m = Metrics::default();
        m.run("run", Duration::from_millis(30));
        m.run("run", Duration::from_secs(2));
        m.error(ErrorKind::NotFound);
        m.opened();
        let text = m.render(3);
        assert!(text.contains("sandpit_sessions_open 3\n"));
        assert!(
            text.contains("sandpit_run_duration_seconds_bucket{operation=\"run\",le=\"0.05\"} 1\n")
        );
        assert!(
            text.contains("sandpit_run_duration_seconds_bucket{operation=\"run\",le=\"+Inf\"} 2\n")
        );
        assert!(text.contains("sandpit_errors_total{kind=\"not_found\"} 1\n"));
        assert!(text.contains("sandpit_errors_total{kind=\"internal\"} 0\n"));
    }
}
