//! A seeded, reproducible omnichannel retailer: the traffic of `stockline simulate`
//! and `stockline up`.
//!
//! Pure and deterministic: the same [`SimConfig`] yields the same events, byte for
//! byte (event ids come from the seed, times from a simulated clock). It does not
//! read back Stockline's decisions; it keeps its own rough book of stock to make
//! plausible requests, and Stockline decides (so some holds are rejected, some
//! confirmations come too late: as in life).
//!
//! The retailer: a warehouse, stores in two cities, a partner shop; channels web,
//! app, marketplace (with a buffer), kiosk, call centre and the store tills. Its day:
//! stock arrivals (purchase orders, transfers to stores), online checkouts shipped
//! from the warehouse, click & collect with preparation, pickup and no-shows,
//! reserve in store, marketplace orders, till sales after browsing online, online
//! orders returned in stores, stock counts that correct the books, damage, and
//! customers waiting for restocks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use chrono::{DateTime, TimeDelta, Utc};
use stockline_domain::{
    ChannelId, DocumentId, DocumentKind, DocumentRef, Event, GroupId, HoldId, HoldKind,
    LocationKind, OrderId, Payload, Price, ReasonCode, ReceiptKind, ReturnDisposition,
    SCHEMA_VERSION, StockState,
};
use uuid::Uuid;

/// Namespace of the simulator's event ids.
const SIM_NAMESPACE: Uuid = Uuid::from_u128(0x51a7_0c3d_2e4f_4a1b_8c9d_0e1f_2a3b_4c5d);

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Seeds every choice of the traffic (and its event ids).
    pub seed: u64,
    /// Seeds the world's setup (locations, channels, opening stock). Setup events
    /// have ids from this seed only, so a second run against the same store adds
    /// traffic without doubling the opening stock.
    pub world_seed: u64,
    /// Simulated time of the first event.
    pub start: DateTime<Utc>,
    /// Simulated milliseconds between two events.
    pub step_ms: i64,
    /// Number of SKUs in the catalogue.
    pub skus: usize,
}

impl SimConfig {
    pub fn new(seed: u64, start: DateTime<Utc>) -> SimConfig {
        SimConfig {
            seed,
            world_seed: 1,
            start,
            step_ms: 50,
            skus: 120,
        }
    }
}

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo + 1).unwrap_or(1);
        lo + i64::try_from(self.below(span)).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        &items[index]
    }
}

fn id<T: TryFrom<String>>(text: impl Into<String>) -> T
where
    T::Error: std::fmt::Debug,
{
    T::try_from(text.into()).unwrap_or_else(|e| unreachable!("simulator ids are valid: {e:?}"))
}

/// The retailer's layout.
pub const WAREHOUSE: &str = "wh-central";
pub const PARTNER: &str = "partner-outlet";
pub const STORES: [(&str, &str, &str); 5] = [
    ("paris-01", "Paris Opera", "paris"),
    ("paris-02", "Paris Bastille", "paris"),
    ("paris-03", "Paris La Defense", "paris"),
    ("lyon-01", "Lyon Part-Dieu", "lyon"),
    ("lyon-02", "Lyon Confluence", "lyon"),
];
const CATEGORIES: [(&str, i64); 6] = [
    ("SOFA", 89_900),
    ("CHAIR", 14_900),
    ("LAMP", 4_900),
    ("RUG", 19_900),
    ("TABLE", 39_900),
    ("SHELF", 9_900),
];

/// The SKU ids of a catalogue of `n`: `SOFA-0001`, `CHAIR-0002`...
pub fn sku_name(index: usize) -> String {
    let (category, _) = CATEGORIES[index % CATEGORIES.len()];
    format!("{category}-{:04}", index + 1)
}

fn unit_price(index: usize) -> Price {
    let (_, base) = CATEGORIES[index % CATEGORIES.len()];
    Price {
        unit_minor: base + i64::try_from(index % 7).unwrap_or(0) * 500,
        currency: "EUR".to_owned(),
    }
}

