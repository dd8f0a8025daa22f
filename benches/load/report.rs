//! The table printed and written to `BENCHMARKS.md`, with the machine it ran on.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::baselines::InsertRun;
use crate::latency::Latency;
use crate::wrk::Run;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub struct Row {
    backend: Backend,
    workload: &'static str,
    connections: u32,
    run: Run,
}

impl Row {
    pub fn new(backend: Backend, workload: &'static str, connections: u32, run: Run) -> Row {
        Row {
            backend,
            workload,
            connections,
            run,
        }
    }
}

pub struct Report {
    binary_mib: f64,
    duration: Duration,
    pub fixed: Vec<(u32, Run)>,
    pub inserts: Vec<(Backend, u32, InsertRun)>,
    pub rows: Vec<Row>,
    pub latency: Vec<(Backend, Latency)>,
    pub startup: Vec<(Backend, Duration)>,
    pub peak_rss: Vec<(Backend, Option<f64>)>,
    pub notes: Vec<String>,
    pub total: Duration,
}

impl Report {
    pub fn new(binary: &Path, duration: Duration) -> Report {
        let binary_mib = std::fs::metadata(binary)
            .map(|m| m.len() as f64 / 1_048_576.0)
            .unwrap_or(0.0);
        Report {
            binary_mib,
            duration,
            fixed: Vec::new(),
            inserts: Vec::new(),
            rows: Vec::new(),
            latency: Vec::new(),
            startup: Vec::new(),
            peak_rss: Vec::new(),
            notes: Vec::new(),
            total: Duration::ZERO,
        }
    }

    /// The baseline a workload is divided by: the fixed-string handler for the page,
    /// the one-row insert loop on the same database for the two that write.
    fn baseline(&self, row: &Row) -> f64 {
        let c = row.connections;
        if row.workload == "offer page" {
            self.fixed.iter().find(|(fc, _)| *fc == c).map_or(0.0, |(_, r)| r.rps)
        } else {
            self.inserts
                .iter()
                .find(|(b, ic, _)| *b == row.backend && *ic == c)
                .map_or(0.0, |(_, _, r)| r.rps)
        }
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Written by `tools/bench` (`cargo bench --bench load`); rerun it to refresh. Load from `wrk`, \
             {} s per run, 2 threads. Ratios divide by baselines measured in the same run on the same \
             machine.\n",
            self.duration.as_secs()
        );
        let _ = writeln!(s, "## Machine\n\n{}\n", machine());
        let _ = writeln!(s, "## Baselines\n");
        let _ = writeln!(
            s,
            "| baseline | backend | conns | req/s | p50 ms | p99 ms |\n|---|---|---:|---:|---:|---:|"
        );
        for (c, r) in &self.fixed {
            let _ = writeln!(
                s,
                "| actix fixed string | - | {c} | {:.0} | {:.2} | {:.2} |",
                r.rps, r.p50_ms, r.p99_ms
            );
        }
        for (b, c, r) in &self.inserts {
            let _ = writeln!(
                s,
                "| INSERT + commit loop | {} | {c} | {:.0} | {:.2} | {:.2} |",
                b.name(),
                r.rps,
                r.p50_ms,
                r.p99_ms
            );
        }
        let _ = writeln!(s, "\n## leadgate\n");
        let _ = writeln!(
            s,
            "| workload | backend | conns | req/s | p50 ms | p99 ms | × baseline | failures |\n|---|---|---:|---:|---:|---:|---:|---:|"
        );
        for row in &self.rows {
            let base = self.baseline(row);
            let ratio = if base > 0.0 { row.run.rps / base } else { 0.0 };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                row.workload,
                row.backend.name(),
                row.connections,
                row.run.rps,
                row.run.p50_ms,
                row.run.p99_ms,
                ratio,
                row.run.failures
            );
        }
        let _ = writeln!(s, "\n## Event to CRM, start-up, memory\n");
        let _ = writeln!(s, "| backend | event→CRM p50 ms | p99 ms | samples | start to first /healthz 200 | peak RSS under load |\n|---|---:|---:|---:|---:|---:|");
        for (b, l) in &self.latency {
            let startup = self
                .startup
                .iter()
                .find(|(x, _)| x == b)
                .map(|(_, d)| d.as_secs_f64() * 1000.0);
            let rss = self.peak_rss.iter().find(|(x, _)| x == b).and_then(|(_, r)| *r);
            let _ = writeln!(
                s,
                "| {} | {:.2} | {:.2} | {} | {} | {} |",
                b.name(),
                l.p50_ms,
                l.p99_ms,
                l.samples,
                startup.map_or("-".into(), |ms| format!("{ms:.0} ms")),
                rss.map_or("-".into(), |m| format!("{m:.1} MiB")),
            );
        }
        let _ = writeln!(
            s,
            "\nRelease binary: {:.1} MiB. Whole run: {:.0} s.",
            self.binary_mib,
            self.total.as_secs_f64()
        );
        if !self.notes.is_empty() {
            let _ = writeln!(s, "\nNotes:");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC");
    format!(
        "{cpu}, {cores} cores, {mem} memory, Linux {}, measured {date}",
        kernel.trim()
    )
}
