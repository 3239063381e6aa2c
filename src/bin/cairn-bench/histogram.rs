//! Latency histogram in constant memory: logarithmic buckets 1% wide from 1 µs to about
//! 17 minutes, so a run of any length reports percentiles within 1%.

const GROWTH: f64 = 1.01;
const BUCKETS: usize = 2100;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_us: u64,
    sum_us: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_us: 0,
            sum_us: 0,
        }
    }
}

fn bucket(micros: u64) -> usize {
    if micros <= 1 {
        return 0;
    }
    ((micros as f64).ln() / GROWTH.ln())
        .ceil()
        .min((BUCKETS - 1) as f64) as usize
}

fn bucket_upper_us(index: usize) -> f64 {
    GROWTH.powi(index as i32)
}

impl Histogram {
    pub fn record(&mut self, micros: u64) {
        self.counts[bucket(micros)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(micros);
        self.sum_us += u128::from(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
        self.sum_us += other.sum_us;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The latency at `quantile` (0..=1) in milliseconds.
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((self.total as f64) * quantile).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_upper_us(index).min(self.max_us as f64) / 1000.0;
            }
        }
        self.max_us as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.max_us as f64 / 1000.0
    }

    pub fn mean_ms(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.sum_us as f64 / self.total as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_one_percent() {
        let mut histogram = Histogram::default();
        for micros in 1..=100_000u64 {
            histogram.record(micros);
        }
        let p50 = histogram.quantile_ms(0.5);
        let p99 = histogram.quantile_ms(0.99);
        assert!((p50 - 50.0).abs() / 50.0 < 0.011, "{p50}");
        assert!((p99 - 99.0).abs() / 99.0 < 0.011, "{p99}");
        assert_eq!(histogram.max_ms(), 100.0);
        let mut other = Histogram::default();
        other.record(200_000);
        histogram.merge(&other);
        assert_eq!((histogram.count(), histogram.max_ms()), (100_001, 200.0));
    }
}
