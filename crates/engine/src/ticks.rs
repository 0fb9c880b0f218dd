//! The tick publisher: a tick record on every partition at a fixed interval, so
//! that log time advances on quiet partitions and holds expire on time. Expiry
//! itself is decided by the fold, in log time.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::publish::{EventPublisher, tick_event};

/// Default interval between ticks: a hold expires at most this late (plus the
/// projector's batch latency) on a partition with no other traffic.
pub const DEFAULT_TICK_INTERVAL_MS: u64 = 1_000;

/// Publishes ticks until `stop` is notified.
pub async fn run_tick_publisher(publisher: EventPublisher, interval_ms: u64, stop: Arc<Notify>) {
    let mut interval = tokio::time::interval(Duration::from_millis(interval_ms.max(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = stop.notified() => return,
        }
        if let Err(error) = publisher.publish(&tick_event()).await {
            tracing::warn!(%error, "tick not published");
        }
    }
}