/// A follow-up scheduled for later in simulated time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum FollowUp {
    Confirm {
        hold: String,
        sku: usize,
    },
    Ready {
        hold: String,
        sku: usize,
    },
    Collect {
        hold: String,
        sku: usize,
        location: usize,
    },
    NoShow {
        hold: String,
        sku: usize,
    },
    Ship {
        hold: String,
        sku: usize,
    },
    Release {
        hold: String,
        sku: usize,
    },
    ReceivePo {
        po: String,
        sku: usize,
        location: usize,
        quantity: i64,
    },
    ReceiveTransfer {
        transfer: String,
        sku: usize,
        to: usize,
        quantity: i64,
    },
    Return {
        order: String,
        sku: usize,
        location: usize,
        channel: String,
    },
}

/// The simulator. `next_event` yields the setup, then traffic forever.
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimConfig,
    rng: Rng,
    setup: Vec<Event>,
    emitted: u64,
    /// Simulated milliseconds since `start`.
    clock_ms: i64,
    /// Follow-ups by due time (and insertion order, for determinism).
    agenda: BinaryHeap<Reverse<(i64, u64, FollowUp)>>,
    agenda_seq: u64,
    /// Rough book: units per (sku, location index); location indexes are the
    /// stores, then the warehouse, then the partner.
    book: BTreeMap<(usize, usize), i64>,
    counter: u64,
    /// Of `book`, units known damaged.
    damaged: BTreeMap<(usize, usize), i64>,
    /// Customers waiting, per (sku, store): joined once.
    waiting: BTreeMap<(usize, usize), bool>,
}

fn location_name(index: usize) -> &'static str {
    match index {
        i if i < STORES.len() => STORES[i].0,
        i if i == STORES.len() => WAREHOUSE,
        _ => PARTNER,
    }
}

const WAREHOUSE_INDEX: usize = STORES.len();
const PARTNER_INDEX: usize = STORES.len() + 1;

impl Simulator {
    pub fn new(config: SimConfig) -> Simulator {
        let mut simulator = Simulator {
            rng: Rng(config.seed ^ 0x5EED_5EED_5EED_5EED),
            setup: Vec::new(),
            emitted: 0,
            clock_ms: 0,
            agenda: BinaryHeap::new(),
            agenda_seq: 0,
            book: BTreeMap::new(),
            counter: 0,
            damaged: BTreeMap::new(),
            waiting: BTreeMap::new(),
            config,
        };
        simulator.setup = simulator.build_setup();
        simulator.setup.reverse();
        simulator
    }

    /// Whether the next events are still the world's setup (configuration and
    /// opening stock), which a runner may publish without pacing.
    pub fn in_setup(&self) -> bool {
        !self.setup.is_empty()
    }

    /// Events emitted so far.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    /// The next event.
    pub fn next_event(&mut self) -> Event {
        self.emitted += 1;
        if let Some(event) = self.setup.pop() {
            return event;
        }
        self.clock_ms += self.config.step_ms;
        if let Some(Reverse((due, _, _))) = self.agenda.peek()
            && *due <= self.clock_ms
            && let Some(Reverse((_, _, follow_up))) = self.agenda.pop()
        {
            return self.follow_up(follow_up);
        }
        self.activity()
    }

    fn now(&self) -> DateTime<Utc> {
        self.config.start + TimeDelta::milliseconds(self.clock_ms)
    }

    fn schedule_between(&mut self, after_ms_min: i64, after_ms_max: i64, follow_up: FollowUp) {
        let after_ms = self.rng.between(after_ms_min, after_ms_max);
        self.schedule(after_ms, follow_up);
    }

    fn schedule(&mut self, after_ms: i64, follow_up: FollowUp) {
        self.agenda_seq += 1;
        self.agenda.push(Reverse((
            self.clock_ms + after_ms,
            self.agenda_seq,
            follow_up,
        )));
    }

