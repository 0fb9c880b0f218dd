//! The benchmark's traffic: the seeded simulator's retailer (valid, routable events
//! of every kind, in a realistic mix), turned into the records the publisher would
//! produce, with record timestamps that follow the simulated clock so log time
//! moves as it would live (holds expire, days roll over in the counters).

use std::collections::VecDeque;

use anyhow::{Context, Result};
use chrono::{TimeDelta, Utc};
use stockline_engine::EventPublisher;
use stockline_kafka::OutgoingRecord;
use stockline_simulator::{SimConfig, Simulator};

/// Simulated milliseconds between two events (the simulator's default).
const STEP_MS: i64 = 50;

/// Yields the simulator's events as records, chunk by chunk.
pub struct RecordSource {
    simulator: Simulator,
    publisher: EventPublisher,
    pending: VecDeque<OutgoingRecord>,
    pub events: u64,
    pub payload_bytes: u64,
    pub records: u64,
}

impl RecordSource {
    /// A retailer with `skus` SKUs whose simulated clock starts so that the
    /// `expected_records`-th record is stamped about now (record timestamps in
    /// the past, as a backlog's are).
    pub fn new(
        publisher: EventPublisher,
        seed: u64,
        skus: usize,
        expected_records: u64,
    ) -> RecordSource {
        let span_ms = i64::try_from(expected_records)
            .unwrap_or(i64::MAX / 2)
            .saturating_mul(STEP_MS);
        let start = Utc::now() - TimeDelta::milliseconds(span_ms);
        let mut config = SimConfig::new(seed, start);
        config.step_ms = STEP_MS;
        config.skus = skus;
        RecordSource {
            simulator: Simulator::new(config),
            publisher,
            pending: VecDeque::new(),
            events: 0,
            payload_bytes: 0,
            records: 0,
        }
    }

    /// The next `n` records (configuration events become one record per
    /// partition, like the publisher writes them).
    pub fn next_records(&mut self, n: usize) -> Result<Vec<OutgoingRecord>> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            if let Some(record) = self.pending.pop_front() {
                self.payload_bytes += record.payload.len() as u64;
                self.records += 1;
                out.push(record);
                continue;
            }
            let event = self.simulator.next_event();
            self.events += 1;
            let timestamp_ms = event.occurred_at.timestamp_millis().max(1);
            let records = self
                .publisher
                .records(&event, timestamp_ms)
                .with_context(|| format!("simulated event {} refused", event.event_id))?;
            self.pending.extend(records);
        }
        Ok(out)
    }

    pub fn mean_payload_bytes(&self) -> f64 {
        if self.records == 0 {
            0.0
        } else {
            self.payload_bytes as f64 / self.records as f64
        }
    }
}
