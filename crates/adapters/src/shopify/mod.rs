//! Shopify webhooks (Admin REST API payloads) to Stockline events.
//!
//! | topic | events |
//! | --- | --- |
//! | `orders/create`, `orders/paid` | POS order (`source_name` in `pos_source_names`, `location_id` set): a till sale per line at that store. Online order with a local-pickup shipping line: a click & collect hold per line at the pickup store. Other online orders: a hold per line at the fulfilment location (or any location of the fulfilment group). Holds are confirmed at once when the order is paid (`financial_status` in `paid_statuses`). |
//! | `orders/cancelled` | the open holds of the order's lines are released; the order's refunds are applied as `refunds/create` |
//! | `refunds/create` | per refund line with `restock_type` `return`, `legacy_restock` or `cancel`: if the line's hold is still open, the units never left and the hold is released (whole lines only); if it was shipped or collected, or the line was sold without a hold (a till sale), the units come back where `location_id` says (a return with disposition `restock`, `sold_by_channel` the order's channel); a `cancel` line without a hold, or one whose hold was released or expired, changes nothing. `no_restock` records nothing: no unit comes back, and a discarded return would count as a returned unit in the channel figures |
//! | `fulfillments/create` | `success` only: per line, a pickup hold is collected, any other hold is shipped (confirmed first if it was not) |
//! | `inventory_levels/update` | a stock count (see [`Shopify::translate`]) |
//!
//! Other topics are acknowledged and counted by the caller, never applied.
//!
//! Ids: orders become `<order_id_prefix><order id>` (`shopify-820982911946154508`);
//! holds `<order id>-<line item id>`, one per order line; event ids are UUID v5 over
//! `shopify`, the order (or refund, fulfillment, inventory item) id, the line id and
//! the action, so every redelivery, and every topic that says the same thing
//! (`orders/create` and `orders/paid` both request the hold), gives the same id.

pub mod payload;

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use stockline_domain::{
    ChannelId, DocumentKind, DocumentRef, Event, GroupId, HoldKind, HoldStatus, LocationId,
    OrderId, Payload, Price, ReturnDisposition, SCHEMA_VERSION, Sku,
};

use crate::platform_id::PlatformId;
use crate::{
    AdapterError, HoldFacts, Lookup, SkipCode, Translation, customer_ref, document_id, event_id,
    hold_id, money, order_id, parse_payload,
};
use payload::{Fulfillment, InventoryLevel, LineItem, Order, Refund};

/// The topics this adapter applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    OrdersCreate,
    OrdersPaid,
    OrdersCancelled,
    RefundsCreate,
    FulfillmentsCreate,
    InventoryLevelsUpdate,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::OrdersCreate,
        Topic::OrdersPaid,
        Topic::OrdersCancelled,
        Topic::RefundsCreate,
        Topic::FulfillmentsCreate,
        Topic::InventoryLevelsUpdate,
    ];

    /// The `X-Shopify-Topic` header value; `None` for topics this adapter does not
    /// apply.
    pub fn parse(header: &str) -> Option<Topic> {
        Topic::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(header.trim()))
    }

    pub fn name(self) -> &'static str {
        match self {
            Topic::OrdersCreate => "orders/create",
            Topic::OrdersPaid => "orders/paid",
            Topic::OrdersCancelled => "orders/cancelled",
            Topic::RefundsCreate => "refunds/create",
            Topic::FulfillmentsCreate => "fulfillments/create",
            Topic::InventoryLevelsUpdate => "inventory_levels/update",
        }
    }
}

/// Which customer reference a hold carries (what the store desk looks up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomerRefSource {
    /// The order's name (`#1001`), as on the customer's confirmation.
    #[default]
    OrderName,
    /// `<order_id_prefix>customer-<customer id>`.
    CustomerId,
    /// The order's email address.
    Email,
}

fn channel(name: &str) -> ChannelId {
    ChannelId::new(name).unwrap_or_else(|e| unreachable!("a valid channel id: {e}"))
}

