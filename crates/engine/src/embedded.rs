//! The embedded broker keeps no log across restarts (it is librdkafka's in-process
//! mock cluster, a 5 MiB window per partition). Stockline's answer: the store's
//! archive is the journal. On start, every archived record is produced again, in
//! offset order, to the same partition with the same key, bytes and timestamp, so
//! the fresh broker's offsets are the store's offsets again and the projector
//! resumes where it stopped. Records a broker acknowledged but the projector had not
//! yet written are the only thing a crash of the whole process can lose, which is
//! why the service answers writes in embedded mode only once they are projected.

use stockline_kafka::{OutgoingRecord, RecordProducer};
use stockline_store::Store;

use crate::archive::for_each_archived;
use crate::error::EngineError;

/// Records produced before their acknowledgements are checked.
const RESTORE_PIPELINE: usize = 5_000;

/// Produces the store's archive into an empty embedded broker. Returns the number
/// of records restored. Fails if the broker assigns other offsets than the
/// archive's (the broker was not empty, or the archive has a hole).
pub async fn restore_embedded_log(
    store: &Store,
    producer: &RecordProducer,
    topic: &str,
    partitions: u32,
) -> Result<u64, EngineError> {
    let mut restored = 0u64;
    for partition in 0..partitions {
        let mut records = Vec::new();
        for_each_archived(store, partition, 0, |record| {
            records.push(record.clone());
            Ok(true)
        })?;
        for chunk in records.chunks(RESTORE_PIPELINE) {
            let mut pending = Vec::with_capacity(chunk.len());
            for record in chunk {
                let outgoing = OutgoingRecord::to_partition(
                    topic,
                    i32::try_from(partition).unwrap_or(0),
                    record.key.clone(),
                    record.payload.clone().unwrap_or_default(),
                    record.timestamp_ms.max(1),
                );
                pending.push((record.offset, producer.enqueue(outgoing).await?));
            }
            for (expected, delivery) in pending {
                let position = delivery.await?;
                if u64::try_from(position.offset).ok() != Some(expected) {
                    return Err(EngineError::Operator(format!(
                        "restoring the embedded broker from {}: partition {partition} record {expected} \
                         landed at offset {}; the archive and the broker disagree",
                        store.path().display(),
                        position.offset
                    )));
                }
                restored += 1;
            }
        }
    }
    Ok(restored)
}
