//! Drives Debian's `wrk` and reads its summary: requests per second and the latency
//! distribution (`--latency`).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Run {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub requests: u64,
    /// Answers outside 2xx/3xx plus socket errors: a run with any is flagged.
    pub failures: u64,
}

pub fn run(url: &str, connections: u32, duration: Duration, script: Option<&Path>) -> Result<Run, String> {
    let threads = connections.clamp(1, 2);
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("--latency");
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    let out = cmd
        .arg(url)
        .output()
        .map_err(|e| format!("cannot run wrk (install it: apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    parse(&text).ok_or_else(|| format!("cannot read wrk's output:\n{text}"))
}

fn parse(text: &str) -> Option<Run> {
    let mut run = Run::default();
    let mut in_distribution = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("Latency Distribution") {
            in_distribution = true;
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] if in_distribution => run.p50_ms = millis(v)?,
            ["99%", v] if in_distribution => run.p99_ms = millis(v)?,
            ["Requests/sec:", v] => run.rps = v.parse().ok()?,
            [n, "requests", "in", ..] => run.requests = n.parse().ok()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => run.failures += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                run.failures += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    Some(run)
}

/// wrk prints durations as `812.00us`, `1.23ms` or `2.01s`.
fn millis(v: &str) -> Option<f64> {
    let (num, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 60_000.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * factor)
}

/// Numbers wrk's threads 1, 2, … into each thread's global `tid`.
pub const THREAD_IDS: &str = r#"
local nthreads = 0
setup = function(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end
"#;

/// Replays pre-signed webhooks from a file (`signature TAB body` per line), each thread
/// taking every n-th line so no event id is sent twice while the file lasts.
pub fn webhook_lua(file: &Path) -> String {
    format!(
        r#"{THREAD_IDS}
local lines = {{}}
local i = 0
init = function(args)
  for line in io.lines("{path}") do
    lines[#lines + 1] = line
  end
  i = tid - 1
end
request = function()
  local n = #lines
  local line = lines[(i % n) + 1]
  i = i + 2
  local tab = string.find(line, "\t", 1, true)
  local sig = string.sub(line, 1, tab - 1)
  local body = string.sub(line, tab + 1)
  return wrk.format("POST", "/webhooks/sandbox",
    {{["Content-Type"] = "application/json", ["Sandbox-Signature"] = sig}}, body)
end
"#,
        path = file.display()
    )
}
