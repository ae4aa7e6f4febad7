//! How many attempts, and how long to wait between them.

use super::RandomSource;
use crate::model::Millis;
use serde::{Deserialize, Serialize};

/// The retry policy. Defaults: 4 retries (5 attempts), delay `min(1000·2^n, 60000)` ms after the
/// n-th failure (n from 0), plus up to 30 % jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
// Unknown fields are refused: a misspelt one (`maxAttempts`) would leave the default in place
// without a word.
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt; attempts in all = `max_retries + 1`.
    pub max_retries: u32,
    /// The first delay, in ms.
    pub base_delay_ms: Millis,
    /// The longest delay before jitter, in ms.
    pub max_delay_ms: Millis,
    /// The multiplier between delays.
    pub factor: f64,
    /// Up to this fraction of the delay is added at random (0.3 = up to 30 %).
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_delay_ms: 1000,
            max_delay_ms: 60_000,
            factor: 2.0,
            jitter: 0.3,
        }
    }
}

impl RetryPolicy {
    /// Attempts allowed in all.
    pub fn max_attempts(&self) -> u32 {
        self.max_retries.saturating_add(1)
    }

    /// Whether another attempt is allowed after `attempts_made` counted attempts.
    pub fn allows_another(&self, attempts_made: u32) -> bool {
        attempts_made < self.max_attempts()
    }

    /// The delay before the retry that follows the `failures`-th failure (1 for the first),
    /// jitter drawn from `rng`; at least `retry_after` when the server asked for that.
    pub fn delay(
        &self,
        failures: u32,
        retry_after: Option<Millis>,
        rng: &mut dyn RandomSource,
    ) -> Millis {
        let n = failures.saturating_sub(1);
        let exp = self
            .factor
            .max(1.0)
            .powi(i32::try_from(n).unwrap_or(i32::MAX));
        let base = (self.base_delay_ms as f64 * exp).min(self.max_delay_ms as f64);
        let jitter = base * self.jitter.clamp(0.0, 10.0) * rng.next_f64();
        let backoff = (base + jitter).round() as Millis;
        backoff.max(retry_after.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::SplitMix64;

    struct Fixed(f64);
    impl RandomSource for Fixed {
        fn next_f64(&mut self) -> f64 {
            self.0
        }
    }

    #[test]
    fn defaults_are_five_attempts_doubling_from_one_second_capped_at_a_minute() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 5);
        assert!(p.allows_another(4));
        assert!(!p.allows_another(5));
        let no_jitter = &mut Fixed(0.0);
        let delays: Vec<_> = (1..=8).map(|n| p.delay(n, None, no_jitter)).collect();
        assert_eq!(delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000]);
    }

    #[test]
    fn jitter_adds_up_to_thirty_percent() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(2, None, &mut Fixed(0.999_999)), 2600);
        let mut rng = SplitMix64::new(7);
        for n in 1..10 {
            let d = p.delay(n, None, &mut rng);
            let base = p.delay(n, None, &mut Fixed(0.0));
            assert!(d >= base && d as f64 <= base as f64 * 1.3 + 1.0, "{n}: {d}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, Some(5000), &mut Fixed(0.0)), 5000);
        assert_eq!(p.delay(3, Some(10), &mut Fixed(0.0)), 4000);
    }

    #[test]
    fn policy_is_configurable_from_partial_json() {
        let p: RetryPolicy = serde_json::from_str(r#"{"maxRetries":1,"baseDelayMs":10}"#).unwrap();
        assert_eq!(p.max_attempts(), 2);
        assert_eq!(p.delay(1, None, &mut Fixed(0.0)), 10);
        assert_eq!(p.max_delay_ms, 60_000);
    }
}
