//! Fold throughput on one core: ~100k records of a realistic omnichannel mix (see
//! `tests/support/mod.rs`: holds from five channels on 1,000 SKUs at 24 locations,
//! their confirmations, pickups, no-shows and expiries, till sales, returns, counts,
//! transfers, purchase orders, waitlists, ticks, duplicates and some invalid records),
//! folded into a clone of a prepared ledger that already holds the configuration and
//! the opening stock. The log is generated once, outside the timed loop; the clone
//! is made outside it too (`iter_batched`). Like the projector, the loop drains the
//! dirty keys every 1,000 records.
//!
//! Run: `cargo bench -p stockline-domain --bench fold`. Target: >= 1,000,000 events/s.
//!
//! Instruction counts (deterministic, unlike wall time on a shared machine): with
//! `FOLD_BENCH_ONCE=1` the binary folds the traffic once in [`fold_traffic`] and
//! exits, so that
//! `FOLD_BENCH_ONCE=1 valgrind --tool=callgrind --toggle-collect='*fold_traffic*' <bench binary>`
//! counts the timed loop alone (divide by the record count for instructions per
//! record).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use stockline_domain::{Ledger, Verdict, fold};

#[path = "../tests/support/mod.rs"]
mod support;

/// The allocator the `stockline` binary (the projector) runs the fold with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const RECORDS: usize = 100_000;
const SEED: u64 = 0x5eed_f01d;
/// Records between two `take_dirty` calls, as a projector batch.
const BATCH: usize = 1_000;

/// The timed loop: every record folded, the dirty keys drained every [`BATCH`].
#[inline(never)]
fn fold_traffic(
    ledger: &mut Ledger,
    traffic: &[(stockline_domain::Event, stockline_domain::LogTime)],
) {
    for batch in traffic.chunks(BATCH) {
        for (event, t) in batch {
            black_box(fold(ledger, event, *t));
        }
        black_box(ledger.take_dirty());
    }
}

fn fold_realistic_mix(c: &mut Criterion) {
    let generated = support::realistic_log(support::Mix::PARTITION, SEED, RECORDS);
    let mut base = Ledger::new();
    for (event, t) in &generated.setup {
        fold(&mut base, event, *t);
    }
    base.take_dirty();
    let traffic = &generated.traffic;
    if std::env::var_os("FOLD_BENCH_ONCE").is_some() {
        let mut ledger = base.clone();
        fold_traffic(&mut ledger, traffic);
        eprintln!(
            "fold bench: folded {} records once ({} holds remembered)",
            traffic.len(),
            ledger.holds().len()
        );
        return;
    }
    describe(&base, generated.setup.len(), traffic);

    let mut group = c.benchmark_group("fold");
    group.throughput(Throughput::Elements(
        u64::try_from(traffic.len()).expect("record count fits u64"),
    ));
    group.sample_size(20);
    group.bench_function("realistic_mix_100k", |b| {
        b.iter_batched(
            || base.clone(),
            |mut ledger| {
                fold_traffic(&mut ledger, traffic);
                ledger
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

/// What the mix decides, once, so the figure can be read against it.
fn describe(
    base: &Ledger,
    setup_len: usize,
    traffic: &[(stockline_domain::Event, stockline_domain::LogTime)],
) {
    let mut ledger = base.clone();
    let (mut applied, mut rejected, mut duplicate, mut invalid, mut effects) = (0, 0, 0, 0, 0);
    let mut rejections = std::collections::BTreeMap::<&'static str, usize>::new();
    for (event, t) in traffic {
        let out = fold(&mut ledger, event, *t);
        effects += out.effects.len();
        match &out.verdict {
            Verdict::Applied => applied += 1,
            Verdict::Rejected { rejection } => {
                rejected += 1;
                *rejections.entry(rejection.code()).or_default() += 1;
            }
            Verdict::Duplicate => duplicate += 1,
            Verdict::Invalid { .. } => invalid += 1,
        }
    }
    if let Err(broken) = ledger.check_invariants() {
        panic!("invariants broken by the benchmark's log: {broken}");
    }
    eprintln!(
        "fold bench: {} records after a setup of {} ({} stock rows): {applied} applied, \
         {rejected} rejected, {duplicate} duplicates, {invalid} invalid, {effects} effects; \
         {} holds remembered; log spans {:.1} h",
        traffic.len(),
        setup_len,
        base.stock().len(),
        ledger.holds().len(),
        f64::from(
            i32::try_from((ledger.log_time().millis() - base.log_time().millis()) / 60_000)
                .expect("minutes fit i32")
        ) / 60.0,
    );
    eprintln!("fold bench: rejections by code: {rejections:?}");
}

criterion_group!(benches, fold_realistic_mix);
criterion_main!(benches);