    fn next_id(&mut self) -> Uuid {
        self.counter += 1;
        let name = format!("{}:{}", self.config.seed, self.counter);
        Uuid::new_v5(&SIM_NAMESPACE, name.as_bytes())
    }

    fn envelope(
        &mut self,
        channel: &str,
        location: Option<&str>,
        sku: Option<usize>,
        payload: Payload,
    ) -> Event {
        Event {
            event_id: self.next_id(),
            schema_version: SCHEMA_VERSION,
            occurred_at: self.now(),
            channel: id(channel),
            location: location.map(id),
            sku: sku.map(|s| id(sku_name(s))),
            document: None,
            reason: None,
            payload,
        }
    }

    fn build_setup(&mut self) -> Vec<Event> {
        let world = self.config.world_seed;
        let mut n = 0u64;
        let mut setup_id = || {
            n += 1;
            Uuid::new_v5(&SIM_NAMESPACE, format!("world:{world}:{n}").as_bytes())
        };
        let start = self.config.start;
        let event =
            |event_id, channel: &str, location: Option<&str>, sku: Option<String>, payload| Event {
                event_id,
                schema_version: SCHEMA_VERSION,
                occurred_at: start,
                channel: id(channel),
                location: location.map(id),
                sku: sku.map(id),
                document: None,
                reason: None,
                payload,
            };
        let mut events = Vec::new();
        for (store, name, city) in STORES {
            events.push(event(
                setup_id(),
                "admin",
                Some(store),
                None,
                Payload::LocationDefined {
                    name: name.to_owned(),
                    kind: LocationKind::Store,
                    groups: vec![id(city), id("stores")],
                    active: true,
                },
            ));
        }
        events.push(event(
            setup_id(),
            "admin",
            Some(WAREHOUSE),
            None,
            Payload::LocationDefined {
                name: "Central warehouse".to_owned(),
                kind: LocationKind::Warehouse,
                groups: vec![id("fulfilment")],
                active: true,
            },
        ));
        events.push(event(
            setup_id(),
            "admin",
            Some(PARTNER),
            None,
            Payload::LocationDefined {
                name: "Partner outlet".to_owned(),
                kind: LocationKind::Partner,
                groups: vec![id("fulfilment")],
                active: true,
            },
        ));
        let channels: [(&str, &[&str], &[&str], i64); 6] = [
            ("web", &[], &["stores", "fulfilment"], 0),
            ("app", &[], &["stores", "fulfilment"], 0),
            ("marketplace", &[WAREHOUSE], &[], 2),
            ("kiosk", &[], &["stores"], 0),
            ("callcentre", &[], &["stores", "fulfilment"], 1),
            ("pos", &[], &["stores"], 0),
        ];
        for (channel, locations, groups, buffer) in channels {
            events.push(event(
                setup_id(),
                "admin",
                None,
                None,
                Payload::ChannelDefined {
                    channel: id(channel),
                    locations: locations.iter().map(|l| id(*l)).collect(),
                    groups: groups.iter().map(|g| id(*g)).collect(),
                    buffer,
                },
            ));
        }
        let mut rng = Rng(world);
        for sku in 0..self.config.skus {
            for location in 0..=PARTNER_INDEX {
                let quantity = match location {
                    WAREHOUSE_INDEX => rng.between(20, 60),
                    PARTNER_INDEX => rng.between(0, 5),
                    _ => rng.between(0, 8),
                };
                if quantity == 0 {
                    continue;
                }
                self.book.insert((sku, location), quantity);
                events.push(event(
                    setup_id(),
                    "wms",
                    Some(location_name(location)),
                    Some(sku_name(sku)),
                    Payload::StockReceived {
                        quantity,
                        kind: ReceiptKind::InitialLoad,
                    },
                ));
            }
            if sku % 10 == 0 {
                events.push(event(
                    setup_id(),
                    "admin",
                    Some(WAREHOUSE),
                    Some(sku_name(sku)),
                    Payload::AllocationSet {
                        channel: id("web"),
                        quantity: 5,
                    },
                ));
            }
            if sku % 7 == 0 {
                events.push(event(
                    setup_id(),
                    "admin",
                    Some(STORES[0].0),
                    Some(sku_name(sku)),
                    Payload::SafetyStockSet { quantity: 1 },
                ));
            }
        }
        events
    }

