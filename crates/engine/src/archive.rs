//! Reading a store's archive: every record the projector consumed, in offset order
//! per partition. The source of rebuilds and replays that do not depend on the
//! broker's retention, and of the embedded broker's restore.

use stockline_store::keys::Key;
use stockline_store::rows::{ArchiveChunk, ArchivedRecord};
use stockline_store::{Store, cf};

use crate::error::EngineError;

/// Chunks fetched per read.
const CHUNKS_PER_READ: usize = 64;

/// Visits the archived records of one partition from `from_offset`, in order,
/// until `visit` returns `false` or the archive ends.
pub fn for_each_archived(
    store: &Store,
    partition: u32,
    from_offset: u64,
    mut visit: impl FnMut(&ArchivedRecord) -> Result<bool, EngineError>,
) -> Result<(), EngineError> {
    let prefix = Key::new().u32(partition).build();
    let first_chunk = from_offset - from_offset % stockline_store::ARCHIVE_CHUNK_RECORDS;
    let mut start = Key::new().u32(partition).u64(first_chunk).build();
    loop {
        let chunks: Vec<(Vec<u8>, ArchiveChunk)> =
            store.scan(cf::ARCHIVE, &prefix, Some(&start), CHUNKS_PER_READ)?;
        let Some((last_key, _)) = chunks.last() else {
            return Ok(());
        };
        let mut next = last_key.clone();
        next.push(0);
        for (_, chunk) in &chunks {
            for record in chunk.records.iter().filter(|r| r.offset >= from_offset) {
                if !visit(record)? {
                    return Ok(());
                }
            }
        }
        if chunks.len() < CHUNKS_PER_READ {
            return Ok(());
        }
        start = next;
    }
}
