//! Stories: given some facts, when an event arrives, then the ledger says this.
//!
//! One test per story, named as a sentence. The world is the standard retailer of
//! `support::world()` (three stores, a warehouse and a partner; channels web, app,
//! pos, marketplace with a buffer of 2, and a kiosk that sells from lyon-1 only).
//! The clock only moves when a story says so (`w.at(seconds)`), and every fold is
//! followed by `Ledger::check_invariants()`.
//!
//! Every event kind, every `Rejection` and every `InvalidEvent` has at least one
//! story here; the two `*_codes_are_stable` tests at the end list the variants with an
//! exhaustive match, so a new variant does not compile until it is listed.

mod support;

use stockline_domain::fold::NOTIFICATION_NAMESPACE;
use stockline_domain::{
    DEDUPE_WINDOW_MS, DocumentKind, Effect, HoldKind, HoldStatus, InvalidEvent, Ledger,
    LocationKind, LogTime, POSITION_ABS_MAX, Payload, Quantities, ReasonCode, Rejection,
    ReturnDisposition, StockState, Verdict, advance, fold,
};
use support::*;
use uuid::Uuid;

const SOFA: &str = "SOFA-GREY-3P";
const LAMP: &str = "LAMP-BRASS";

// =================================================================================
// The stories the product exists for.
// =================================================================================

#[test]
fn two_channels_racing_for_the_last_unit_get_one_hold_and_one_rejection() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));

    // The web shop's checkout and the app's checkout both want the last sofa.
    let web = w.when(hold("h-web", SOFA, 1).at(LYON_1).by("web"));
    let app = w.when(hold("h-app", SOFA, 1).at(LYON_1).by("app"));

    assert_eq!(web.accepted_at(), loc(LYON_1));
    assert_eq!(
        app.rejection(),
        &Rejection::InsufficientAvailability {
            requested: 1,
            available: 0
        }
    );
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.reserved, q.available()), (1, 1, 0));
    assert_eq!(w.hold("h-web").status, HoldStatus::Held);
    let loser = w.hold("h-app");
    assert_eq!(loser.status, HoldStatus::Rejected);
    assert_eq!(loser.location, None);
    assert!(matches!(
        app.effects.as_slice(),
        [Effect::HoldRejected { .. }]
    ));
    w.assert_replay_is_identical();
}

#[test]
fn click_and_collect_goes_from_request_to_held_confirmed_ready_and_collected() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 2));

    w.at(60);
    let requested = w.when(
        hold("cc-1", SOFA, 1)
            .at(LYON_1)
            .click_and_collect()
            .ttl(1_800),
    );
    assert_eq!(
        requested
            .effects
            .iter()
            .find(|e| matches!(e, Effect::HoldAccepted { .. })),
        Some(&Effect::HoldAccepted {
            hold_id: hid("cc-1"),
            sku: sku(SOFA),
            location: loc(LYON_1),
            quantity: 1,
            expires_at: secs(60 + 1_800),
        })
    );
    assert_eq!(w.q(SOFA, LYON_1).reserved, 1);

    // Paid: reserved becomes committed, and the hold no longer expires.
    w.at(120);
    w.when(confirm("cc-1", SOFA)).assert_applied();
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.reserved, q.committed, q.available()), (0, 1, 1));
    assert!(w.hold("cc-1").confirmed);
    assert!(w.ledger.expiries().is_empty());

    // Prepared at the desk, well past the TTL: still there.
    w.at(2 * 3_600);
    let out = w.when(ready("cc-1", SOFA).at(LYON_1));
    assert_eq!(
        out.hold_changes(),
        vec![&Effect::HoldChanged {
            hold_id: hid("cc-1"),
            sku: sku(SOFA),
            location: loc(LYON_1),
            from: HoldStatus::Held,
            to: HoldStatus::ReadyForPickup,
            confirmed: true,
        }]
    );
    assert_eq!(w.hold("cc-1").ready_at, Some(secs(2 * 3_600)));

    // Handed over: the unit leaves the store.
    w.at(26 * 3_600);
    w.when(collected("cc-1", SOFA).at(LYON_1)).assert_applied();
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.committed, q.available()), (1, 0, 1));
    assert_eq!(w.hold("cc-1").status, HoldStatus::Collected);
    w.assert_replay_is_identical();
}

#[test]
fn click_and_collect_ending_in_a_no_show_puts_the_units_back() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("cc-1", SOFA, 1).at(LYON_1).click_and_collect());
    w.given(confirm("cc-1", SOFA));
    w.at(3_600);
    w.given(ready("cc-1", SOFA));
    assert_eq!(w.available(SOFA, LYON_1), 0);

    // Three days later the customer has not come.
    w.at(3 * 86_400);
    let out = w.when(no_show("cc-1", SOFA).at(LYON_1));

    out.assert_applied();
    assert_eq!(w.hold("cc-1").status, HoldStatus::NoShow);
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.committed, q.available()), (1, 0, 1));
    assert_eq!(w.view("app", SOFA, LYON_1), 1);
    w.assert_replay_is_identical();
}

#[test]
fn reserve_in_store_expires_by_ttl_in_log_time_on_a_tick_and_a_late_confirm_is_rejected_as_expired()
{
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.at(10);
    w.given(
        hold("ris-1", SOFA, 1)
            .at(LYON_1)
            .by("kiosk")
            .reserve_in_store()
            .ttl(3_600),
    );
    assert_eq!(w.hold("ris-1").expires_at, secs(3_610));

    // The store is quiet; the tick publisher keeps log time moving.
    w.at(3_609);
    let before_ttl = w.when(tick());
    assert!(before_ttl.effects.is_empty());
    assert_eq!(w.hold("ris-1").status, HoldStatus::Held);

    w.at(3_610);
    let at_ttl = w.when(tick());
    at_ttl.assert_applied();
    assert_eq!(
        at_ttl.hold_changes(),
        vec![&Effect::HoldChanged {
            hold_id: hid("ris-1"),
            sku: sku(SOFA),
            location: loc(LYON_1),
            from: HoldStatus::Held,
            to: HoldStatus::Expired,
            confirmed: false,
        }]
    );
    assert_eq!(w.available(SOFA, LYON_1), 1);

    // The customer turns up and pays at the desk, too late.
    w.at(3_700);
    let late = w.when(confirm("ris-1", SOFA).by("pos"));
    assert_eq!(
        late.rejection(),
        &Rejection::HoldExpired {
            hold_id: hid("ris-1")
        }
    );
    assert_eq!(w.q(SOFA, LYON_1).committed, 0);
    w.assert_replay_is_identical();
}

#[test]
fn a_hold_expires_at_its_ttl_instant_however_late_the_record_that_notices_it() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1).ttl(60));

    // No record for an hour; then a receipt at another store.
    w.at(3_600);
    let out = w.when(received(LAMP, PARIS_1, 1));

    // The expiry comes first in the outcome, and the hold closed at its TTL.
    assert!(matches!(
        out.effects.first(),
        Some(Effect::HoldChanged {
            to: HoldStatus::Expired,
            ..
        })
    ));
    assert_eq!(w.hold("h1").updated_at, secs(60));
    assert_eq!(w.ledger.closed_holds().back(), Some(&(secs(60), hid("h1"))));
}

#[test]
fn an_undecodable_record_still_moves_time_and_expires_holds() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1).ttl(60));

    let effects = advance(&mut w.ledger, secs(61));

    assert!(matches!(
        effects.first(),
        Some(Effect::HoldChanged {
            to: HoldStatus::Expired,
            ..
        })
    ));
    assert_eq!(w.ledger.log_time(), secs(61));
    assert_eq!(w.available(SOFA, LYON_1), 1);
}

#[test]
fn a_web_order_returned_in_a_store_puts_the_unit_back_at_that_store_not_the_warehouse() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 1));
    w.given(hold("web-1", SOFA, 1).at(WH_LYON).by("web"));
    w.given(confirm("web-1", SOFA));
    w.at(3_600);
    w.given(shipped("web-1", SOFA).at(WH_LYON));
    assert_eq!(w.q(SOFA, WH_LYON).on_hand, 0);

    // A week later the customer brings it back to the Lyon store.
    w.at(7 * 86_400);
    let out =
        w.when(returned(SOFA, LYON_1, 1, ReturnDisposition::Restock).sold_by("web", "order-web-1"));

    out.assert_applied();
    let store = w.q(SOFA, LYON_1);
    assert_eq!((store.on_hand, store.available()), (1, 1));
    assert_eq!(w.q(SOFA, WH_LYON), Quantities::default());
    assert_eq!(w.view("pos", SOFA, LYON_1), 1);
    w.assert_replay_is_identical();
}

#[test]
fn a_transfer_in_transit_leaves_the_source_at_once_and_arrives_at_the_destination_later() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 5));

    let out = w.when(transfer_shipped(SOFA, WH_LYON, LYON_2, 3, "tr-1"));

    out.assert_applied();
    assert_eq!(w.q(SOFA, WH_LYON).on_hand, 2);
    let dest = w.q(SOFA, LYON_2);
    assert_eq!((dest.on_hand, dest.in_transit, dest.available()), (0, 3, 0));
    assert_eq!(out.stock_changes().len(), 2);

    // Two arrive the next day, the last one the day after.
    w.at(86_400);
    w.given(transfer_received(SOFA, LYON_2, WH_LYON, 2, "tr-1"));
    let dest = w.q(SOFA, LYON_2);
    assert_eq!((dest.on_hand, dest.in_transit), (2, 1));
    w.at(2 * 86_400);
    w.given(transfer_received(SOFA, LYON_2, WH_LYON, 1, "tr-1"));
    let dest = w.q(SOFA, LYON_2);
    assert_eq!((dest.on_hand, dest.in_transit), (3, 0));
    let line = &w.ledger.transfers()[&(sku(SOFA), doc_id("tr-1"))];
    assert_eq!((line.shipped, line.received, line.in_transit()), (3, 3, 0));
    w.assert_replay_is_identical();
}