    /// Sellable units by the simulator's own books.
    fn book(&self, sku: usize, location: usize) -> i64 {
        self.book.get(&(sku, location)).copied().unwrap_or(0)
            - self.damaged.get(&(sku, location)).copied().unwrap_or(0)
    }

    fn book_add(&mut self, sku: usize, location: usize, delta: i64) {
        *self.book.entry((sku, location)).or_insert(0) += delta;
    }

    #[allow(clippy::too_many_arguments)]
    fn hold_event(
        &mut self,
        prefix: &str,
        channel: &str,
        sku: usize,
        location: Option<usize>,
        group: Option<&str>,
        kind: HoldKind,
        ttl_seconds: u32,
        quantity: i64,
    ) -> (Event, String) {
        self.counter += 1;
        let hold = format!("{prefix}-{}-{}", self.config.seed, self.counter);
        let order = format!("ord-{}-{}", self.config.seed, self.counter);
        let customer = format!("cust-{:05}", self.rng.below(20_000));
        let mut event = self.envelope(
            channel,
            location.map(location_name),
            Some(sku),
            Payload::HoldRequested {
                hold_id: id(hold.clone()),
                order_id: id(order.clone()),
                order_line: 1,
                customer_ref: id(customer),
                quantity,
                ttl_seconds,
                kind,
                group: group.map(id::<GroupId>),
                price: Some(unit_price(sku)),
            },
        );
        event.document = Some(DocumentRef {
            kind: DocumentKind::Order,
            id: id(order),
        });
        (event, hold)
    }

