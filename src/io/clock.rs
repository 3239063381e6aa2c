//! Time. Everything above `io` asks here; in simulation this is madsim's virtual clock.

use std::time::Duration;

/// A monotonic instant (tokio's, which is madsim's under `--cfg madsim`).
pub type Instant = tokio::time::Instant;

pub fn now() -> Instant {
    Instant::now()
}

/// Milliseconds since the first call in this process (or simulated node), for modules
/// that take time as a number.
pub fn monotonic_ms() -> u64 {
    thread_local! {
        static ORIGIN: Instant = Instant::now();
    }
    ORIGIN.with(|origin| origin.elapsed().as_millis() as u64)
}

pub async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await
}