#[test]
fn a_transfer_received_before_it_is_recorded_as_shipped_does_not_count_twice() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 2));

    // The store scans the parcel before the warehouse's shipment record arrives.
    w.given(transfer_received(SOFA, LYON_1, WH_LYON, 2, "tr-9"));
    w.given(transfer_shipped(SOFA, WH_LYON, LYON_1, 2, "tr-9"));

    assert_eq!(w.q(SOFA, LYON_1).on_hand, 2);
    assert_eq!(w.q(SOFA, LYON_1).in_transit, 0);
    assert_eq!(w.q(SOFA, WH_LYON).on_hand, 0);
}

#[test]
fn a_marketplace_keeps_its_buffer_while_the_web_shop_sees_everything() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 5));

    assert_eq!(w.view("web", SOFA, WH_LYON), 5);
    assert_eq!(w.view("marketplace", SOFA, WH_LYON), 3);

    let greedy = w.when(hold("mp-1", SOFA, 4).at(WH_LYON).by("marketplace"));
    assert_eq!(
        greedy.rejection(),
        &Rejection::InsufficientAvailability {
            requested: 4,
            available: 3
        }
    );
    w.when(hold("mp-2", SOFA, 3).at(WH_LYON).by("marketplace"))
        .assert_applied();

    // The last two units are the web shop's to sell.
    assert_eq!(w.view("marketplace", SOFA, WH_LYON), 0);
    assert_eq!(w.view("web", SOFA, WH_LYON), 2);
    w.when(hold("web-1", SOFA, 2).at(WH_LYON).by("web"))
        .assert_applied();
    assert_eq!(w.available(SOFA, WH_LYON), 0);
}

#[test]
fn a_channels_buffer_never_hides_its_own_allocated_units() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 3));
    // Two of the three are the marketplace's alone; its buffer is 2.
    w.given(allocation(SOFA, WH_LYON, "marketplace", 2));

    // Its own two, plus what is shared (one) beyond its buffer (none).
    assert_eq!(w.view("marketplace", SOFA, WH_LYON), 2);
    assert_eq!(w.view("web", SOFA, WH_LYON), 1);
    w.when(hold("mp-1", SOFA, 2).at(WH_LYON).by("marketplace"))
        .assert_applied();
    assert_eq!(w.view("marketplace", SOFA, WH_LYON), 0);
    assert_eq!(w.view("web", SOFA, WH_LYON), 1);
}

#[test]
fn changing_a_channels_buffer_changes_what_it_may_promise() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 5));
    assert_eq!(w.view("marketplace", SOFA, WH_LYON), 3);

    w.given(channel_defined(
        "marketplace",
        &[],
        &["stores", "warehouses"],
        4,
    ));
    assert_eq!(w.view("marketplace", SOFA, WH_LYON), 1);

    // And a channel redefined without the warehouse no longer sells from it.
    w.given(channel_defined("marketplace", &[LYON_1], &[], 0));
    assert_eq!(w.view("marketplace", SOFA, WH_LYON), 0);
    assert!(
        w.ledger
            .config()
            .channel_sells_from(&ch("marketplace"), &loc(LYON_1))
    );
}

#[test]
fn exclusive_allocated_units_are_invisible_to_other_channels_and_consumed_on_collection() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));
    let out = w.when(allocation(SOFA, LYON_1, "web", 2));
    assert!(matches!(
        out.effects.as_slice(),
        [Effect::AllocationChanged { .. }]
    ));

    assert_eq!(w.view("web", SOFA, LYON_1), 5);
    assert_eq!(w.view("app", SOFA, LYON_1), 3);
    assert_eq!(w.view("marketplace", SOFA, LYON_1), 1);
    let app = w.when(hold("app-1", SOFA, 4).at(LYON_1).by("app"));
    assert_eq!(
        app.rejection(),
        &Rejection::InsufficientAvailability {
            requested: 4,
            available: 3
        }
    );
    w.when(hold("app-2", SOFA, 3).at(LYON_1).by("app"))
        .assert_applied();
    assert_eq!(w.view("app", SOFA, LYON_1), 0);
    assert_eq!(w.view("web", SOFA, LYON_1), 2);

    // The web shop sells its two web-only units, click & collect.
    w.when(
        hold("web-1", SOFA, 2)
            .at(LYON_1)
            .by("web")
            .click_and_collect(),
    )
    .assert_applied();
    assert_eq!(w.hold("web-1").allocation_units, 2);
    let key = (sku(SOFA), loc(LYON_1), ch("web"));
    assert_eq!(w.ledger.allocations()[&key].in_use, 2);
    w.given(confirm("web-1", SOFA));
    w.given(collected("web-1", SOFA));

    // Handed over: the allocation is used up, its row gone.
    assert!(!w.ledger.allocations().contains_key(&key));
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 3);
    w.assert_replay_is_identical();
}

#[test]
fn releasing_a_hold_on_allocated_units_gives_them_back_to_the_allocation() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));
    w.given(allocation(SOFA, LYON_1, "web", 2));
    w.given(hold("web-1", SOFA, 3).at(LYON_1).by("web"));
    let key = (sku(SOFA), loc(LYON_1), ch("web"));
    // Two of the three units came from the allocation.
    assert_eq!(w.hold("web-1").allocation_units, 2);
    assert_eq!(w.ledger.allocations()[&key].unused(), 0);
    assert_eq!(w.view("app", SOFA, LYON_1), 2);

    w.when(release("web-1", SOFA)).assert_applied();

    let a = w.ledger.allocations()[&key];
    assert_eq!((a.allocated, a.in_use), (2, 0));
    assert_eq!(w.view("app", SOFA, LYON_1), 3);
    assert_eq!(w.view("web", SOFA, LYON_1), 5);
}

#[test]
fn removing_an_allocation_gives_its_units_to_every_channel() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));
    w.given(allocation(SOFA, LYON_1, "web", 2));
    assert_eq!(w.view("app", SOFA, LYON_1), 3);

    let out = w.when(allocation(SOFA, LYON_1, "web", 0));

    out.assert_applied();
    assert!(w.ledger.allocations().is_empty());
    assert_eq!(w.view("app", SOFA, LYON_1), 5);
}

#[test]
fn a_count_that_contradicts_the_books_sets_on_hand_and_reports_the_discrepancy() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 10));
    w.given(state_changed(
        SOFA,
        LYON_1,
        1,
        StockState::Sellable,
        StockState::Damaged,
    ));

    let out = w.when(counted(SOFA, LYON_1, 7));

    assert!(out.effects.contains(&Effect::CountDiscrepancy {
        sku: sku(SOFA),
        location: loc(LYON_1),
        books: 10,
        counted: 7,
    }));
    // Absolute: on hand is what was counted, whatever the books said. The damaged
    // unit is among the seven.
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.damaged, q.available()), (7, 1, 6));

    let again = w.when(counted(SOFA, LYON_1, 7));
    again.assert_applied();
    assert!(
        again.effects.is_empty(),
        "a count that agrees changes nothing"
    );
}

#[test]
fn a_till_sale_of_reserved_stock_is_recorded_and_reports_a_shortfall() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("web-1", SOFA, 1).at(LYON_1));

    // A walk-in customer buys the sofa the web customer reserved.
    let out = w.when(till_sale(SOFA, LYON_1, 1));

    out.assert_applied();
    assert_eq!(
        out.shortfalls(),
        vec![&Effect::Shortfall {
            sku: sku(SOFA),
            location: loc(LYON_1),
            on_hand: 0,
            obligations: 1,
        }]
    );
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.reserved, q.available()), (0, 1, -1));
    // Nobody else can hold it.
    let next = w.when(hold("app-1", SOFA, 1).at(LYON_1).by("app"));
    assert!(matches!(
        next.rejection(),
        Rejection::InsufficientAvailability { available: 0, .. }
    ));

    // A restock covers the deficit: no further shortfall.
    let restock = w.when(received(SOFA, LYON_1, 1));
    assert!(restock.shortfalls().is_empty());
    assert_eq!(w.available(SOFA, LYON_1), 0);
}

#[test]
fn safety_stock_is_never_promised_to_any_channel() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    w.when(safety_stock(SOFA, LYON_1, 2)).assert_applied();

    assert_eq!(w.available(SOFA, LYON_1), 3);
    assert_eq!(w.view("web", SOFA, LYON_1), 3);
    let out = w.when(hold("h1", SOFA, 4).at(LYON_1));
    assert_eq!(
        out.rejection(),
        &Rejection::InsufficientAvailability {
            requested: 4,
            available: 3
        }
    );
    w.when(hold("h2", SOFA, 3).at(LYON_1)).assert_applied();
    // A till can still sell the safety stock: it is a fact, not a promise.
    w.when(till_sale(SOFA, LYON_1, 2)).assert_applied();
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 3);
}