    fn activity(&mut self) -> Event {
        let sku = usize::try_from(self.rng.below(self.config.skus as u64)).unwrap_or(0);
        let store = usize::try_from(self.rng.below(STORES.len() as u64)).unwrap_or(0);
        match self.rng.below(100) {
            // Click & collect: web or app, at a store or any store of a city.
            0..=17 => {
                let channel = if self.rng.chance(70) { "web" } else { "app" };
                let by_group = self.rng.chance(40);
                let (location, group) = if by_group {
                    (None, Some(STORES[store].2))
                } else {
                    (Some(store), None)
                };
                let (event, hold) = self.hold_event(
                    "cc",
                    channel,
                    sku,
                    location,
                    group,
                    HoldKind::ClickAndCollect,
                    900,
                    1,
                );
                let paid = self.rng.chance(85);
                if paid {
                    let confirm_after = self.rng.between(2_000, 20_000);
                    self.schedule(
                        confirm_after,
                        FollowUp::Confirm {
                            hold: hold.clone(),
                            sku,
                        },
                    );
                }
                self.schedule_between(
                    25_000,
                    90_000,
                    FollowUp::Ready {
                        hold: hold.clone(),
                        sku,
                    },
                );
                let outcome = self.rng.below(100);
                if outcome < 80 {
                    let at = location.unwrap_or(store);
                    self.schedule_between(
                        100_000,
                        400_000,
                        FollowUp::Collect {
                            hold,
                            sku,
                            location: at,
                        },
                    );
                } else if outcome < 92 {
                    self.schedule_between(300_000, 700_000, FollowUp::NoShow { hold, sku });
                }
                event
            }
            // Reserve in store from the app, kiosk or call centre; pay at the desk.
            18..=27 => {
                let channel = *self.rng.pick(&["app", "kiosk", "callcentre"]);
                let (event, hold) = self.hold_event(
                    "ris",
                    channel,
                    sku,
                    Some(store),
                    None,
                    HoldKind::ReserveInStore,
                    180,
                    1,
                );
                self.schedule_between(
                    10_000,
                    60_000,
                    FollowUp::Ready {
                        hold: hold.clone(),
                        sku,
                    },
                );
                if self.rng.chance(70) {
                    self.schedule_between(
                        70_000,
                        170_000,
                        FollowUp::Collect {
                            hold,
                            sku,
                            location: store,
                        },
                    );
                }
                event
            }
            // Online checkout, shipped from the fulfilment locations.
            28..=41 => {
                let channel = *self.rng.pick(&["web", "web", "app", "callcentre"]);
                let quantity = if self.rng.chance(85) { 1 } else { 2 };
                let (event, hold) = self.hold_event(
                    "co",
                    channel,
                    sku,
                    None,
                    Some("fulfilment"),
                    HoldKind::Checkout,
                    120,
                    quantity,
                );
                if self.rng.chance(88) {
                    self.schedule_between(
                        3_000,
                        60_000,
                        FollowUp::Confirm {
                            hold: hold.clone(),
                            sku,
                        },
                    );
                    self.schedule_between(
                        70_000,
                        200_000,
                        FollowUp::Ship {
                            hold: hold.clone(),
                            sku,
                        },
                    );
                    if self.rng.chance(12) {
                        // Returned later, in a store, whatever channel sold it.
                        let order = format!("ord-{}-{}", self.config.seed, self.counter);
                        self.schedule_between(
                            300_000,
                            900_000,
                            FollowUp::Return {
                                order,
                                sku,
                                location: store,
                                channel: channel.to_owned(),
                            },
                        );
                    }
                } else if self.rng.chance(50) {
                    self.schedule_between(5_000, 30_000, FollowUp::Release { hold, sku });
                }
                event
            }
            // Marketplace order from the warehouse (it sees the stock minus a buffer).
            42..=49 => {
                let (event, hold) = self.hold_event(
                    "mp",
                    "marketplace",
                    sku,
                    Some(WAREHOUSE_INDEX),
                    None,
                    HoldKind::Checkout,
                    300,
                    1,
                );
                self.schedule_between(
                    5_000,
                    40_000,
                    FollowUp::Confirm {
                        hold: hold.clone(),
                        sku,
                    },
                );
                self.schedule_between(60_000, 240_000, FollowUp::Ship { hold, sku });
                event
            }
            // Web-to-store: browsed online, bought at the till.
            50..=67 => {
                if self.book(sku, store) <= 0 {
                    return self.waitlist_or_restock(sku, store);
                }
                self.book_add(sku, store, -1);
                self.counter += 1;
                let receipt = format!(
                    "rcpt-{}-{}-{}",
                    STORES[store].0, self.config.seed, self.counter
                );
                let mut event = self.envelope(
                    "pos",
                    Some(STORES[store].0),
                    Some(sku),
                    Payload::TillSale {
                        quantity: 1,
                        price: Some(unit_price(sku)),
                    },
                );
                event.document = Some(DocumentRef {
                    kind: DocumentKind::TillReceipt,
                    id: id(receipt),
                });
                event
            }
            // Replenishment: purchase orders to the warehouse, transfers to stores.
            68..=79 => {
                if self.rng.chance(50) {
                    self.counter += 1;
                    let po = format!("po-{}-{}", self.config.seed, self.counter);
                    let quantity = self.rng.between(10, 40);
                    let mut event = self.envelope(
                        "erp",
                        Some(WAREHOUSE),
                        Some(sku),
                        Payload::IncomingExpected {
                            quantity,
                            expected_at: self.now() + TimeDelta::minutes(10),
                        },
                    );
                    event.document = Some(DocumentRef {
                        kind: DocumentKind::PurchaseOrder,
                        id: id(po.clone()),
                    });
                    let after = self.rng.between(60_000, 600_000);
                    self.schedule(
                        after,
                        FollowUp::ReceivePo {
                            po,
                            sku,
                            location: WAREHOUSE_INDEX,
                            quantity,
                        },
                    );
                    event
                } else {
                    let quantity = self.rng.between(2, 6).min(self.book(sku, WAREHOUSE_INDEX));
                    if quantity <= 0 {
                        return self.count(sku, WAREHOUSE_INDEX);
                    }
                    self.book_add(sku, WAREHOUSE_INDEX, -quantity);
                    self.counter += 1;
                    let transfer = format!("tr-{}-{}", self.config.seed, self.counter);
                    let mut event = self.envelope(
                        "wms",
                        Some(WAREHOUSE),
                        Some(sku),
                        Payload::TransferShipped {
                            to_location: id(STORES[store].0),
                            quantity,
                        },
                    );
                    event.document = Some(DocumentRef {
                        kind: DocumentKind::Transfer,
                        id: id(transfer.clone()),
                    });
                    self.schedule_between(
                        30_000,
                        180_000,
                        FollowUp::ReceiveTransfer {
                            transfer,
                            sku,
                            to: store,
                            quantity,
                        },
                    );
                    event
                }
            }
            // A stock count that corrects the books.
            80..=85 => self.count(sku, store),
            // Damage found on the shelf.
            86..=89 => {
                // The simulator's books drift from Stockline's (it does not read the
                // decisions back): only damage units where there clearly are some.
                if self.book(sku, store) < 3 {
                    return self.count(sku, store);
                }
                let mut event = self.envelope(
                    "pos",
                    Some(STORES[store].0),
                    Some(sku),
                    Payload::StockStateChanged {
                        quantity: 1,
                        from: StockState::Sellable,
                        to: StockState::Damaged,
                    },
                );
                event.reason = Some(ReasonCode::Damage);
                *self.damaged.entry((sku, store)).or_insert(0) += 1;
                event
            }
            // A customer who found nothing joins the waitlist; or a restock.
            _ => self.waitlist_or_restock(sku, store),
        }
    }