/// The `[http.shopify]` settings: the app's secret and the mapping from Shopify's
/// ids to Stockline's. Every map key is a Shopify id (decimal digits, as a string
/// in TOML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShopifySettings {
    /// The app's client secret (API secret key): webhooks are signed with it.
    pub client_secret: String,
    /// Prefix of Stockline order ids (and so hold ids): `shopify-`.
    pub order_id_prefix: String,
    /// Shopify location id -> Stockline location.
    pub locations: BTreeMap<PlatformId, LocationId>,
    /// Shopify variant id -> Stockline SKU (order, refund, fulfillment lines).
    pub variants: BTreeMap<PlatformId, Sku>,
    /// Shopify inventory item id -> Stockline SKU (`inventory_levels/update`).
    pub inventory_items: BTreeMap<PlatformId, Sku>,
    /// Shopify SKU text -> Stockline SKU, where they differ. A line whose variant
    /// is not mapped uses its `sku` field, through this map if listed.
    pub skus: BTreeMap<String, Sku>,
    /// Order `source_name` -> Stockline channel.
    pub channels: BTreeMap<String, ChannelId>,
    /// The channel of orders whose `source_name` is not in `channels`.
    pub default_channel: ChannelId,
    /// `source_name`s of point-of-sale orders (till sales at the order's
    /// `location_id`).
    pub pos_source_names: Vec<String>,
    /// Local pickup: shipping line `code` (or `title`) -> the Stockline store where
    /// the customer collects.
    pub pickup_lines: BTreeMap<String, LocationId>,
    /// Where shipped online orders are held: one location...
    pub ship_from_location: Option<LocationId>,
    /// ...or any location of a group (the one with the most available).
    pub ship_from_group: Option<GroupId>,
    /// `financial_status` values that mean paid: the holds are confirmed at once.
    pub paid_statuses: Vec<String>,
    /// TTL of the hold of an unpaid shipped order, in seconds.
    pub unpaid_hold_ttl_seconds: u32,
    /// TTL of an unpaid click & collect hold (pay at pickup), in seconds.
    pub pickup_hold_ttl_seconds: u32,
    pub customer_ref: CustomerRefSource,
    /// Apply `inventory_levels/update` as stock counts.
    pub inventory_levels: bool,
    /// The channel stock counts from Shopify are recorded under.
    pub inventory_channel: ChannelId,
}

impl Default for ShopifySettings {
    fn default() -> Self {
        ShopifySettings {
            client_secret: String::new(),
            order_id_prefix: "shopify-".to_owned(),
            locations: BTreeMap::new(),
            variants: BTreeMap::new(),
            inventory_items: BTreeMap::new(),
            skus: BTreeMap::new(),
            channels: BTreeMap::from([
                ("web".to_owned(), channel("web")),
                ("pos".to_owned(), channel("pos")),
            ]),
            default_channel: channel("web"),
            pos_source_names: vec!["pos".to_owned()],
            pickup_lines: BTreeMap::new(),
            ship_from_location: None,
            ship_from_group: None,
            paid_statuses: vec![
                "paid".to_owned(),
                "partially_paid".to_owned(),
                "authorized".to_owned(),
            ],
            unpaid_hold_ttl_seconds: 3 * 24 * 3_600,
            pickup_hold_ttl_seconds: 7 * 24 * 3_600,
            customer_ref: CustomerRefSource::OrderName,
            inventory_levels: true,
            inventory_channel: channel("admin"),
        }
    }
}