#[test]
fn a_purchase_order_expected_then_partly_received_then_cancelled_is_tracked_as_incoming() {
    let mut w = world();

    w.given(expected(SOFA, WH_LYON, 10, "po-1"));
    assert_eq!(w.q(SOFA, WH_LYON).incoming, 10);
    assert_eq!(w.available(SOFA, WH_LYON), 0, "incoming is not available");

    w.at(86_400);
    w.given(received(SOFA, WH_LYON, 4).against_po("po-1"));
    let q = w.q(SOFA, WH_LYON);
    assert_eq!((q.on_hand, q.incoming), (4, 6));
    let key = (sku(SOFA), loc(WH_LYON), doc_id("po-1"));
    assert_eq!(w.ledger.incoming()[&key].outstanding(), 6);

    // The supplier revises the line to 12: 8 still to come.
    w.given(expected(SOFA, WH_LYON, 12, "po-1"));
    assert_eq!(w.q(SOFA, WH_LYON).incoming, 8);

    w.at(2 * 86_400);
    w.when(po_cancelled(SOFA, WH_LYON, "po-1")).assert_applied();
    let q = w.q(SOFA, WH_LYON);
    assert_eq!((q.on_hand, q.incoming), (4, 0));
    assert!(w.ledger.incoming().is_empty());

    // A late delivery against the cancelled order is still stock.
    w.given(received(SOFA, WH_LYON, 1).against_po("po-1"));
    let q = w.q(SOFA, WH_LYON);
    assert_eq!((q.on_hand, q.incoming), (5, 0));
    w.assert_replay_is_identical();
}

#[test]
fn receiving_more_than_a_purchase_order_line_expected_leaves_nothing_incoming() {
    let mut w = world();
    w.given(expected(SOFA, WH_LYON, 3, "po-1"));

    w.given(received(SOFA, WH_LYON, 5).against_po("po-1"));

    let q = w.q(SOFA, WH_LYON);
    assert_eq!((q.on_hand, q.incoming), (5, 0));
}

#[test]
fn a_hold_on_a_group_goes_where_the_channel_may_promise_the_most_ties_to_the_smallest_id() {
    let mut w = world();
    // Group lyon: lyon-1, lyon-2 (stores) and wh-lyon (warehouse).
    w.given(received(SOFA, LYON_1, 2));
    w.given(received(SOFA, LYON_2, 3));
    w.given(received(SOFA, WH_LYON, 3));

    // lyon-2 and wh-lyon tie at 3: "lyon-2" < "wh-lyon".
    let first = w.when(hold("g-1", SOFA, 1).in_group("lyon"));
    assert_eq!(first.accepted_at(), loc(LYON_2));
    let h = w.hold("g-1");
    assert_eq!(h.requested_group, Some(grp("lyon")));
    assert_eq!(h.requested_location, None);

    // Now wh-lyon has the most.
    let second = w.when(hold("g-2", SOFA, 1).in_group("lyon"));
    assert_eq!(second.accepted_at(), loc(WH_LYON));

    // 2, 2, 2: the smallest id.
    let third = w.when(hold("g-3", SOFA, 1).in_group("lyon"));
    assert_eq!(third.accepted_at(), loc(LYON_1));

    // Not enough anywhere in the group: the best location's figure is reported.
    let fourth = w.when(hold("g-4", SOFA, 3).in_group("lyon"));
    assert_eq!(
        fourth.rejection(),
        &Rejection::InsufficientAvailability {
            requested: 3,
            available: 2
        }
    );
    w.assert_replay_is_identical();
}

#[test]
fn a_pickup_on_a_group_only_considers_its_stores() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 10));
    w.given(received(SOFA, LYON_2, 1));

    let pickup = w.when(hold("cc-1", SOFA, 1).in_group("lyon").click_and_collect());
    assert_eq!(pickup.accepted_at(), loc(LYON_2));

    // The warehouse's ten units do not help a pickup.
    let more = w.when(hold("cc-2", SOFA, 1).in_group("lyon").reserve_in_store());
    assert_eq!(
        more.rejection(),
        &Rejection::InsufficientAvailability {
            requested: 1,
            available: 0
        }
    );
    // A checkout on the same group may use the warehouse.
    let checkout = w.when(hold("co-1", SOFA, 1).in_group("lyon"));
    assert_eq!(checkout.accepted_at(), loc(WH_LYON));
}

#[test]
fn a_group_hold_skips_locations_that_are_inactive_or_that_the_channel_does_not_sell_from() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(received(SOFA, LYON_2, 5));
    w.given(received(SOFA, WH_LYON, 9));
    w.given(location_defined(
        LYON_2,
        LocationKind::Store,
        &["lyon", "stores"],
        false,
    ));

    // pos sells from stores only, and lyon-2 is closed: lyon-1 it is.
    let out = w.when(hold("pos-1", SOFA, 1).in_group("lyon").by("pos"));

    assert_eq!(out.accepted_at(), loc(LYON_1));
}

#[test]
fn a_waitlisted_customer_is_notified_once_when_a_restock_makes_the_sku_available() {
    let mut w = world();
    let joined = w.when(waitlist_join(SOFA, "jane", 2).at(LYON_1));
    assert!(joined.notifications().is_empty());
    let join_event = w.last_event();

    w.at(3_600);
    let one = w.when(received(SOFA, LYON_1, 1));
    assert!(
        one.notifications().is_empty(),
        "one unit is not the two she wants"
    );

    w.at(7_200);
    let two = w.when(received(SOFA, LYON_1, 1));

    // The id is derived from the joining event, the SKU and the customer (UUID v5),
    // so a consumer can deduplicate and a replay notifies with the same id.
    let mut name = join_event.event_id.as_bytes().to_vec();
    name.extend_from_slice(SOFA.as_bytes());
    name.push(0);
    name.extend_from_slice(b"jane");
    let expected_id = Uuid::new_v5(&NOTIFICATION_NAMESPACE, &name);
    assert_eq!(
        two.notifications(),
        vec![&Effect::WaitlistNotified {
            notification_id: expected_id,
            sku: sku(SOFA),
            location: loc(LYON_1),
            customer_ref: cust("jane"),
            quantity: 2,
            available: 2,
        }]
    );
    assert!(
        w.ledger.waitlists().is_empty(),
        "notified customers leave the list"
    );

    // Folding the same log again notifies with the same id.
    let (_, replayed) = w.replayed();
    assert_eq!(replayed.last(), Some(&two));
    w.assert_replay_is_identical();

    // A further restock notifies nobody.
    let three = w.when(received(SOFA, LYON_1, 1));
    assert!(three.notifications().is_empty());
}

#[test]
fn a_customer_waiting_on_a_group_is_told_where_the_stock_came_back() {
    let mut w = world();
    w.given(waitlist_join(SOFA, "jane", 1).in_group("lyon"));
    w.given(received(SOFA, PARIS_1, 5)); // Not in the group.
    assert!(!w.ledger.waitlists().is_empty());

    let out = w.when(received(SOFA, LYON_2, 1));

    assert!(matches!(
        out.notifications().as_slice(),
        [Effect::WaitlistNotified { location, .. }] if location == &loc(LYON_2)
    ));
}

#[test]
fn a_customer_joining_a_waitlist_for_stock_that_is_already_there_is_told_at_once() {
    let mut w = world();
    w.given(received(SOFA, PARIS_1, 3));

    let out = w.when(waitlist_join(SOFA, "jane", 2).at(PARIS_1));

    assert_eq!(out.notifications().len(), 1);
    assert!(w.ledger.waitlists().is_empty());
}

#[test]
fn a_released_hold_notifies_the_waitlist_as_its_units_come_back() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1));
    w.given(waitlist_join(SOFA, "jane", 1).at(LYON_1));

    let out = w.when(release("h1", SOFA));

    assert_eq!(out.notifications().len(), 1);
}

#[test]
fn a_customer_who_leaves_the_waitlist_is_not_notified() {
    let mut w = world();
    w.given(waitlist_join(SOFA, "jane", 1).at(LYON_1));
    w.given(waitlist_join(SOFA, "jane", 1).at(PARIS_1));

    let out = w.when(waitlist_leave(SOFA, "jane"));

    out.assert_applied();
    assert!(
        w.ledger.waitlists().is_empty(),
        "leaving removes every wish"
    );
    let restock = w.when(received(SOFA, LYON_1, 1));
    assert!(restock.notifications().is_empty());
}

#[test]
fn joining_a_waitlist_again_for_the_same_target_replaces_the_earlier_wish() {
    let mut w = world();
    w.given(waitlist_join(SOFA, "jane", 3).at(LYON_1));
    w.given(waitlist_join(SOFA, "jane", 1).at(LYON_1));

    assert_eq!(w.ledger.waitlists()[&sku(SOFA)].len(), 1);
    let out = w.when(received(SOFA, LYON_1, 1));
    assert_eq!(out.notifications().len(), 1);
}

#[test]
fn a_duplicate_event_id_is_ignored() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    let receipt = w.last_event();
    w.given(hold("h1", SOFA, 1).at(LYON_1));
    let request = w.last_event();
    let before = w.ledger.clone();

    // The producer retried both.
    w.at(30);
    let again = w.replay(receipt);
    let request_again = w.replay(request);

    assert!(again.is_duplicate() && again.effects.is_empty());
    assert!(request_again.is_duplicate() && request_again.effects.is_empty());
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 1);
    // Only log time moved.
    let mut expected = before;
    fold(&mut expected, &tick().id(1).event(), secs(30));
    assert_eq!(w.ledger, expected);
}

