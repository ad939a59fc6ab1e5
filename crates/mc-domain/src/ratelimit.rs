//! Rate limiting shared across every instance: a generic cell rate algorithm (GCRA) in a
//! Redis script, so one key costs one round trip and one small string.

use crate::config::Quota;
use crate::error::Result;
use crate::redis::RedisHandle;
use redis::Script;
use std::sync::Arc;
use std::time::Duration;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The sustained limit (requests per minute), for `X-RateLimit-Limit`.
    pub limit: u32,
    /// Requests that could be made right now, for `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// Unix time (seconds) when the allowance is full again, for `X-RateLimit-Reset`.
    pub reset_at: i64,
    /// When denied: how long until a request would be allowed.
    pub retry_after: Duration,
}

// GCRA: the key stores the "theoretical arrival time" (TAT) in milliseconds. A request is
// allowed when TAT - now <= interval * (burst - 1); it then advances TAT by one interval.
// The Redis clock is used so that every API instance agrees on "now".
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - interval * (burst - 1)
if allow_at > now then
  return {0, 0, tat - now, allow_at - now, now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now + 1000)
local remaining = math.floor((now - (new_tat - interval * burst)) / interval)
if remaining < 0 then remaining = 0 end
return {1, remaining, new_tat - now, 0, now}
";

/// Checks and consumes allowance for keys under a prefix.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    redis: RedisHandle,
    script: Arc<Script>,
}

impl RateLimiter {
    /// A limiter storing its state in `redis`.
    pub fn new(redis: RedisHandle) -> Self {
        Self {
            redis,
            script: Arc::new(Script::new(GCRA)),
        }
    }

    /// Consumes one request for `key` under `quota`.
    pub async fn check(&self, key: &str, quota: Quota) -> Result<Decision> {
        let interval_ms = (60_000 / u64::from(quota.per_minute.max(1))).max(1);
        let mut conn = self.redis.conn();
        let (allowed, remaining, until_full_ms, retry_ms, now_ms): (i64, i64, i64, i64, i64) = self
            .script
            .key(self.redis.key(format!("rl:{key}")))
            .arg(interval_ms)
            .arg(quota.burst.max(1))
            .invoke_async(&mut conn)
            .await?;
        Ok(Decision {
            allowed: allowed == 1,
            limit: quota.per_minute,
            remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
            reset_at: (now_ms + until_full_ms.max(0) + 999) / 1000,
            retry_after: Duration::from_millis(u64::try_from(retry_ms.max(0)).unwrap_or(0)),
        })
    }
}
