//! Latency statistics and the sequential login measurement.

use std::time::{Duration, Instant};

/// Percentiles of a set of durations, in milliseconds.
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn summarize(mut samples: Vec<Duration>) -> Summary {
    samples.sort();
    let n = samples.len().max(1);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| ms(samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1]);
    Summary {
        n: samples.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: samples.last().copied().map_or(0.0, ms),
    }
}

/// Logs in `n` times, one after another, and prints the latency distribution.
pub async fn login(api: &str, email: &str, password: &str, n: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("{api}/api/v1/auth/login");
    let body = serde_json::json!({"email": email, "password": password});
    // Warm up connections and caches.
    for _ in 0..3 {
        http.post(&url)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        http.post(&url)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        samples.push(started.elapsed());
    }
    let s = summarize(samples);
    println!(
        "| login (argon2id m=19456 KiB, t=2), sequential | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        s.n, s.p50, s.p90, s.p99, s.max
    );
    Ok(())
}