#[test]
fn a_retried_rejected_request_gets_duplicate_not_a_new_decision() {
    let mut w = world();
    let first = w.when(hold("h1", SOFA, 1).at(LYON_1));
    assert!(matches!(
        first.rejection(),
        Rejection::InsufficientAvailability { .. }
    ));
    let request = w.last_event();
    w.given(received(SOFA, LYON_1, 5));

    let retry = w.replay(request);

    assert!(retry.is_duplicate());
    assert_eq!(w.hold("h1").status, HoldStatus::Rejected);
    assert!(matches!(
        w.hold("h1").rejection,
        Some(Rejection::InsufficientAvailability { .. })
    ));
}

#[test]
fn reusing_a_hold_id_is_answered_with_hold_id_in_use_and_the_first_decision_stands() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(received(SOFA, LYON_2, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1));
    let original = w.hold("h1").clone();

    // Another request (a new event id) for the same hold id, elsewhere.
    let out = w.when(hold("h1", SOFA, 1).at(LYON_2).by("app"));

    assert_eq!(
        out.rejection(),
        &Rejection::HoldIdInUse { hold_id: hid("h1") }
    );
    assert!(out.effects.is_empty());
    assert_eq!(w.hold("h1"), &original);
    assert_eq!(w.q(SOFA, LYON_2).reserved, 0);
}

#[test]
fn reusing_the_id_of_a_rejected_hold_does_not_turn_it_into_an_accepted_one() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    let first = w.when(hold("h1", SOFA, 5).at(LYON_1));
    assert!(matches!(
        first.rejection(),
        Rejection::InsufficientAvailability { .. }
    ));

    let second = w.when(hold("h1", SOFA, 1).at(LYON_1));

    assert_eq!(
        second.rejection(),
        &Rejection::HoldIdInUse { hold_id: hid("h1") }
    );
    assert_eq!(w.hold("h1").status, HoldStatus::Rejected);
    assert_eq!(w.q(SOFA, LYON_1).reserved, 0);
}

#[test]
fn log_time_stays_monotonic_when_a_record_timestamp_goes_back() {
    let mut w = world();
    w.at(100);
    w.given(received(SOFA, LYON_1, 1));

    // A producer with a late clock: the record says 50 s.
    w.at(50);
    w.when(tick()).assert_applied();
    assert_eq!(w.ledger.log_time(), secs(100));
    w.given(hold("h1", SOFA, 1).at(LYON_1).ttl(60));
    let h = w.hold("h1");
    assert_eq!((h.requested_at, h.expires_at), (secs(100), secs(160)));

    w.at(159);
    w.when(tick());
    assert_eq!(w.hold("h1").status, HoldStatus::Held);
    // Back again: time does not go back, nothing expires twice, nothing un-expires.
    w.at(120);
    w.when(tick());
    assert_eq!(w.ledger.log_time(), secs(159));
    w.at(160);
    w.when(tick());
    assert_eq!(w.hold("h1").status, HoldStatus::Expired);
    w.at(10);
    let late = w.when(tick());
    assert!(late.effects.is_empty());
    assert_eq!(w.ledger.log_time(), secs(160));
    w.assert_replay_is_identical();
}

#[test]
fn seen_event_ids_are_forgotten_after_the_dedupe_window() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    let receipt = w.last_event();
    let seen_at = w.clock();

    // Remembered for the whole window, its last millisecond included.
    w.at_time(LogTime(seen_at.millis() + DEDUPE_WINDOW_MS));
    assert!(w.replay(receipt.clone()).is_duplicate());
    assert!(w.ledger.seen().contains(&receipt.event_id));

    // Then forgotten: the same id is a new event again.
    w.at_time(LogTime(seen_at.millis() + DEDUPE_WINDOW_MS + 1));
    w.when(tick());
    assert!(!w.ledger.seen().contains(&receipt.event_id));
    assert!(
        w.ledger
            .take_dirty()
            .seen_evicted
            .contains(&receipt.event_id)
    );
    w.replay(receipt).assert_applied();
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 2);
}

#[test]
fn closed_holds_are_forgotten_after_the_dedupe_window_and_their_id_can_be_used_again() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1));
    w.at(10);
    w.given(release("h1", SOFA));
    // An open (confirmed, never shipped) hold is never forgotten.
    w.given(hold("h2", SOFA, 1).at(LYON_1));
    w.given(confirm("h2", SOFA));
    w.ledger.take_dirty();

    w.at_time(LogTime(secs(10).millis() + DEDUPE_WINDOW_MS));
    w.when(tick());
    assert!(w.ledger.hold(&hid("h1")).is_some());
    assert_eq!(
        w.when(hold("h1", SOFA, 1).at(LYON_1)).rejection(),
        &Rejection::HoldIdInUse { hold_id: hid("h1") }
    );

    w.at_time(LogTime(secs(10).millis() + DEDUPE_WINDOW_MS + 1));
    w.when(tick());

    assert!(w.ledger.hold(&hid("h1")).is_none());
    assert!(
        w.ledger
            .take_dirty()
            .holds_forgotten
            .contains_key(&hid("h1"))
    );
    assert!(w.ledger.closed_holds().is_empty());
    assert_eq!(w.hold("h2").status, HoldStatus::Held);
    w.given(release("h2", SOFA));
    // The id is free: a new request is a new decision.
    let reused = w.when(hold("h1", SOFA, 1).at(LYON_1));
    assert_eq!(reused.accepted_at(), loc(LYON_1));
    w.assert_replay_is_identical();
}

#[test]
fn ticks_move_time_but_are_not_remembered() {
    let mut w = world();
    let t = tick().id(42);

    w.at(1);
    let first = w.when(t.clone());
    w.at(2);
    let second = w.when(t);

    assert_eq!(first.verdict, Verdict::Applied);
    assert_eq!(
        second.verdict,
        Verdict::Applied,
        "the same tick id is written to every partition"
    );
    assert!(!w.ledger.seen().contains(&Uuid::from_u128(42)));
    assert_eq!(w.ledger.log_time(), secs(2));
}

// =================================================================================
// Stock facts, one kind at a time.
// =================================================================================

#[test]
fn receiving_stock_makes_it_available_to_every_channel_that_sells_there() {
    let mut w = world();

    let out = w.when(received(SOFA, LYON_1, 3));

    assert_eq!(
        out.stock_changes(),
        vec![(
            &sku(SOFA),
            &loc(LYON_1),
            Quantities::default(),
            Quantities {
                on_hand: 3,
                ..Quantities::default()
            }
        )]
    );
    for channel in ["web", "app", "pos", "kiosk"] {
        assert_eq!(w.view(channel, SOFA, LYON_1), 3, "{channel}");
    }
    assert_eq!(w.view("marketplace", SOFA, LYON_1), 1);
    assert_eq!(
        w.view("kiosk", SOFA, LYON_2),
        0,
        "kiosk sells from lyon-1 only"
    );
}

#[test]
fn a_theft_adjustment_takes_units_off_the_books() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    w.when(adjusted(SOFA, LYON_1, -2, ReasonCode::Theft))
        .assert_applied();
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 3);

    w.when(adjusted(SOFA, LYON_1, 1, ReasonCode::Found))
        .assert_applied();
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 4);
}

#[test]
fn writing_off_damaged_units_takes_them_out_of_on_hand_and_damaged() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));
    w.given(state_changed(
        SOFA,
        LYON_1,
        2,
        StockState::Sellable,
        StockState::Damaged,
    ));

    w.when(adjusted(SOFA, LYON_1, -2, ReasonCode::Damage).state(StockState::Damaged))
        .assert_applied();

    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.damaged, q.available()), (3, 0, 3));
}

#[test]
fn moving_units_between_states_changes_availability_but_not_on_hand() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    w.when(state_changed(
        SOFA,
        LYON_1,
        2,
        StockState::Sellable,
        StockState::QualityControl,
    ))
    .assert_applied();
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.quality_control, q.available()), (5, 2, 3));

    // One passes quality control, the other is damaged.
    w.given(state_changed(
        SOFA,
        LYON_1,
        1,
        StockState::QualityControl,
        StockState::Sellable,
    ));
    w.given(state_changed(
        SOFA,
        LYON_1,
        1,
        StockState::QualityControl,
        StockState::Damaged,
    ));
    let q = w.q(SOFA, LYON_1);
    assert_eq!(
        (q.on_hand, q.quality_control, q.damaged, q.available()),
        (5, 0, 1, 4)
    );
}

#[test]
fn a_returned_unit_goes_back_on_the_shelf_or_into_the_state_its_condition_calls_for() {
    let mut w = world();

    w.given(returned(SOFA, LYON_1, 1, ReturnDisposition::Restock));
    w.given(returned(SOFA, LYON_1, 1, ReturnDisposition::Damaged));
    w.given(returned(SOFA, LYON_1, 1, ReturnDisposition::QualityControl));
    let discard = w.when(returned(SOFA, LYON_1, 1, ReturnDisposition::Discard));

    discard.assert_applied();
    assert!(
        discard.effects.is_empty(),
        "a discarded return is recorded only"
    );
    let q = w.q(SOFA, LYON_1);
    assert_eq!(
        (q.on_hand, q.damaged, q.quality_control, q.available()),
        (3, 1, 1, 1)
    );
}

