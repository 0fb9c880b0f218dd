//! `stockline simulate` and `stockline up`: the simulated retailer's traffic,
//! published through the same paths as real traffic (the event publisher, or a
//! running service's HTTP ingest).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use stockline_domain::{Event, HoldKind, Payload};
use stockline_engine::EventPublisher;
use stockline_simulator::{SimConfig, Simulator};
use tokio::sync::Notify;

/// Where simulated events go.
#[derive(Clone)]
pub enum Sink {
    /// The event publisher of this process (configured brokers or embedded).
    Publisher(EventPublisher),
    /// A running service's `POST /v1/events`, with an admin or channel token.
    Http {
        client: reqwest::Client,
        url: String,
        token: String,
    },
}

impl Sink {
    async fn send(&self, events: &[Event]) -> Result<(u64, u64)> {
        match self {
            Sink::Publisher(publisher) => {
                let mut accepted = 0;
                let mut rejected = 0;
                for result in publisher.publish_all(events).await {
                    match result {
                        Ok(_) => accepted += 1,
                        Err(error) if error.is_bad_input() => {
                            rejected += 1;
                            tracing::warn!(%error, "simulated event refused");
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                Ok((accepted, rejected))
            }
            Sink::Http { client, url, token } => {
                let response = client
                    .post(format!("{}/v1/events", url.trim_end_matches('/')))
                    .bearer_auth(token)
                    .json(events)
                    .send()
                    .await
                    .context("posting simulated events")?;
                let status = response.status();
                let body: serde_json::Value =
                    response.json().await.context("reading the ingest answer")?;
                if !status.is_success() {
                    bail!("ingest answered {status}: {body}");
                }
                let field = |name: &str| {
                    body.get(name)
                        .and_then(serde_json::Value::as_u64)
                        .unwrap_or(0)
                };
                Ok((field("accepted"), field("rejected")))
            }
        }
    }
}

/// How much traffic.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Events per second (wall clock); 0 = as fast as the sink takes them.
    pub rate_per_s: u64,
    /// Stop after this many events (setup included); `None` = until stopped.
    pub events: Option<u64>,
    /// Stop after this long; `None` = until stopped.
    pub duration: Option<Duration>,
}

/// Counters a running simulation exposes.
#[derive(Debug, Default)]
pub struct SimProgress {
    pub published: AtomicU64,
    pub refused: AtomicU64,
    /// The first click & collect hold at a named store (for `up`'s examples):
    /// (hold id, SKU, store), once published.
    pub first_pickup: std::sync::Mutex<Option<(String, String, String)>>,
}

/// Events sent per publish call (pipelined within a call).
const CHUNK_EVENTS_MAX: u64 = 500;

/// Runs the simulator into `sink` until the pace says stop or `stop` is notified.
pub async fn run_simulation(
    config: SimConfig,
    sink: Sink,
    pace: Pace,
    progress: Arc<SimProgress>,
    stop: Arc<Notify>,
) -> Result<()> {
    let mut simulator = Simulator::new(config);
    let started = Instant::now();
    // Sends in small chunks, ten per second at the configured rate.
    let chunk = if pace.rate_per_s == 0 {
        CHUNK_EVENTS_MAX
    } else {
        (pace.rate_per_s / 10).clamp(1, CHUNK_EVENTS_MAX)
    };
    let mut ticker = tokio::time::interval(if pace.rate_per_s == 0 {
        Duration::from_millis(1)
    } else {
        Duration::from_secs_f64(chunk as f64 / pace.rate_per_s as f64)
    });
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if pace.duration.is_some_and(|d| started.elapsed() >= d) {
            return Ok(());
        }
        let remaining = pace.events.map_or(chunk, |total| {
            total.saturating_sub(simulator.emitted()).min(chunk)
        });
        if remaining == 0 {
            return Ok(());
        }
        // The world's setup goes out at once; the traffic at the configured rate.
        let setup = simulator.in_setup();
        if !setup {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stop.notified() => return Ok(()),
            }
        }
        let take = if setup {
            CHUNK_EVENTS_MAX.min(
                pace.events
                    .map_or(u64::MAX, |t| t.saturating_sub(simulator.emitted())),
            )
        } else {
            remaining
        };
        let mut events: Vec<Event> = Vec::with_capacity(usize::try_from(take).unwrap_or(0));
        while (events.len() as u64) < take {
            events.push(simulator.next_event());
            if setup && !simulator.in_setup() {
                break;
            }
        }
        note_first_pickup(&progress, &events);
        let (accepted, refused) = sink.send(&events).await?;
        progress.published.fetch_add(accepted, Ordering::Relaxed);
        progress.refused.fetch_add(refused, Ordering::Relaxed);
    }
}

fn note_first_pickup(progress: &SimProgress, events: &[Event]) {
    let Ok(mut first) = progress.first_pickup.lock() else {
        return;
    };
    if first.is_some() {
        return;
    }
    for event in events {
        if let (
            Payload::HoldRequested {
                hold_id,
                kind: HoldKind::ClickAndCollect,
                ..
            },
            Some(location),
            Some(sku),
        ) = (&event.payload, &event.location, &event.sku)
        {
            *first = Some((hold_id.to_string(), sku.to_string(), location.to_string()));
            return;
        }
    }
}

/// Parses `90s`, `5m`, `2h`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number
        .parse()
        .with_context(|| format!("bad duration {text:?}"))?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60,
        "h" => value * 3_600,
        other => bail!("bad duration unit {other:?} (s, m or h)"),
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90").expect("ok"), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").expect("ok"), Duration::from_secs(300));
        assert_eq!(
            parse_duration("2h").expect("ok"),
            Duration::from_secs(7_200)
        );
        assert!(parse_duration("soon").is_err());
    }
}
