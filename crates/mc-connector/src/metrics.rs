//! Process metrics for heartbeats, read from `/proc` (Linux). Elsewhere memory and CPU
//! read as 0: the connector is built for Linux hosts next to their gateway.

use std::time::Instant;

/// CPU use between two readings.
#[derive(Debug, Default)]
pub struct CpuMeter {
    last: Option<(Instant, f64)>,
}

/// USER_HZ, the unit of `/proc/self/stat` times: 100 on every Linux architecture we run on.
const TICKS_PER_SECOND: f64 = 100.0;

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

impl CpuMeter {
    /// Percent of one core used since the previous call (0 on the first).
    pub fn sample(&mut self) -> f64 {
        let Some(ticks) = cpu_seconds() else {
            return 0.0;
        };
        let now = Instant::now();
        let pct = match self.last {
            Some((at, before)) => {
                let wall = now.duration_since(at).as_secs_f64();
                if wall > 0.0 {
                    ((ticks - before) / TICKS_PER_SECOND) / wall * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, ticks));
        (pct * 10.0).round() / 10.0
    }
}

/// Resident memory of this process in MiB.
pub fn memory_mb() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0.0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| (kib / 1024.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_real_process_figures() {
        assert!(super::memory_mb() > 1.0);
        let mut cpu = super::CpuMeter::default();
        assert_eq!(cpu.sample(), 0.0);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(cpu.sample() >= 0.0);
    }
}