#[test]
fn a_location_defined_inactive_is_not_sold_from_until_it_reopens() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 2));

    w.when(location_defined(
        LYON_1,
        LocationKind::Store,
        &["lyon", "stores"],
        false,
    ))
    .assert_applied();
    assert_eq!(w.view("web", SOFA, LYON_1), 0);
    assert_eq!(
        w.when(hold("h1", SOFA, 1).at(LYON_1)).rejection(),
        &Rejection::LocationInactive {
            location: loc(LYON_1)
        }
    );
    // Stock facts still apply there: the units physically exist.
    w.given(received(SOFA, LYON_1, 1));

    w.given(location_defined(
        LYON_1,
        LocationKind::Store,
        &["lyon", "stores"],
        true,
    ));
    assert_eq!(w.view("web", SOFA, LYON_1), 3);
    w.when(hold("h2", SOFA, 1).at(LYON_1)).assert_applied();
}

#[test]
fn confirming_a_hold_stops_its_clock() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1).ttl(60));
    w.at(30);
    w.given(confirm("h1", SOFA));

    w.at(86_400);
    let out = w.when(tick());

    assert!(out.effects.is_empty());
    assert_eq!(w.hold("h1").status, HoldStatus::Held);
    assert_eq!(w.q(SOFA, LYON_1).committed, 1);
}

#[test]
fn releasing_a_hold_makes_its_units_available_again() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1));
    w.given(confirm("h1", SOFA));

    let out = w.when(release("h1", SOFA).at(LYON_1));

    out.assert_applied();
    assert_eq!(w.hold("h1").status, HoldStatus::Released);
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.reserved, q.committed, q.available()), (0, 0, 1));
}

#[test]
fn a_ship_from_store_order_leaves_the_store_when_shipped() {
    let mut w = world();
    w.given(received(SOFA, PARIS_1, 2));
    w.given(
        hold("sfs-1", SOFA, 2)
            .at(PARIS_1)
            .kind(HoldKind::ShipFromStore),
    );
    w.given(confirm("sfs-1", SOFA));

    let out = w.when(shipped("sfs-1", SOFA).at(PARIS_1));

    out.assert_applied();
    assert_eq!(w.hold("sfs-1").status, HoldStatus::Shipped);
    assert_eq!(w.q(SOFA, PARIS_1), Quantities::default());
}

#[test]
fn reserve_in_store_may_be_collected_and_paid_at_the_desk_without_a_prior_confirm() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(
        hold("ris-1", SOFA, 1)
            .at(LYON_1)
            .by("kiosk")
            .reserve_in_store(),
    );
    w.given(ready("ris-1", SOFA));

    w.when(collected("ris-1", SOFA).at(LYON_1)).assert_applied();

    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.reserved, q.committed), (0, 0, 0));
    assert!(w.ledger.expiries().is_empty());
}

#[test]
fn an_invalid_event_changes_nothing_but_time_still_passes() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1).ttl(60));
    let mut expected = w.ledger.clone();
    fold(&mut expected, &tick().id(7).event(), secs(120));

    w.at(120);
    let out = w.when(till_sale(SOFA, LYON_1, 1).no_sku());

    assert!(matches!(out.verdict, Verdict::Invalid { .. }));
    assert_eq!(out.hold_changes().len(), 1, "the expiry still happened");
    assert_eq!(w.ledger, expected);
    let invalid = w.last_event();
    assert!(!w.ledger.seen().contains(&invalid.event_id));
}

// =================================================================================
// Every rejection.
// =================================================================================

#[test]
fn a_hold_of_zero_or_too_many_units_is_rejected_as_quantity_not_positive() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    let zero = w.when(hold("h0", SOFA, 0).at(LYON_1));
    let huge = w.when(hold("h1", SOFA, 1_000_000_001).at(LYON_1));

    assert_eq!(
        zero.rejection(),
        &Rejection::QuantityNotPositive {
            quantity: 0,
            max: 1_000_000_000
        }
    );
    assert!(matches!(
        huge.rejection(),
        Rejection::QuantityNotPositive { .. }
    ));
    // Recorded as a decision, not dead-lettered.
    assert_eq!(w.hold("h0").status, HoldStatus::Rejected);
    assert_eq!(
        w.hold("h0").rejection,
        Some(Rejection::QuantityNotPositive {
            quantity: 0,
            max: 1_000_000_000
        })
    );
}

#[test]
fn a_hold_without_a_ttl_or_longer_than_thirty_days_is_rejected_as_ttl_out_of_range() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    let zero = w.when(hold("h0", SOFA, 1).at(LYON_1).ttl(0));
    let long = w.when(hold("h1", SOFA, 1).at(LYON_1).ttl(30 * 86_400 + 1));
    let longest = w.when(hold("h2", SOFA, 1).at(LYON_1).ttl(30 * 86_400));

    assert_eq!(
        zero.rejection(),
        &Rejection::TtlOutOfRange {
            ttl_seconds: 0,
            max: 30 * 86_400
        }
    );
    assert!(matches!(long.rejection(), Rejection::TtlOutOfRange { .. }));
    longest.assert_applied();
}

#[test]
fn a_hold_from_an_unconfigured_channel_is_rejected_as_unknown_channel() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    let out = w.when(hold("h1", SOFA, 1).at(LYON_1).by("callcentre"));

    assert_eq!(
        out.rejection(),
        &Rejection::UnknownChannel {
            channel: ch("callcentre")
        }
    );
}

#[test]
fn a_hold_or_waitlist_at_an_undefined_location_is_rejected_as_unknown_location() {
    let mut w = world();

    let h = w.when(hold("h1", SOFA, 1).at("lyon-99"));
    let wl = w.when(waitlist_join(SOFA, "jane", 1).at("lyon-99"));

    let expected = Rejection::UnknownLocation {
        location: loc("lyon-99"),
    };
    assert_eq!(h.rejection(), &expected);
    assert_eq!(wl.rejection(), &expected);
}

#[test]
fn a_hold_at_a_closed_store_is_rejected_as_location_inactive() {
    let mut w = world();
    w.given(location_defined(
        "lyon-old",
        LocationKind::Store,
        &["lyon", "stores"],
        false,
    ));
    w.given(received(SOFA, "lyon-old", 5));

    let out = w.when(hold("h1", SOFA, 1).at("lyon-old"));

    assert_eq!(
        out.rejection(),
        &Rejection::LocationInactive {
            location: loc("lyon-old")
        }
    );
}

#[test]
fn a_hold_or_waitlist_on_a_group_without_locations_is_rejected_as_unknown_group() {
    let mut w = world();

    let h = w.when(hold("h1", SOFA, 1).in_group("marseille"));
    let wl = w.when(waitlist_join(SOFA, "jane", 1).in_group("marseille"));

    let expected = Rejection::UnknownGroup {
        group: grp("marseille"),
    };
    assert_eq!(h.rejection(), &expected);
    assert_eq!(wl.rejection(), &expected);
}

#[test]
fn a_pickup_at_a_warehouse_is_rejected_as_not_a_pickup_location() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 5));

    let out = w.when(hold("cc-1", SOFA, 1).at(WH_LYON).click_and_collect());

    assert_eq!(
        out.rejection(),
        &Rejection::NotAPickupLocation {
            location: loc(WH_LYON)
        }
    );
}

#[test]
fn a_hold_where_the_channel_does_not_sell_is_rejected_as_not_sellable_on_channel() {
    let mut w = world();
    w.given(received(SOFA, PARIS_1, 5));

    let at_location = w.when(hold("k-1", SOFA, 1).at(PARIS_1).by("kiosk"));
    let in_group = w.when(hold("k-2", SOFA, 1).in_group("paris").by("kiosk"));

    assert_eq!(
        at_location.rejection(),
        &Rejection::NotSellableOnChannel {
            channel: ch("kiosk"),
            target: PARIS_1.to_owned()
        }
    );
    assert_eq!(
        in_group.rejection(),
        &Rejection::NotSellableOnChannel {
            channel: ch("kiosk"),
            target: "group paris".to_owned()
        }
    );
}

#[test]
fn a_hold_larger_than_the_channels_view_is_rejected_as_insufficient_availability() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 2));

    let out = w.when(hold("h1", SOFA, 3).at(LYON_1));

    assert_eq!(
        out.rejection(),
        &Rejection::InsufficientAvailability {
            requested: 3,
            available: 2
        }
    );
    assert_eq!(w.q(SOFA, LYON_1).reserved, 0);
}

#[test]
fn a_transition_of_an_unknown_hold_is_rejected_as_unknown_hold() {
    let mut w = world();

    let out = w.when(confirm("nope", SOFA));

    assert_eq!(
        out.rejection(),
        &Rejection::UnknownHold {
            hold_id: hid("nope")
        }
    );
}

#[test]
fn a_transition_naming_another_sku_is_rejected_as_sku_mismatch() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1));

    let out = w.when(confirm("h1", LAMP));

    assert_eq!(
        out.rejection(),
        &Rejection::SkuMismatch {
            hold_id: hid("h1"),
            hold_sku: sku(SOFA)
        }
    );
    assert!(!w.hold("h1").confirmed);
}

#[test]
fn a_pickup_at_the_wrong_store_is_rejected_as_location_mismatch() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("cc-1", SOFA, 1).at(LYON_1).click_and_collect());

    let out = w.when(collected("cc-1", SOFA).at(LYON_2));

    assert_eq!(
        out.rejection(),
        &Rejection::LocationMismatch {
            hold_id: hid("cc-1"),
            hold_location: LYON_1.to_owned()
        }
    );
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 1);
}