impl ShopifySettings {
    /// What cannot be caught by the types: checked when the service starts.
    pub fn validate(&self) -> Result<(), String> {
        if self.client_secret.is_empty() {
            return Err(
                "[http.shopify] client_secret is empty: every webhook would be refused".into(),
            );
        }
        if self.ship_from_location.is_some() && self.ship_from_group.is_some() {
            return Err(
                "[http.shopify] names both ship_from_location and ship_from_group; keep one".into(),
            );
        }
        let max = stockline_domain::event::HOLD_TTL_SECONDS_MAX;
        for (name, ttl) in [
            ("unpaid_hold_ttl_seconds", self.unpaid_hold_ttl_seconds),
            ("pickup_hold_ttl_seconds", self.pickup_hold_ttl_seconds),
        ] {
            if !(1..=max).contains(&ttl) {
                return Err(format!("[http.shopify] {name} must be within 1..={max}"));
            }
        }
        if self.order_id_prefix.len() > 40
            || stockline_domain::ids::check_id("prefix", &format!("{}x", self.order_id_prefix))
                .is_err()
        {
            return Err(
                "[http.shopify] order_id_prefix must be at most 40 printable ASCII characters without spaces"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The Shopify adapter over its settings.
#[derive(Debug, Clone, Copy)]
pub struct Shopify<'a> {
    pub settings: &'a ShopifySettings,
}

/// How an online order reaches its customer.
enum Delivery {
    Pickup(LocationId),
    Ship {
        location: Option<LocationId>,
        group: Option<GroupId>,
    },
}

fn utc(time: DateTime<FixedOffset>) -> DateTime<Utc> {
    time.with_timezone(&Utc)
}

impl<'a> Shopify<'a> {
    pub fn new(settings: &'a ShopifySettings) -> Self {
        Shopify { settings }
    }

    /// Translates one webhook delivery. `inventory_levels/update` needs the books:
    /// Shopify's `available` excludes committed (ordered, unfulfilled) and
    /// unavailable units, while a Stockline count is of every unit physically
    /// there, so the count is `available` plus what the ledger has reserved,
    /// committed, damaged and in quality control at that location (read through
    /// `lookup`); never below zero.
    pub fn translate(
        &self,
        topic: Topic,
        body: &[u8],
        lookup: &dyn Lookup,
    ) -> Result<Translation, AdapterError> {
        let mut out = Translation::default();
        match topic {
            Topic::OrdersCreate | Topic::OrdersPaid => {
                let order: Order = parse_payload(body)?;
                self.order_placed(&order, &mut out);
            }
            Topic::OrdersCancelled => {
                let order: Order = parse_payload(body)?;
                self.order_cancelled(&order, lookup, &mut out)?;
            }
            Topic::RefundsCreate => {
                let refund: Refund = parse_payload(body)?;
                self.refund(&refund, lookup, &mut out)?;
            }
            Topic::FulfillmentsCreate => {
                let fulfillment: Fulfillment = parse_payload(body)?;
                self.fulfillment(&fulfillment, lookup, &mut out)?;
            }
            Topic::InventoryLevelsUpdate => {
                let level: InventoryLevel = parse_payload(body)?;
                self.inventory_level(&level, lookup, &mut out)?;
            }
        }
        Ok(out)
    }

    fn order_id(&self, id: PlatformId) -> Option<OrderId> {
        order_id(&format!("{}{id}", self.settings.order_id_prefix))
    }

    fn hold_text(&self, order: PlatformId, line: PlatformId) -> String {
        format!("{}{order}-{line}", self.settings.order_id_prefix)
    }

    fn channel_of(&self, source_name: Option<&str>) -> ChannelId {
        source_name
            .and_then(|s| self.settings.channels.get(s))
            .cloned()
            .unwrap_or_else(|| self.settings.default_channel.clone())
    }

    fn location(&self, id: Option<PlatformId>) -> Option<LocationId> {
        id.and_then(|id| self.settings.locations.get(&id).cloned())
    }

    /// A line's Stockline SKU: the variant mapping, else the line's `sku` (through
    /// `skus` if listed).
    fn sku(&self, line: &LineItem) -> Result<Sku, String> {
        if let Some(sku) = line.variant_id.and_then(|v| self.settings.variants.get(&v)) {
            return Ok(sku.clone());
        }
        let text = line.sku.as_deref().map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Err(match line.variant_id {
                Some(variant) => format!(
                    "variant {variant} is not in [http.shopify.variants] and the line has no sku"
                ),
                None => "the line has no variant and no sku".to_owned(),
            });
        }
        if let Some(sku) = self.settings.skus.get(text) {
            return Ok(sku.clone());
        }
        Sku::new(text).map_err(|e| {
            format!("the line's sku is not a Stockline SKU ({e}); map it in [http.shopify.skus]")
        })
    }

    fn order_document(&self, order: &OrderId) -> Option<DocumentRef> {
        Some(DocumentRef {
            kind: DocumentKind::Order,
            id: document_id(order.as_str())?,
        })
    }

    fn is_pos(&self, order: &Order) -> bool {
        order
            .source_name
            .as_deref()
            .is_some_and(|s| self.settings.pos_source_names.iter().any(|p| p == s))
    }

    fn is_paid(&self, order: &Order) -> bool {
        order
            .financial_status
            .as_deref()
            .is_some_and(|s| self.settings.paid_statuses.iter().any(|p| p == s))
    }

    fn delivery(&self, order: &Order) -> Result<Delivery, (SkipCode, String)> {
        for line in &order.shipping_lines {
            for key in [line.code.as_deref(), line.title.as_deref()]
                .into_iter()
                .flatten()
            {
                if let Some(store) = self.settings.pickup_lines.get(key.trim()) {
                    return Ok(Delivery::Pickup(store.clone()));
                }
            }
        }
        if let Some(line) = order.shipping_lines.iter().find(|l| {
            l.delivery_category
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("pickup"))
        }) {
            return Err((
                SkipCode::UnmappedPickup,
                format!(
                    "a local pickup (shipping line {:?}) whose store is not in [http.shopify.pickup_lines]",
                    line.code.as_deref().or(line.title.as_deref()).unwrap_or("")
                ),
            ));
        }
        match (&self.settings.ship_from_location, &self.settings.ship_from_group) {
            (Some(location), _) => Ok(Delivery::Ship {
                location: Some(location.clone()),
                group: None,
            }),
            (None, Some(group)) => Ok(Delivery::Ship {
                location: None,
                group: Some(group.clone()),
            }),
            (None, None) => Err((
                SkipCode::NoFulfilmentLocation,
                "a shipped order, and [http.shopify] names no ship_from_location or ship_from_group"
                    .to_owned(),
            )),
        }
    }

    fn customer(&self, order: &Order, order_id: &OrderId) -> stockline_domain::CustomerRef {
        let prefix = &self.settings.order_id_prefix;
        let chosen = match self.settings.customer_ref {
            CustomerRefSource::OrderName => order.name.as_deref().and_then(customer_ref),
            CustomerRefSource::CustomerId => order
                .customer
                .as_ref()
                .and_then(|c| c.id)
                .and_then(|id| customer_ref(&format!("{prefix}customer-{id}"))),
            CustomerRefSource::Email => order.email.as_deref().and_then(customer_ref),
        };
        chosen
            .or_else(|| customer_ref(order_id.as_str()))
            .unwrap_or_else(|| unreachable!("an order id is a valid customer reference"))
    }

    fn price(&self, line: &LineItem, currency: Option<&str>) -> Option<Price> {
        money::price(&line.price_text()?, currency?)
    }

    /// `orders/create` and `orders/paid`.
    fn order_placed(&self, order: &Order, out: &mut Translation) {
        let Some(order_id) = self.order_id(order.id) else {
            out.skip(
                format!("order {}", order.id),
                SkipCode::BadValue,
                "the order id does not make a Stockline order id (order_id_prefix too long?)",
            );
            return;
        };
        let at = utc(order.processed_at.unwrap_or(order.created_at));
        let channel = self.channel_of(order.source_name.as_deref());
        let document = self.order_document(&order_id);
        if self.is_pos(order) {
            let Some(location) = self.location(order.location_id) else {
                for line in &order.line_items {
                    out.skip(
                        format!("line_item {}", line.id),
                        SkipCode::UnmappedLocation,
                        match order.location_id {
                            Some(id) => {
                                format!("POS location {id} is not in [http.shopify.locations]")
                            }
                            None => "a POS order without location_id".to_owned(),
                        },
                    );
                }
                return;
            };
            let document = document_id(order_id.as_str()).map(|id| DocumentRef {
                kind: DocumentKind::TillReceipt,
                id,
            });
            for line in &order.line_items {
                let Some((sku, quantity)) = self.stock_line(line, out) else {
                    continue;
                };
                let id = event_id(&[
                    "shopify",
                    "order",
                    &order.id.to_string(),
                    &line.id.to_string(),
                    "till_sale",
                ]);
                out.push(Event {
                    event_id: id,
                    schema_version: SCHEMA_VERSION,
                    occurred_at: at,
                    channel: channel.clone(),
                    location: Some(location.clone()),
                    sku: Some(sku),
                    document: document.clone(),
                    reason: None,
                    payload: Payload::TillSale {
                        quantity,
                        price: self.price(line, order.currency.as_deref()),
                    },
                });
            }
            return;
        }
        let delivery = match self.delivery(order) {
            Ok(delivery) => delivery,
            Err((code, reason)) => {
                for line in &order.line_items {
                    out.skip(format!("line_item {}", line.id), code, reason.clone());
                }
                return;
            }
        };
        let paid = self.is_paid(order);
        let customer = self.customer(order, &order_id);
        for (index, line) in order.line_items.iter().enumerate() {
            let Some((sku, quantity)) = self.stock_line(line, out) else {
                continue;
            };
            let hold_text = self.hold_text(order.id, line.id);
            let Some(hold) = hold_id(&hold_text) else {
                out.skip(
                    format!("line_item {}", line.id),
                    SkipCode::BadValue,
                    "no valid hold id",
                );
                continue;
            };
            let (location, group, kind, ttl_seconds) = match &delivery {
                Delivery::Pickup(store) => (
                    Some(store.clone()),
                    None,
                    HoldKind::ClickAndCollect,
                    self.settings.pickup_hold_ttl_seconds,
                ),
                Delivery::Ship { location, group } => (
                    location.clone(),
                    group.clone(),
                    HoldKind::Checkout,
                    self.settings.unpaid_hold_ttl_seconds,
                ),
            };
            let ids = [order.id.to_string(), line.id.to_string()];
            out.push(Event {
                event_id: event_id(&["shopify", "order", &ids[0], &ids[1], "hold_requested"]),
                schema_version: SCHEMA_VERSION,
                occurred_at: utc(order.created_at),
                channel: channel.clone(),
                location,
                sku: Some(sku.clone()),
                document: document.clone(),
                reason: None,
                payload: Payload::HoldRequested {
                    hold_id: hold.clone(),
                    order_id: order_id.clone(),
                    order_line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                    customer_ref: customer.clone(),
                    quantity,
                    ttl_seconds,
                    kind,
                    group,
                    price: self.price(line, order.currency.as_deref()),
                },
            });
            if paid {
                out.push(self.transition(
                    &ids,
                    "hold_confirmed",
                    at,
                    channel.clone(),
                    None,
                    sku,
                    Payload::HoldConfirmed { hold_id: hold },
                    document.clone(),
                ));
            }
        }
    }

    /// A line that is stock: its SKU and positive quantity, or a skip.
    fn stock_line(&self, line: &LineItem, out: &mut Translation) -> Option<(Sku, i64)> {
        let item = format!("line_item {}", line.id);
        if line.gift_card {
            out.skip(item, SkipCode::NotStock, "a gift card is not stock");
            return None;
        }
        if line.quantity < 1 {
            out.skip(
                item,
                SkipCode::BadValue,
                format!("quantity {} is not positive", line.quantity),
            );
            return None;
        }
        match self.sku(line) {
            Ok(sku) => Some((sku, line.quantity)),
            Err(reason) => {
                out.skip(item, SkipCode::UnmappedSku, reason);
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn transition(
        &self,
        ids: &[String; 2],
        action: &str,
        at: DateTime<Utc>,
        channel: ChannelId,
        location: Option<LocationId>,
        sku: Sku,
        payload: Payload,
        document: Option<DocumentRef>,
    ) -> Event {
        Event {
            event_id: event_id(&["shopify", "order", &ids[0], &ids[1], action]),
            schema_version: SCHEMA_VERSION,
            occurred_at: at,
            channel,
            location,
            sku: Some(sku),
            document,
            reason: None,
            payload,
        }
    }

    /// The hold of an order line, if the ledger has it.
    fn line_hold(
        &self,
        order: PlatformId,
        line: &LineItem,
        lookup: &dyn Lookup,
        out: &mut Translation,
    ) -> Result<Option<(Sku, stockline_domain::HoldId, HoldFacts)>, AdapterError> {
        let item = format!("line_item {}", line.id);
        let sku = match self.sku(line) {
            Ok(sku) => sku,
            Err(reason) => {
                out.skip(item, SkipCode::UnmappedSku, reason);
                return Ok(None);
            }
        };
        let Some(hold) = hold_id(&self.hold_text(order, line.id)) else {
            out.skip(item, SkipCode::BadValue, "no valid hold id");
            return Ok(None);
        };
        match lookup.hold(&hold, &sku).map_err(AdapterError::Lookup)? {
            Some(facts) => Ok(Some((sku, hold, facts))),
            None => {
                out.skip(
                    item,
                    SkipCode::NoHold,
                    format!(
                        "Stockline holds nothing for this line (hold {hold}): a till sale, an order from before Stockline, or one whose creation has not arrived"
                    ),
                );
                Ok(None)
            }
        }
    }

    /// `orders/cancelled`.
    fn order_cancelled(
        &self,
        order: &Order,
        lookup: &dyn Lookup,
        out: &mut Translation,
    ) -> Result<(), AdapterError> {
        let Some(order_id) = self.order_id(order.id) else {
            return Ok(());
        };
        let at = utc(order
            .cancelled_at
            .or(order.updated_at)
            .unwrap_or(order.created_at));
        let document = self.order_document(&order_id);
        for line in &order.line_items {
            if line.gift_card {
                continue;
            }
            let Some((sku, hold, facts)) = self.line_hold(order.id, line, lookup, out)? else {
                continue;
            };
            if facts.status.is_closed() {
                out.skip(
                    format!("line_item {}", line.id),
                    SkipCode::HoldClosed,
                    format!("hold {hold} is {}", facts.status.name()),
                );
                continue;
            }
            let ids = [order.id.to_string(), line.id.to_string()];
            out.push(self.transition(
                &ids,
                "hold_released",
                at,
                facts.channel,
                None,
                sku,
                Payload::HoldReleased { hold_id: hold },
                document.clone(),
            ));
        }
        for refund in &order.refunds {
            self.refund(refund, lookup, out)?;
        }
        Ok(())
    }

    /// `refunds/create` (and the refunds of a cancelled order).
    fn refund(
        &self,
        refund: &Refund,
        lookup: &dyn Lookup,
        out: &mut Translation,
    ) -> Result<(), AdapterError> {
        let Some(order_id) = self.order_id(refund.order_id) else {
            return Ok(());
        };
        let at = utc(refund.processed_at.unwrap_or(refund.created_at));
        let sold_by = lookup
            .order_channel(&order_id)
            .map_err(AdapterError::Lookup)?;
        // Where the refund was made: a store's till (`pos`) says the return is the
        // store channel's, even for an order sold online.
        let refunded_on = refund
            .transactions
            .iter()
            .find_map(|t| t.source_name.as_deref())
            .and_then(|s| self.settings.channels.get(s))
            .cloned();
        let return_channel = refunded_on
            .or_else(|| sold_by.clone())
            .unwrap_or_else(|| self.settings.default_channel.clone());
        for item in &refund.refund_line_items {
            let label = format!("refund_line_item {}", item.id);
            let restock = item.restock_type.as_deref().unwrap_or("no_restock");
            if !matches!(restock, "return" | "legacy_restock" | "cancel") {
                out.skip(
                    label,
                    SkipCode::NoRestock,
                    format!("restock_type {restock}: nothing goes back on the shelf"),
                );
                continue;
            }
            if item.quantity < 1 {
                out.skip(
                    label,
                    SkipCode::BadValue,
                    format!("quantity {} is not positive", item.quantity),
                );
                continue;
            }
            let Some(line) = &item.line_item else {
                out.skip(
                    label,
                    SkipCode::UnmappedSku,
                    "the refund line has no line_item",
                );
                continue;
            };
            let sku = match self.sku(line) {
                Ok(sku) => sku,
                Err(reason) => {
                    out.skip(label, SkipCode::UnmappedSku, reason);
                    continue;
                }
            };
            let hold = hold_id(&self.hold_text(refund.order_id, item.line_item_id));
            let facts = match &hold {
                Some(hold) => lookup.hold(hold, &sku).map_err(AdapterError::Lookup)?,
                None => None,
            };
            let ids = [refund.order_id.to_string(), item.line_item_id.to_string()];
            match (&hold, &facts) {
                // The units never left: the hold gives them back.
                (Some(hold), Some(facts)) if !facts.status.is_closed() => {
                    if item.quantity != facts.quantity {
                        out.skip(
                            label,
                            SkipCode::PartialCancel,
                            format!(
                                "{} of the {} units held by {hold} are refunded; holds are released whole",
                                item.quantity, facts.quantity
                            ),
                        );
                        continue;
                    }
                    out.push(self.transition(
                        &ids,
                        "hold_released",
                        at,
                        facts.channel.clone(),
                        None,
                        sku,
                        Payload::HoldReleased {
                            hold_id: hold.clone(),
                        },
                        self.order_document(&order_id),
                    ));
                    continue;
                }
                // Released, expired, rejected, no-show: the units never left.
                (Some(hold), Some(facts))
                    if !matches!(facts.status, HoldStatus::Shipped | HoldStatus::Collected) =>
                {
                    out.skip(
                        label,
                        SkipCode::HoldClosed,
                        format!(
                            "hold {hold} is {}: the units never left",
                            facts.status.name()
                        ),
                    );
                    continue;
                }
                (_, None) if restock == "cancel" => {
                    out.skip(
                        label,
                        SkipCode::NoHold,
                        "a cancelled line Stockline holds nothing for: no stock to give back",
                    );
                    continue;
                }
                // Shipped or collected, or sold without a hold (a till sale, an
                // order from before Stockline): the units come back.
                _ => {}
            }
            let Some(location) = self.location(item.location_id) else {
                out.skip(
                    label,
                    SkipCode::UnmappedLocation,
                    match item.location_id {
                        Some(id) => {
                            format!("restock location {id} is not in [http.shopify.locations]")
                        }
                        None => "a restocked refund line without location_id".to_owned(),
                    },
                );
                continue;
            };
            let refund_id = refund.id.to_string();
            let item_id = item.id.to_string();
            out.push(Event {
                event_id: event_id(&["shopify", "refund", &refund_id, &item_id, "returned"]),
                schema_version: SCHEMA_VERSION,
                occurred_at: at,
                channel: return_channel.clone(),
                location: Some(location),
                sku: Some(sku),
                document: document_id(&format!(
                    "{}refund-{refund_id}",
                    self.settings.order_id_prefix
                ))
                .map(|id| DocumentRef {
                    kind: DocumentKind::Return,
                    id,
                }),
                reason: Some(stockline_domain::ReasonCode::CustomerReturn),
                payload: Payload::Returned {
                    quantity: item.quantity,
                    disposition: ReturnDisposition::Restock,
                    sold_by_channel: sold_by
                        .clone()
                        .or_else(|| facts.as_ref().map(|f| f.channel.clone())),
                    original_order: Some(order_id.clone()),
                    price: None,
                },
            });
        }
        Ok(())
    }

    /// `fulfillments/create`.
    fn fulfillment(
        &self,
        fulfillment: &Fulfillment,
        lookup: &dyn Lookup,
        out: &mut Translation,
    ) -> Result<(), AdapterError> {
        let status = fulfillment.status.as_deref().unwrap_or("");
        if status != "success" {
            for line in &fulfillment.line_items {
                out.skip(
                    format!("line_item {}", line.id),
                    SkipCode::NotFulfilled,
                    format!("fulfillment {} is {status:?}, not success", fulfillment.id),
                );
            }
            return Ok(());
        }
        let Some(order_id) = self.order_id(fulfillment.order_id) else {
            return Ok(());
        };
        let document = self.order_document(&order_id);
        let at = utc(fulfillment.created_at);
        let location = self.location(fulfillment.location_id);
        for line in &fulfillment.line_items {
            if line.gift_card {
                continue;
            }
            let Some((sku, hold, facts)) =
                self.line_hold(fulfillment.order_id, line, lookup, out)?
            else {
                continue;
            };
            if facts.status.is_closed() {
                out.skip(
                    format!("line_item {}", line.id),
                    SkipCode::HoldClosed,
                    format!("hold {hold} is {}", facts.status.name()),
                );
                continue;
            }
            let ids = [fulfillment.order_id.to_string(), line.id.to_string()];
            if facts.kind.is_pickup() {
                out.push(self.transition(
                    &ids,
                    "hold_collected",
                    at,
                    facts.channel,
                    location.clone(),
                    sku,
                    Payload::HoldCollected { hold_id: hold },
                    document.clone(),
                ));
                continue;
            }
            if !facts.confirmed {
                // Shipping is a commitment: an unpaid hold is confirmed first (the same
                // event id as the confirmation `orders/paid` would make).
                out.push(self.transition(
                    &ids,
                    "hold_confirmed",
                    at,
                    facts.channel.clone(),
                    None,
                    sku.clone(),
                    Payload::HoldConfirmed {
                        hold_id: hold.clone(),
                    },
                    document.clone(),
                ));
            }
            out.push(self.transition(
                &ids,
                "hold_shipped",
                at,
                facts.channel,
                location.clone(),
                sku,
                Payload::HoldShipped { hold_id: hold },
                document.clone(),
            ));
        }
        Ok(())
    }

    /// `inventory_levels/update`.
    fn inventory_level(
        &self,
        level: &InventoryLevel,
        lookup: &dyn Lookup,
        out: &mut Translation,
    ) -> Result<(), AdapterError> {
        let item = format!(
            "inventory_level {}@{}",
            level.inventory_item_id, level.location_id
        );
        if !self.settings.inventory_levels {
            out.skip(
                item,
                SkipCode::Disabled,
                "[http.shopify] inventory_levels is false",
            );
            return Ok(());
        }
        let Some(available) = level.available else {
            out.skip(
                item,
                SkipCode::BadValue,
                "available is null: the item is not tracked",
            );
            return Ok(());
        };
        let Some(sku) = self
            .settings
            .inventory_items
            .get(&level.inventory_item_id)
            .cloned()
        else {
            out.skip(
                item,
                SkipCode::UnmappedSku,
                format!(
                    "inventory item {} is not in [http.shopify.inventory_items]",
                    level.inventory_item_id
                ),
            );
            return Ok(());
        };
        let Some(location) = self.location(Some(level.location_id)) else {
            out.skip(
                item,
                SkipCode::UnmappedLocation,
                format!(
                    "location {} is not in [http.shopify.locations]",
                    level.location_id
                ),
            );
            return Ok(());
        };
        let books = lookup
            .quantities(&sku, &location)
            .map_err(AdapterError::Lookup)?
            .unwrap_or_default();
        let set_aside = books.reserved + books.committed + books.damaged + books.quality_control;
        let on_hand = available
            .saturating_add(set_aside)
            .clamp(0, stockline_domain::event::QUANTITY_MAX);
        let item_id = level.inventory_item_id.to_string();
        let location_id = level.location_id.to_string();
        let updated = level.updated_at.to_rfc3339();
        out.push(Event {
            event_id: event_id(&[
                "shopify",
                "inventory_level",
                &item_id,
                &location_id,
                &updated,
                &available.to_string(),
            ]),
            schema_version: SCHEMA_VERSION,
            occurred_at: utc(level.updated_at),
            channel: self.settings.inventory_channel.clone(),
            location: Some(location),
            sku: Some(sku),
            document: document_id(&format!(
                "{}inventory-{item_id}-{location_id}",
                self.settings.order_id_prefix
            ))
            .map(|id| DocumentRef {
                kind: DocumentKind::StockCount,
                id,
            }),
            reason: None,
            payload: Payload::StockCounted { quantity: on_hand },
        });
        Ok(())
    }
}
