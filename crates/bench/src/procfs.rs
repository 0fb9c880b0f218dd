//! Memory figures of a process from `/proc/<pid>/status` (Linux).

use std::path::PathBuf;

/// Resident set figures, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// Peak resident set size (`VmHWM`).
    pub peak_kib: u64,
    /// Resident set size now (`VmRSS`).
    pub now_kib: u64,
}

fn status_path(pid: Option<u32>) -> PathBuf {
    match pid {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/status")),
        None => PathBuf::from("/proc/self/status"),
    }
}

/// `VmHWM` and `VmRSS` of `pid` (`None`: this process), if readable.
pub fn memory(pid: Option<u32>) -> Option<Memory> {
    let text = std::fs::read_to_string(status_path(pid)).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some(Memory {
        peak_kib: field("VmHWM:")?,
        now_kib: field("VmRSS:")?,
    })
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// CPU seconds (user + system) used so far by this process's live threads,
/// summed by thread name with digits removed (`rdk:broker1` and `rdk:broker2`
/// are `rdk:broker`). Threads that already ended are not counted.
pub fn thread_cpu() -> std::collections::BTreeMap<String, f64> {
    // USER_HZ: 100 on every Linux this runs on.
    const TICKS_PER_S: f64 = 100.0;
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let raw_name = &stat[open + 1..close];
        // Numbered threads of one kind are summed (RocksDB's, librdkafka's
        // brokers), except the projector's lanes: their balance is a figure.
        let name: String = if raw_name.starts_with("projector-fold") {
            raw_name.to_owned()
        } else {
            raw_name.chars().filter(|c| !c.is_ascii_digit()).collect()
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the name.
        let seconds = (ticks(11) + ticks(12)) as f64 / TICKS_PER_S;
        *out.entry(name).or_insert(0.0) += seconds;
    }
    out
}

/// CPU seconds per thread name used between two [`thread_cpu`] samples, largest
/// first (threads started in between count from zero).
pub fn cpu_delta(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = after
        .iter()
        .map(|(name, t)| (name.clone(), t - before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, t)| *t >= 0.005)
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}