    fn waitlist_or_restock(&mut self, sku: usize, store: usize) -> Event {
        if self.book(sku, store) <= 0 && !self.waiting.contains_key(&(sku, store)) {
            self.waiting.insert((sku, store), true);
            let customer = format!("cust-{:05}", self.rng.below(20_000));
            return self.envelope(
                "web",
                Some(STORES[store].0),
                Some(sku),
                Payload::WaitlistJoined {
                    customer_ref: id(customer),
                    quantity: 1,
                    group: None,
                },
            );
        }
        let quantity = self.rng.between(2, 6);
        self.book_add(sku, store, quantity);
        self.waiting.remove(&(sku, store));
        let mut event = self.envelope(
            "wms",
            Some(STORES[store].0),
            Some(sku),
            Payload::StockReceived {
                quantity,
                kind: ReceiptKind::Restock,
            },
        );
        event.document = Some(DocumentRef {
            kind: DocumentKind::Other,
            id: id(format!("dn-{}-{}", self.config.seed, self.counter)),
        });
        event
    }

    fn count(&mut self, sku: usize, location: usize) -> Event {
        // The books are sometimes a unit off: counts find it.
        let drift = match self.rng.below(10) {
            0 => -1,
            1 => 1,
            _ => 0,
        };
        let physical = self.book.get(&(sku, location)).copied().unwrap_or(0);
        let counted = (physical + drift).max(0);
        self.book.insert((sku, location), counted);
        let damaged = self.damaged.entry((sku, location)).or_insert(0);
        *damaged = (*damaged).min(counted);
        self.counter += 1;
        let mut event = self.envelope(
            "wms",
            Some(location_name(location)),
            Some(sku),
            Payload::StockCounted { quantity: counted },
        );
        event.document = Some(DocumentRef {
            kind: DocumentKind::StockCount,
            id: id(format!("count-{}-{}", self.config.seed, self.counter)),
        });
        event
    }