#[test]
fn a_step_on_a_refused_hold_is_answered_closed_even_when_it_names_the_store() {
    let mut w = world();
    let refused = w.when(hold("cc-1", SOFA, 1).at(LYON_1).click_and_collect());
    assert!(matches!(
        refused.rejection(),
        Rejection::InsufficientAvailability { .. }
    ));

    // The store scans the reference the customer shows: the request was refused,
    // it is not "at another location".
    let out = w.when(collected("cc-1", SOFA).at(LYON_1));

    assert_eq!(
        out.rejection(),
        &Rejection::HoldClosed {
            hold_id: hid("cc-1"),
            status: HoldStatus::Rejected
        }
    );
}

#[test]
fn a_transition_of_a_closed_hold_is_rejected_as_hold_closed() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1));
    w.given(release("h1", SOFA));
    w.when(hold("h2", SOFA, 9).at(LYON_1)); // Rejected.

    let twice = w.when(release("h1", SOFA));
    let rejected = w.when(confirm("h2", SOFA));

    assert_eq!(
        twice.rejection(),
        &Rejection::HoldClosed {
            hold_id: hid("h1"),
            status: HoldStatus::Released
        }
    );
    assert_eq!(
        rejected.rejection(),
        &Rejection::HoldClosed {
            hold_id: hid("h2"),
            status: HoldStatus::Rejected
        }
    );
    assert_eq!(w.available(SOFA, LYON_1), 1);
}

#[test]
fn confirming_twice_is_rejected_as_already_confirmed() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("h1", SOFA, 1).at(LYON_1));
    w.given(confirm("h1", SOFA));

    let out = w.when(confirm("h1", SOFA));

    assert_eq!(
        out.rejection(),
        &Rejection::AlreadyConfirmed { hold_id: hid("h1") }
    );
    assert_eq!(w.q(SOFA, LYON_1).committed, 1);
}

#[test]
fn marking_a_pickup_ready_twice_is_rejected_as_already_ready() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 1));
    w.given(hold("cc-1", SOFA, 1).at(LYON_1).click_and_collect());
    w.given(ready("cc-1", SOFA));

    let out = w.when(ready("cc-1", SOFA));

    assert_eq!(
        out.rejection(),
        &Rejection::AlreadyReady {
            hold_id: hid("cc-1")
        }
    );
}

#[test]
fn shipping_an_unpaid_hold_is_rejected_as_not_confirmed() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 1));
    w.given(hold("h1", SOFA, 1).at(WH_LYON));

    let out = w.when(shipped("h1", SOFA));

    assert_eq!(
        out.rejection(),
        &Rejection::NotConfirmed { hold_id: hid("h1") }
    );
    assert_eq!(w.q(SOFA, WH_LYON).on_hand, 1);
}

#[test]
fn pickup_steps_on_a_checkout_hold_are_rejected_as_not_a_pickup() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 1));
    w.given(hold("h1", SOFA, 1).at(WH_LYON));

    let expected = Rejection::NotAPickup {
        hold_id: hid("h1"),
        kind: HoldKind::Checkout,
    };
    assert_eq!(w.when(ready("h1", SOFA)).rejection(), &expected);
    assert_eq!(w.when(collected("h1", SOFA)).rejection(), &expected);
    assert_eq!(w.when(no_show("h1", SOFA)).rejection(), &expected);
    assert_eq!(w.hold("h1").status, HoldStatus::Held);
}

#[test]
fn leaving_a_waitlist_one_never_joined_is_rejected_as_not_on_waitlist() {
    let mut w = world();
    w.given(waitlist_join(SOFA, "jane", 1).at(LYON_1));

    let stranger = w.when(waitlist_leave(SOFA, "john"));
    let other_sku = w.when(waitlist_leave(LAMP, "jane"));

    let expected = |c: &str| Rejection::NotOnWaitlist {
        customer_ref: cust(c),
    };
    assert_eq!(stranger.rejection(), &expected("john"));
    assert_eq!(other_sku.rejection(), &expected("jane"));
}

// =================================================================================
// Every invalid event.
// =================================================================================

#[test]
fn an_event_of_an_unsupported_schema_version_is_invalid() {
    let mut w = world();

    let future = w.when(received(SOFA, LYON_1, 1).schema_version(2));
    let zero = w.when(received(SOFA, LYON_1, 1).schema_version(0));

    assert_eq!(
        future.invalid(),
        &InvalidEvent::UnsupportedSchemaVersion {
            found: 2,
            supported: 1
        }
    );
    assert_eq!(zero.invalid().code(), "unsupported_schema_version");
    assert_eq!(w.q(SOFA, LYON_1), Quantities::default());
}

#[test]
fn an_event_without_a_field_its_kind_requires_is_invalid_with_missing_field() {
    let mut w = world();
    let missing = |e: E| -> InvalidEvent {
        let mut w2 = world();
        w2.when(e).invalid().clone()
    };

    assert_eq!(
        missing(till_sale(SOFA, LYON_1, 1).no_sku()),
        InvalidEvent::MissingField {
            kind: "till_sale",
            field: "sku"
        }
    );
    assert_eq!(
        missing(received(SOFA, LYON_1, 1).no_location()),
        InvalidEvent::MissingField {
            kind: "stock_received",
            field: "location"
        }
    );
    assert_eq!(
        missing(adjusted(SOFA, LYON_1, -1, ReasonCode::Theft).no_reason()),
        InvalidEvent::MissingField {
            kind: "stock_adjusted",
            field: "reason"
        }
    );
    assert_eq!(
        missing(transfer_shipped(SOFA, WH_LYON, LYON_1, 1, "tr-1").no_document()),
        InvalidEvent::MissingField {
            kind: "transfer_shipped",
            field: "document"
        }
    );
    assert_eq!(
        missing(hold("h1", SOFA, 1)),
        InvalidEvent::MissingField {
            kind: "hold_requested",
            field: "location"
        }
    );
    assert_eq!(
        missing(waitlist_join(SOFA, "jane", 1)),
        InvalidEvent::MissingField {
            kind: "waitlist_joined",
            field: "location"
        }
    );
    assert_eq!(
        missing(confirm("h1", SOFA).no_sku()).code(),
        "missing_field"
    );
    assert_eq!(
        missing(location_defined(LYON_1, LocationKind::Store, &[], true).no_location()),
        InvalidEvent::MissingField {
            kind: "location_defined",
            field: "location"
        }
    );
    // Nothing was recorded: the fixed event is welcome later, under the same id.
    let seen_before = w.ledger.seen().len();
    let broken = till_sale(SOFA, LYON_1, 1).no_sku().id(77);
    assert_eq!(w.when(broken.clone()).invalid().field(), Some("sku"));
    assert_eq!(w.ledger.seen().len(), seen_before);
    w.given(received(SOFA, LYON_1, 1));
    w.when(broken.sku(SOFA)).assert_applied();
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 0);
}

#[test]
fn an_event_with_a_field_its_kind_does_not_take_is_invalid_with_unexpected_field() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    let config_with_sku =
        w.when(location_defined(LYON_1, LocationKind::Store, &[], true).sku(SOFA));
    let channel_with_sku = w.when(channel_defined("web", &[], &[], 0).sku(SOFA));
    let both_targets = {
        let mut e = hold("h1", SOFA, 1).in_group("lyon");
        e.0.location = Some(loc(LYON_1));
        w.when(e)
    };

    assert_eq!(
        config_with_sku.invalid(),
        &InvalidEvent::UnexpectedField {
            kind: "location_defined",
            field: "sku"
        }
    );
    assert_eq!(channel_with_sku.invalid().code(), "unexpected_field");
    assert_eq!(
        both_targets.invalid(),
        &InvalidEvent::UnexpectedField {
            kind: "hold_requested",
            field: "payload.group"
        }
    );
    assert!(w.ledger.hold(&hid("h1")).is_none());
}

#[test]
fn a_quantity_outside_its_range_is_invalid_with_out_of_range() {
    let mut w = world();

    let zero = w.when(received(SOFA, LYON_1, 0));
    let no_delta = w.when(adjusted(SOFA, LYON_1, 0, ReasonCode::Correction));
    let negative_count = w.when(counted(SOFA, LYON_1, -1));
    let negative_buffer = w.when(channel_defined("web", &[], &["stores"], -1));
    let too_big = w.when(till_sale(SOFA, LYON_1, 1_000_000_001));
    let waitlist_zero = w.when(waitlist_join(SOFA, "jane", 0).at(LYON_1));
    let negative_safety = w.when(safety_stock(SOFA, LYON_1, -1));

    assert_eq!(
        zero.invalid(),
        &InvalidEvent::OutOfRange {
            field: "payload.quantity",
            value: 0,
            min: 1,
            max: 1_000_000_000
        }
    );
    assert!(matches!(
        no_delta.invalid(),
        InvalidEvent::OutOfRange {
            field: "payload.delta",
            value: 0,
            ..
        }
    ));
    assert!(matches!(
        negative_count.invalid(),
        InvalidEvent::OutOfRange {
            min: 0,
            value: -1,
            ..
        }
    ));
    assert!(matches!(
        negative_buffer.invalid(),
        InvalidEvent::OutOfRange {
            field: "payload.buffer",
            ..
        }
    ));
    for out in [too_big, waitlist_zero, negative_safety] {
        assert_eq!(out.invalid().code(), "out_of_range");
    }
    assert!(w.ledger.stock().is_empty());
}

#[test]
fn a_transfer_with_a_purchase_order_document_is_invalid_with_wrong_document_kind() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 5));

    let out = w.when(
        transfer_shipped(SOFA, WH_LYON, LYON_1, 1, "tr-1")
            .document(DocumentKind::PurchaseOrder, "po-1"),
    );

    assert_eq!(
        out.invalid(),
        &InvalidEvent::WrongDocumentKind {
            kind: "transfer_shipped",
            expected: "transfer",
            found: "purchase_order"
        }
    );
    assert_eq!(w.q(SOFA, WH_LYON).on_hand, 5);
}