    fn follow_up(&mut self, follow_up: FollowUp) -> Event {
        let hold_payload = |hold: &str, make: fn(HoldId) -> Payload| make(id(hold));
        match follow_up {
            FollowUp::Confirm { hold, sku } => {
                let payload = hold_payload(&hold, |hold_id| Payload::HoldConfirmed { hold_id });
                self.envelope("web", None, Some(sku), payload)
            }
            FollowUp::Ready { hold, sku } => {
                let payload =
                    hold_payload(&hold, |hold_id| Payload::HoldReadyForPickup { hold_id });
                self.envelope("store", None, Some(sku), payload)
            }
            FollowUp::Collect {
                hold,
                sku,
                location,
            } => {
                self.book_add(sku, location, -1);
                let payload = hold_payload(&hold, |hold_id| Payload::HoldCollected { hold_id });
                self.envelope("store", None, Some(sku), payload)
            }
            FollowUp::NoShow { hold, sku } => {
                let payload = hold_payload(&hold, |hold_id| Payload::HoldNoShow { hold_id });
                self.envelope("store", None, Some(sku), payload)
            }
            FollowUp::Ship { hold, sku } => {
                let payload = hold_payload(&hold, |hold_id| Payload::HoldShipped { hold_id });
                self.envelope("wms", None, Some(sku), payload)
            }
            FollowUp::Release { hold, sku } => {
                let payload = hold_payload(&hold, |hold_id| Payload::HoldReleased { hold_id });
                self.envelope("web", None, Some(sku), payload)
            }
            FollowUp::ReceivePo {
                po,
                sku,
                location,
                quantity,
            } => {
                self.book_add(sku, location, quantity);
                let mut event = self.envelope(
                    "wms",
                    Some(location_name(location)),
                    Some(sku),
                    Payload::StockReceived {
                        quantity,
                        kind: ReceiptKind::PurchaseOrder,
                    },
                );
                event.document = Some(DocumentRef {
                    kind: DocumentKind::PurchaseOrder,
                    id: id(po),
                });
                event
            }
            FollowUp::ReceiveTransfer {
                transfer,
                sku,
                to,
                quantity,
            } => {
                self.book_add(sku, to, quantity);
                let mut event = self.envelope(
                    "wms",
                    Some(STORES[to].0),
                    Some(sku),
                    Payload::TransferReceived {
                        from_location: id(WAREHOUSE),
                        quantity,
                    },
                );
                event.document = Some(DocumentRef {
                    kind: DocumentKind::Transfer,
                    id: id(transfer),
                });
                event
            }
            FollowUp::Return {
                order,
                sku,
                location,
                channel,
            } => {
                let restock = self.rng.chance(80);
                if restock {
                    self.book_add(sku, location, 1);
                }
                let mut event = self.envelope(
                    "pos",
                    Some(STORES[location].0),
                    Some(sku),
                    Payload::Returned {
                        quantity: 1,
                        disposition: if restock {
                            ReturnDisposition::Restock
                        } else {
                            ReturnDisposition::Damaged
                        },
                        sold_by_channel: Some(id::<ChannelId>(channel)),
                        original_order: Some(id::<OrderId>(order.clone())),
                        price: Some(unit_price(sku)),
                    },
                );
                event.reason = Some(ReasonCode::CustomerReturn);
                event.document = Some(DocumentRef {
                    kind: DocumentKind::Return,
                    id: id::<DocumentId>(format!("ret-{order}")),
                });
                event
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_420_800, 0).expect("valid instant")
    }

    #[test]
    fn the_same_seed_yields_the_same_events() {
        let run = |seed| {
            let mut simulator = Simulator::new(SimConfig::new(seed, start()));
            (0..5_000)
                .map(|_| simulator.next_event())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn every_event_is_valid_and_routable() {
        let mut simulator = Simulator::new(SimConfig::new(3, start()));
        for _ in 0..20_000 {
            let event = simulator.next_event();
            assert_eq!(event.validate(), Ok(()), "{event:?}");
            assert!(event.routing().is_some(), "{event:?}");
        }
    }

    #[test]
    fn a_second_run_reuses_the_setup_ids_only() {
        let mut first = Simulator::new(SimConfig::new(1, start()));
        let mut second = Simulator::new(SimConfig::new(2, start()));
        let setup_len = first.setup.len();
        let a: Vec<Event> = (0..setup_len + 100).map(|_| first.next_event()).collect();
        let b: Vec<Event> = (0..setup_len + 100).map(|_| second.next_event()).collect();
        assert_eq!(a[..setup_len], b[..setup_len], "same world, same setup");
        assert!(
            a[setup_len..]
                .iter()
                .zip(&b[setup_len..])
                .all(|(x, y)| x.event_id != y.event_id),
            "traffic ids differ between seeds"
        );
    }
}

#[cfg(test)]
mod realism {
    use std::collections::BTreeMap;

    use stockline_domain::{Effect, HoldStatus, Ledger, LogTime, Verdict, fold};

    use super::*;

    /// Folding the traffic in its own simulated time gives a plausible retailer:
    /// most holds accepted, some refused, pickups mostly collected, some expiring.
    #[test]
    fn the_traffic_makes_a_plausible_retailer() {
        let start = DateTime::from_timestamp(1_795_420_800, 0).expect("valid instant");
        let mut simulator = Simulator::new(SimConfig::new(11, start));
        let mut ledger = Ledger::new();
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for _ in 0..40_000 {
            let event = simulator.next_event();
            let time = LogTime::from_millis(event.occurred_at.timestamp_millis());
            let outcome = fold(&mut ledger, &event, time);
            let verdict = match &outcome.verdict {
                Verdict::Applied => "applied".to_owned(),
                Verdict::Rejected { rejection } => format!("rejected:{}", rejection.code()),
                Verdict::Duplicate => "duplicate".to_owned(),
                Verdict::Invalid { invalid } => format!("invalid:{}", invalid.code()),
            };
            *counts
                .entry(format!("{}/{verdict}", event.payload.kind().name()))
                .or_default() += 1;
            for effect in &outcome.effects {
                if let Effect::HoldChanged { to, .. } = effect {
                    *counts.entry(format!("hold->{}", to.name())).or_default() += 1;
                }
            }
        }
        let get = |key: &str| counts.get(key).copied().unwrap_or(0);
        assert_eq!(
            counts.keys().filter(|k| k.contains("invalid")).count(),
            0,
            "{counts:#?}"
        );
        let requested: u64 = counts
            .iter()
            .filter(|(k, _)| k.starts_with("hold_requested/"))
            .map(|(_, v)| v)
            .sum();
        let accepted = get("hold_requested/applied");
        assert!(
            accepted * 100 > requested * 60,
            "most holds accepted: {counts:#?}"
        );
        assert!(accepted < requested, "some refused: {counts:#?}");
        for status in [
            HoldStatus::Collected,
            HoldStatus::Shipped,
            HoldStatus::Expired,
            HoldStatus::NoShow,
            HoldStatus::ReadyForPickup,
        ] {
            assert!(
                get(&format!("hold->{}", status.name())) > 0,
                "{status:?}: {counts:#?}"
            );
        }
        for kind in [
            "till_sale/applied",
            "returned/applied",
            "transfer_received/applied",
            "stock_counted/applied",
            "waitlist_joined/applied",
        ] {
            assert!(get(kind) > 0, "{kind}: {counts:#?}");
        }
    }
}