#[test]
fn a_state_change_to_the_same_state_is_invalid_with_same_state() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    let out = w.when(state_changed(
        SOFA,
        LYON_1,
        1,
        StockState::Damaged,
        StockState::Damaged,
    ));

    assert_eq!(out.invalid(), &InvalidEvent::SameState { state: "damaged" });
}

#[test]
fn a_transfer_to_its_own_location_is_invalid_with_same_location() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    let shipped = w.when(transfer_shipped(SOFA, LYON_1, LYON_1, 1, "tr-1"));
    let received_ = w.when(transfer_received(SOFA, LYON_1, LYON_1, 1, "tr-1"));

    let expected = InvalidEvent::SameLocation {
        location: LYON_1.to_owned(),
    };
    assert_eq!(shipped.invalid(), &expected);
    assert_eq!(received_.invalid(), &expected);
}

#[test]
fn a_configuration_list_longer_than_the_limit_is_invalid_with_list_too_long() {
    let mut w = world();
    let groups: Vec<String> = (0..257).map(|i| format!("g{i}")).collect();
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();

    let location = w.when(location_defined("big", LocationKind::Store, &groups, true));
    let channel = w.when(channel_defined("web", &[], &groups, 0));
    let at_limit = w.when(location_defined(
        "big",
        LocationKind::Store,
        &groups[..256],
        true,
    ));

    assert_eq!(
        location.invalid(),
        &InvalidEvent::ListTooLong {
            field: "payload.groups",
            len: 257,
            max: 256
        }
    );
    assert_eq!(channel.invalid().code(), "list_too_long");
    at_limit.assert_applied();
}

#[test]
fn a_location_without_a_proper_name_is_invalid_with_bad_name() {
    let mut w = world();

    let empty = w.when(location_defined("new", LocationKind::Store, &[], true).name(""));
    let control =
        w.when(location_defined("new", LocationKind::Store, &[], true).name("Lyon\nPart-Dieu"));
    let long =
        w.when(location_defined("new", LocationKind::Store, &[], true).name(&"x".repeat(201)));
    let unicode = w
        .when(location_defined("new", LocationKind::Store, &[], true).name("Gare de l'Est \u{e9}"));

    for out in [empty, control, long] {
        assert_eq!(out.invalid(), &InvalidEvent::BadName);
    }
    unicode.assert_applied();
}

#[test]
fn a_price_in_something_that_is_not_a_currency_is_invalid_with_bad_currency() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 5));

    let sale = w.when(till_sale(SOFA, LYON_1, 1).price(129_900, "eur"));
    let refund =
        w.when(returned(SOFA, LYON_1, 1, ReturnDisposition::Restock).price(129_900, "EURO"));
    let order = w.when(hold("h1", SOFA, 1).at(LYON_1).price(129_900, "E1R"));
    let negative = w.when(till_sale(SOFA, LYON_1, 1).price(-1, "EUR"));
    let priced = w.when(till_sale(SOFA, LYON_1, 1).price(129_900, "EUR"));

    for out in [sale, refund, order] {
        assert_eq!(out.invalid(), &InvalidEvent::BadCurrency);
    }
    assert!(matches!(
        negative.invalid(),
        InvalidEvent::OutOfRange {
            field: "payload.price.unit_minor",
            ..
        }
    ));
    priced.assert_applied();
    assert_eq!(w.q(SOFA, LYON_1).on_hand, 4);
    assert!(
        w.ledger.hold(&hid("h1")).is_none(),
        "an invalid request is not a decision"
    );
}

#[test]
fn a_stock_fact_at_an_undefined_location_is_invalid_with_unknown_location() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 5));

    let receipt = w.when(received(SOFA, "ghost", 1));
    let transfer = w.when(transfer_shipped(SOFA, WH_LYON, "ghost", 1, "tr-1"));

    assert_eq!(
        receipt.invalid(),
        &InvalidEvent::UnknownLocation {
            location: "ghost".to_owned()
        }
    );
    assert_eq!(transfer.invalid().code(), "unknown_location");
    assert_eq!(w.q(SOFA, WH_LYON).on_hand, 5);
    assert!(w.ledger.transfers().is_empty());
}

#[test]
fn moving_or_writing_off_more_units_than_a_state_holds_is_invalid_with_not_enough_in_state() {
    let mut w = world();
    w.given(received(SOFA, LYON_1, 2));
    w.given(state_changed(
        SOFA,
        LYON_1,
        1,
        StockState::Sellable,
        StockState::Damaged,
    ));

    let move_ = w.when(state_changed(
        SOFA,
        LYON_1,
        2,
        StockState::Damaged,
        StockState::Sellable,
    ));
    let write_off =
        w.when(adjusted(SOFA, LYON_1, -2, ReasonCode::Damage).state(StockState::Damaged));
    let sellable = w.when(state_changed(
        SOFA,
        LYON_1,
        2,
        StockState::Sellable,
        StockState::QualityControl,
    ));

    assert_eq!(
        move_.invalid(),
        &InvalidEvent::NotEnoughInState {
            location: LYON_1.to_owned(),
            state: "damaged",
            available: 1,
            requested: 2
        }
    );
    assert_eq!(write_off.invalid().code(), "not_enough_in_state");
    assert!(matches!(
        sellable.invalid(),
        InvalidEvent::NotEnoughInState {
            state: "sellable",
            available: 1,
            ..
        }
    ));
    let q = w.q(SOFA, LYON_1);
    assert_eq!((q.on_hand, q.damaged, q.quality_control), (2, 1, 0));
}

#[test]
fn cancelling_a_purchase_order_that_was_never_expected_is_invalid_with_unknown_document() {
    let mut w = world();

    let out = w.when(po_cancelled(SOFA, WH_LYON, "po-404"));

    assert_eq!(
        out.invalid(),
        &InvalidEvent::UnknownDocument {
            document: "po-404".to_owned()
        }
    );
}

#[test]
fn a_transfer_event_that_contradicts_the_recorded_route_is_invalid_with_transfer_route_mismatch() {
    let mut w = world();
    w.given(received(SOFA, WH_LYON, 5));
    w.given(transfer_shipped(SOFA, WH_LYON, LYON_1, 2, "tr-1"));

    let out = w.when(transfer_received(SOFA, LYON_2, WH_LYON, 2, "tr-1"));

    assert_eq!(
        out.invalid(),
        &InvalidEvent::TransferRouteMismatch {
            transfer: "tr-1".to_owned(),
            recorded: format!("{WH_LYON} -> {LYON_1}"),
            found: format!("{WH_LYON} -> {LYON_2}")
        }
    );
    assert_eq!(w.q(SOFA, LYON_2), Quantities::default());
    assert_eq!(w.q(SOFA, LYON_1).in_transit, 2);
}

#[test]
fn a_fact_that_would_push_a_position_beyond_the_limit_is_invalid_with_position_out_of_range() {
    // 10^15 / 10^9: a million till sales of the largest quantity reach the limit.
    // Folded directly (no per-event invariant check) and an hour apart, so the
    // dedupe window stays small.
    let max_sale = 1_000_000_000;
    let sales = POSITION_ABS_MAX / max_sale;
    let mut w = world();
    let mut ledger = w.ledger.clone();
    let mut sale = till_sale(SOFA, LYON_1, max_sale).event();
    for i in 0..sales {
        sale.event_id = Uuid::from_u128(u128::try_from(i).expect("positive") + 1);
        let out = fold(
            &mut ledger,
            &sale,
            LogTime(secs(0).millis() + i * 3_600_000),
        );
        assert_eq!(out.verdict, Verdict::Applied, "sale {i}");
        if i % 10_000 == 0 {
            ledger.take_dirty();
        }
    }
    assert_eq!(
        ledger.quantities(&sku(SOFA), &loc(LYON_1)).on_hand,
        -POSITION_ABS_MAX
    );
    w.ledger = ledger;
    w.at_time(LogTime(secs(0).millis() + sales * 3_600_000));

    let out = w.when(till_sale(SOFA, LYON_1, 1));

    assert_eq!(
        out.invalid(),
        &InvalidEvent::PositionOutOfRange {
            field: "on_hand",
            value: -POSITION_ABS_MAX - 1,
            max: POSITION_ABS_MAX
        }
    );
    assert_eq!(w.q(SOFA, LYON_1).on_hand, -POSITION_ABS_MAX);
}

// =================================================================================
// Codes: stable, machine-readable, and equal to the serde tag.
// =================================================================================

/// The variant's name as serialized: the `code` field of an internally tagged enum,
/// or the single key of an externally tagged one.
fn serde_code<T: serde::Serialize>(value: &T) -> String {
    let json = serde_json::to_value(value).expect("serializes");
    if let Some(code) = json.get("code").and_then(|c| c.as_str()) {
        return code.to_owned();
    }
    let object = json.as_object().expect("an enum serializes to an object");
    assert_eq!(object.len(), 1, "externally tagged: one key, {json}");
    object.keys().next().expect("one key").clone()
}

#[test]
fn rejection_codes_are_stable_and_match_their_serialized_tag() {
    let h = || hid("h1");
    let all = [
        Rejection::QuantityNotPositive {
            quantity: 0,
            max: 1,
        },
        Rejection::TtlOutOfRange {
            ttl_seconds: 0,
            max: 1,
        },
        Rejection::UnknownChannel { channel: ch("x") },
        Rejection::UnknownLocation { location: loc("x") },
        Rejection::LocationInactive { location: loc("x") },
        Rejection::UnknownGroup { group: grp("x") },
        Rejection::NotAPickupLocation { location: loc("x") },
        Rejection::NotSellableOnChannel {
            channel: ch("x"),
            target: "x".into(),
        },
        Rejection::InsufficientAvailability {
            requested: 2,
            available: 1,
        },
        Rejection::HoldIdInUse { hold_id: h() },
        Rejection::UnknownHold { hold_id: h() },
        Rejection::SkuMismatch {
            hold_id: h(),
            hold_sku: sku("x"),
        },
        Rejection::LocationMismatch {
            hold_id: h(),
            hold_location: "x".into(),
        },
        Rejection::HoldExpired { hold_id: h() },
        Rejection::HoldClosed {
            hold_id: h(),
            status: HoldStatus::Released,
        },
        Rejection::AlreadyConfirmed { hold_id: h() },
        Rejection::AlreadyReady { hold_id: h() },
        Rejection::NotConfirmed { hold_id: h() },
        Rejection::NotAPickup {
            hold_id: h(),
            kind: HoldKind::Checkout,
        },
        Rejection::NotOnWaitlist {
            customer_ref: cust("x"),
        },
    ];
    let mut codes = std::collections::BTreeSet::new();
    for r in &all {
        // Exhaustive: a new variant does not compile until it is listed here, with a
        // story above.
        let story = match r {
            Rejection::QuantityNotPositive { .. } => "a_hold_of_zero_or_too_many_units",
            Rejection::TtlOutOfRange { .. } => "a_hold_without_a_ttl",
            Rejection::UnknownChannel { .. } => "a_hold_from_an_unconfigured_channel",
            Rejection::UnknownLocation { .. } => "a_hold_or_waitlist_at_an_undefined_location",
            Rejection::LocationInactive { .. } => "a_hold_at_a_closed_store",
            Rejection::UnknownGroup { .. } => "a_hold_or_waitlist_on_a_group_without_locations",
            Rejection::NotAPickupLocation { .. } => "a_pickup_at_a_warehouse",
            Rejection::NotSellableOnChannel { .. } => "a_hold_where_the_channel_does_not_sell",
            Rejection::InsufficientAvailability { .. } => "two_channels_racing_for_the_last_unit",
            Rejection::HoldIdInUse { .. } => "reusing_a_hold_id",
            Rejection::UnknownHold { .. } => "a_transition_of_an_unknown_hold",
            Rejection::SkuMismatch { .. } => "a_transition_naming_another_sku",
            Rejection::LocationMismatch { .. } => "a_pickup_at_the_wrong_store",
            Rejection::HoldExpired { .. } => "reserve_in_store_expires_by_ttl",
            Rejection::HoldClosed { .. } => "a_transition_of_a_closed_hold",
            Rejection::AlreadyConfirmed { .. } => "confirming_twice",
            Rejection::AlreadyReady { .. } => "marking_a_pickup_ready_twice",
            Rejection::NotConfirmed { .. } => "shipping_an_unpaid_hold",
            Rejection::NotAPickup { .. } => "pickup_steps_on_a_checkout_hold",
            Rejection::NotOnWaitlist { .. } => "leaving_a_waitlist_one_never_joined",
        };
        assert_eq!(serde_code(r), r.code(), "{story}");
        assert!(
            r.code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        );
        assert!(!r.to_string().is_empty());
        codes.insert(r.code());
    }
    assert_eq!(codes.len(), all.len(), "codes are distinct");
}

#[test]
fn invalid_event_codes_are_stable_and_match_their_serialized_tag() {
    let s = || "x".to_owned();
    let all = [
        InvalidEvent::UnsupportedSchemaVersion {
            found: 2,
            supported: 1,
        },
        InvalidEvent::MissingField {
            kind: "k",
            field: "f",
        },
        InvalidEvent::UnexpectedField {
            kind: "k",
            field: "f",
        },
        InvalidEvent::OutOfRange {
            field: "f",
            value: 0,
            min: 1,
            max: 2,
        },
        InvalidEvent::WrongDocumentKind {
            kind: "k",
            expected: "e",
            found: "f",
        },
        InvalidEvent::SameState { state: "damaged" },
        InvalidEvent::SameLocation { location: s() },
        InvalidEvent::ListTooLong {
            field: "f",
            len: 3,
            max: 2,
        },
        InvalidEvent::BadName,
        InvalidEvent::BadCurrency,
        InvalidEvent::UnknownLocation { location: s() },
        InvalidEvent::NotEnoughInState {
            location: s(),
            state: "damaged",
            available: 0,
            requested: 1,
        },
        InvalidEvent::UnknownDocument { document: s() },
        InvalidEvent::TransferRouteMismatch {
            transfer: s(),
            recorded: s(),
            found: s(),
        },
        InvalidEvent::PositionOutOfRange {
            field: "on_hand",
            value: 0,
            max: 0,
        },
    ];
    let mut codes = std::collections::BTreeSet::new();
    for e in &all {
        let story = match e {
            InvalidEvent::UnsupportedSchemaVersion { .. } => {
                "an_event_of_an_unsupported_schema_version"
            }
            InvalidEvent::MissingField { .. } => "an_event_without_a_field_its_kind_requires",
            InvalidEvent::UnexpectedField { .. } => "an_event_with_a_field_its_kind_does_not_take",
            InvalidEvent::OutOfRange { .. } => "a_quantity_outside_its_range",
            InvalidEvent::WrongDocumentKind { .. } => "a_transfer_with_a_purchase_order_document",
            InvalidEvent::SameState { .. } => "a_state_change_to_the_same_state",
            InvalidEvent::SameLocation { .. } => "a_transfer_to_its_own_location",
            InvalidEvent::ListTooLong { .. } => "a_configuration_list_longer_than_the_limit",
            InvalidEvent::BadName => "a_location_without_a_proper_name",
            InvalidEvent::BadCurrency => "a_price_in_something_that_is_not_a_currency",
            InvalidEvent::UnknownLocation { .. } => "a_stock_fact_at_an_undefined_location",
            InvalidEvent::NotEnoughInState { .. } => "moving_or_writing_off_more_units",
            InvalidEvent::UnknownDocument { .. } => {
                "cancelling_a_purchase_order_that_was_never_expected"
            }
            InvalidEvent::TransferRouteMismatch { .. } => "a_transfer_event_that_contradicts",
            InvalidEvent::PositionOutOfRange { .. } => "a_fact_that_would_push_a_position",
        };
        assert_eq!(serde_code(e), e.code(), "{story}");
        assert!(
            e.field().is_some(),
            "{story}: an HTTP error names the field"
        );
        codes.insert(e.code());
    }
    assert_eq!(codes.len(), all.len(), "codes are distinct");
}

#[test]
fn every_payload_kind_has_a_story_and_a_stable_name() {
    // The kinds, by the story that covers each (see above).
    use stockline_domain::PayloadKind;
    let names: Vec<&str> = PayloadKind::ALL.iter().map(|k| k.name()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "names are distinct");
    // Each payload's kind() agrees with its serde name.
    let samples: Vec<Payload> = [
        received(SOFA, LYON_1, 1),
        adjusted(SOFA, LYON_1, 1, ReasonCode::Found),
        counted(SOFA, LYON_1, 1),
        state_changed(SOFA, LYON_1, 1, StockState::Sellable, StockState::Damaged),
        transfer_shipped(SOFA, LYON_1, LYON_2, 1, "t"),
        transfer_received(SOFA, LYON_2, LYON_1, 1, "t"),
        expected(SOFA, LYON_1, 1, "p"),
        po_cancelled(SOFA, LYON_1, "p"),
        till_sale(SOFA, LYON_1, 1),
        returned(SOFA, LYON_1, 1, ReturnDisposition::Restock),
        hold("h", SOFA, 1).at(LYON_1),
        confirm("h", SOFA),
        release("h", SOFA),
        ready("h", SOFA),
        collected("h", SOFA),
        no_show("h", SOFA),
        shipped("h", SOFA),
        waitlist_join(SOFA, "c", 1).at(LYON_1),
        waitlist_leave(SOFA, "c"),
        location_defined(LYON_1, LocationKind::Store, &[], true),
        channel_defined("web", &[], &[], 0),
        safety_stock(SOFA, LYON_1, 1),
        allocation(SOFA, LYON_1, "web", 1),
        tick(),
    ]
    .into_iter()
    .map(|e| e.event().payload)
    .collect();
    assert_eq!(samples.len(), PayloadKind::ALL.len());
    for (payload, kind) in samples.iter().zip(PayloadKind::ALL) {
        assert_eq!(payload.kind(), kind);
        let json = serde_json::to_value(payload).expect("serializes");
        let tag = json.as_object().and_then(|o| o.keys().next().cloned());
        assert_eq!(tag.as_deref(), Some(kind.name()));
    }
}

#[test]
fn a_fresh_ledger_folds_nothing_before_configuration_and_replays_to_the_same_state() {
    let mut ledger = Ledger::new();
    let out = fold(
        &mut ledger,
        &received(SOFA, LYON_1, 1).id(1).event(),
        secs(0),
    );
    assert_eq!(out.invalid().code(), "unknown_location");
    assert_eq!(ledger.log_time(), secs(0));
}
