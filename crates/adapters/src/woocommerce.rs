//! WooCommerce `order.created` / `order.updated` webhooks to Stockline events.
//!
//! Every delivery carries the whole order as it is now (the REST API v3 Order),
//! not what changed, so the adapter derives the events the current `status` implies
//! for each line, and relies on deterministic event ids to apply each step once:
//!
//! | status | events per line |
//! | --- | --- |
//! | `pending`, `on-hold` (awaiting payment) | hold requested (pickup or shipped) |
//! | `processing` (paid) | hold requested, confirmed |
//! | `completed` | hold requested, confirmed, then collected (pickup) or shipped |
//! | `cancelled`, `failed` | the line's open hold is released |
//! | `refunded` | an open hold is released; a shipped or collected line is returned (restock) at `returns_location`, or where it was held |
//! | anything else (`trash`, `checkout-draft`, custom statuses) | nothing |
//!
//! A shipping line whose `method_id` is in `pickup_method_ids` (WooCommerce's
//! `local_pickup` and the blocks checkout's `pickup_location`) makes the order a
//! pickup at the store `pickup_locations` names for its pickup location (meta
//! `pickup_location`), its `method_title`, or `method_id:instance_id`; else
//! `default_pickup_location`.
//!
//! The unsigned ping WooCommerce sends when a webhook is created (a form body
//! `webhook_id=N`) is recognised by [`is_ping`].

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stockline_domain::{
    ChannelId, CustomerRef, DocumentKind, DocumentRef, Event, GroupId, HoldKind, HoldStatus,
    LocationId, OrderId, Payload, ReasonCode, ReturnDisposition, SCHEMA_VERSION, Sku,
};

use crate::platform_id::PlatformId;
use crate::{
    AdapterError, Lookup, SkipCode, Translation, customer_ref, document_id, event_id, hold_id,
    money, order_id, parse_payload,
};

/// The topics this adapter applies (`X-WC-Webhook-Topic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    OrderCreated,
    OrderUpdated,
}

impl Topic {
    pub fn parse(header: &str) -> Option<Topic> {
        match header.trim() {
            "order.created" => Some(Topic::OrderCreated),
            "order.updated" => Some(Topic::OrderUpdated),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Topic::OrderCreated => "order.created",
            Topic::OrderUpdated => "order.updated",
        }
    }
}

/// Whether a body is the ping WooCommerce sends, unsigned, when a webhook is
/// created: `webhook_id=<digits>`.
pub fn is_ping(body: &[u8]) -> bool {
    std::str::from_utf8(body)
        .ok()
        .and_then(|b| b.trim().strip_prefix("webhook_id="))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Which customer reference a hold carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WooCustomerRef {
    /// The order number (`number`), as on the customer's confirmation.
    #[default]
    OrderNumber,
    /// The billing email address.
    Email,
    /// `<order_id_prefix>customer-<customer_id>` (guests fall back to the number).
    CustomerId,
}

fn id<T: TryFrom<&'static str>>(text: &'static str) -> T
where
    T::Error: std::fmt::Display,
{
    T::try_from(text).unwrap_or_else(|e| unreachable!("a valid id: {e}"))
}

/// The `[http.woocommerce]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WooSettings {
    /// The webhook's secret (WooCommerce > Settings > Advanced > Webhooks).
    pub secret: String,
    /// The channel orders are sold on.
    pub channel: ChannelId,
    /// Prefix of Stockline order ids (and hold ids): `woo-`.
    pub order_id_prefix: String,
    /// WooCommerce product or variation id -> Stockline SKU. A line's
    /// `variation_id` is looked up first, then its `product_id`, then its `sku`.
    pub products: BTreeMap<PlatformId, Sku>,
    /// WooCommerce SKU text -> Stockline SKU, where they differ.
    pub skus: BTreeMap<String, Sku>,
    /// Where shipped orders are held: one location...
    pub ship_from_location: Option<LocationId>,
    /// ...or any location of a group.
    pub ship_from_group: Option<GroupId>,
    /// Shipping `method_id`s that are a pickup.
    pub pickup_method_ids: Vec<String>,
    /// Pickup location name (meta `pickup_location`), `method_title`, or
    /// `method_id:instance_id` -> Stockline store.
    pub pickup_locations: BTreeMap<String, LocationId>,
    /// The store of pickups `pickup_locations` does not name.
    pub default_pickup_location: Option<LocationId>,
    /// Where refunded units are put back; unset: where they were held.
    pub returns_location: Option<LocationId>,
    /// TTL of the hold of an unpaid (`pending`, `on-hold`) shipped order, seconds.
    pub unpaid_hold_ttl_seconds: u32,
    /// TTL of an unpaid pickup hold, seconds.
    pub pickup_hold_ttl_seconds: u32,
    pub customer_ref: WooCustomerRef,
}

impl Default for WooSettings {
    fn default() -> Self {
        WooSettings {
            secret: String::new(),
            channel: id("web"),
            order_id_prefix: "woo-".to_owned(),
            products: BTreeMap::new(),
            skus: BTreeMap::new(),
            ship_from_location: None,
            ship_from_group: None,
            pickup_method_ids: vec!["local_pickup".to_owned(), "pickup_location".to_owned()],
            pickup_locations: BTreeMap::new(),
            default_pickup_location: None,
            returns_location: None,
            unpaid_hold_ttl_seconds: 3 * 24 * 3_600,
            pickup_hold_ttl_seconds: 7 * 24 * 3_600,
            customer_ref: WooCustomerRef::OrderNumber,
        }
    }
}

impl WooSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.secret.is_empty() {
            return Err(
                "[http.woocommerce] secret is empty: every webhook would be refused".into(),
            );
        }
        if self.ship_from_location.is_some() && self.ship_from_group.is_some() {
            return Err(
                "[http.woocommerce] names both ship_from_location and ship_from_group; keep one"
                    .into(),
            );
        }
        let max = stockline_domain::event::HOLD_TTL_SECONDS_MAX;
        for (name, ttl) in [
            ("unpaid_hold_ttl_seconds", self.unpaid_hold_ttl_seconds),
            ("pickup_hold_ttl_seconds", self.pickup_hold_ttl_seconds),
        ] {
            if !(1..=max).contains(&ttl) {
                return Err(format!(
                    "[http.woocommerce] {name} must be within 1..={max}"
                ));
            }
        }
        if self.order_id_prefix.len() > 40
            || stockline_domain::ids::check_id("prefix", &format!("{}x", self.order_id_prefix))
                .is_err()
        {
            return Err(
                "[http.woocommerce] order_id_prefix must be at most 40 printable ASCII characters without spaces"
                    .into(),
            );
        }
        Ok(())
    }
}

/// WooCommerce's GMT timestamps: `2017-03-22T19:28:02` (no offset; UTC).
mod gmt {
    use super::*;
    use serde::Deserializer;

    pub fn parse(text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Some(time.with_timezone(&Utc));
        }
        NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|t| t.and_utc())
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a date")))
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) if text.trim().is_empty() => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a date"))),
        }
    }
}

/// The parts of a WooCommerce order the adapter reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: PlatformId,
    #[serde(default)]
    pub number: Option<String>,
    pub status: String,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(deserialize_with = "gmt::required")]
    pub date_created_gmt: DateTime<Utc>,
    #[serde(default, deserialize_with = "gmt::optional")]
    pub date_modified_gmt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "gmt::optional")]
    pub date_paid_gmt: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "gmt::optional")]
    pub date_completed_gmt: Option<DateTime<Utc>>,
    #[serde(default)]
    pub customer_id: Option<PlatformId>,
    #[serde(default)]
    pub billing: Option<Billing>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub shipping_lines: Vec<ShippingLine>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Billing {
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LineItem {
    pub id: PlatformId,
    #[serde(default)]
    pub product_id: Option<PlatformId>,
    /// 0 for a simple product.
    #[serde(default)]
    pub variation_id: Option<PlatformId>,
    pub quantity: i64,
    #[serde(default)]
    pub sku: Option<String>,
    /// The unit price (a JSON number).
    #[serde(default)]
    pub price: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShippingLine {
    #[serde(default)]
    pub method_id: Option<String>,
    #[serde(default)]
    pub method_title: Option<String>,
    #[serde(default)]
    pub instance_id: Option<Value>,
    #[serde(default)]
    pub meta_data: Vec<Meta>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Meta {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
}

fn text_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

enum Delivery {
    Pickup(LocationId),
    Ship {
        location: Option<LocationId>,
        group: Option<GroupId>,
    },
}

/// The WooCommerce adapter over its settings.
#[derive(Debug, Clone, Copy)]
pub struct WooCommerce<'a> {
    pub settings: &'a WooSettings,
}

impl<'a> WooCommerce<'a> {
    pub fn new(settings: &'a WooSettings) -> Self {
        WooCommerce { settings }
    }

    /// Translates one delivery of `order.created` or `order.updated` (both carry
    /// the whole order; the topic does not change the translation).
    pub fn translate(
        &self,
        _topic: Topic,
        body: &[u8],
        lookup: &dyn Lookup,
    ) -> Result<Translation, AdapterError> {
        let order: Order = parse_payload(body)?;
        let mut out = Translation::default();
        let Some(order_id) = order_id(&format!("{}{}", self.settings.order_id_prefix, order.id))
        else {
            out.skip(
                format!("order {}", order.id),
                SkipCode::BadValue,
                "the order id does not make a Stockline order id",
            );
            return Ok(out);
        };
        match order.status.as_str() {
            "pending" | "on-hold" => self.placed(&order, &order_id, Step::Held, &mut out),
            "processing" => self.placed(&order, &order_id, Step::Paid, &mut out),
            "completed" => self.placed(&order, &order_id, Step::Completed, &mut out),
            "cancelled" | "failed" => self.released(&order, &order_id, lookup, &mut out)?,
            "refunded" => self.refunded(&order, &order_id, lookup, &mut out)?,
            other => {
                for line in &order.line_items {
                    out.skip(
                        format!("line_item {}", line.id),
                        SkipCode::StatusIgnored,
                        format!("order status {other:?} changes no stock"),
                    );
                }
            }
        }
        Ok(out)
    }

    fn sku(&self, line: &LineItem) -> Result<Sku, String> {
        let mapped = [line.variation_id, line.product_id]
            .into_iter()
            .flatten()
            .filter(|id| id.0 != 0)
            .find_map(|id| self.settings.products.get(&id));
        if let Some(sku) = mapped {
            return Ok(sku.clone());
        }
        let text = line.sku.as_deref().map(str::trim).unwrap_or("");
        if text.is_empty() {
            return Err(
                "the product is not in [http.woocommerce.products] and the line has no sku"
                    .to_owned(),
            );
        }
        if let Some(sku) = self.settings.skus.get(text) {
            return Ok(sku.clone());
        }
        Sku::new(text).map_err(|e| {
            format!(
                "the line's sku is not a Stockline SKU ({e}); map it in [http.woocommerce.skus]"
            )
        })
    }

    fn stock_line(&self, line: &LineItem, out: &mut Translation) -> Option<Sku> {
        let item = format!("line_item {}", line.id);
        if line.quantity < 1 {
            out.skip(
                item,
                SkipCode::BadValue,
                format!("quantity {} is not positive", line.quantity),
            );
            return None;
        }
        match self.sku(line) {
            Ok(sku) => Some(sku),
            Err(reason) => {
                out.skip(item, SkipCode::UnmappedSku, reason);
                None
            }
        }
    }

    fn delivery(&self, order: &Order) -> Result<Delivery, (SkipCode, String)> {
        let pickup = order.shipping_lines.iter().find(|l| {
            l.method_id
                .as_deref()
                .is_some_and(|m| self.settings.pickup_method_ids.iter().any(|p| p == m))
        });
        if let Some(line) = pickup {
            let meta = line
                .meta_data
                .iter()
                .find(|m| m.key.as_deref() == Some("pickup_location"))
                .and_then(|m| text_of(m.value.as_ref()));
            let method_instance = format!(
                "{}:{}",
                line.method_id.as_deref().unwrap_or(""),
                text_of(line.instance_id.as_ref()).unwrap_or_default()
            );
            let keys = [meta, line.method_title.clone(), Some(method_instance)];
            let store = keys
                .iter()
                .flatten()
                .find_map(|k| self.settings.pickup_locations.get(k.trim()))
                .or(self.settings.default_pickup_location.as_ref());
            return match store {
                Some(store) => Ok(Delivery::Pickup(store.clone())),
                None => Err((
                    SkipCode::UnmappedPickup,
                    format!(
                        "a pickup ({:?}) whose store is not in [http.woocommerce.pickup_locations], and no default_pickup_location",
                        line.method_title.as_deref().unwrap_or("")
                    ),
                )),
            };
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
                "a shipped order, and [http.woocommerce] names no ship_from_location or ship_from_group"
                    .to_owned(),
            )),
        }
    }

    fn customer(&self, order: &Order, order_id: &OrderId) -> CustomerRef {
        let prefix = &self.settings.order_id_prefix;
        let chosen = match self.settings.customer_ref {
            WooCustomerRef::OrderNumber => order.number.as_deref().and_then(customer_ref),
            WooCustomerRef::Email => order
                .billing
                .as_ref()
                .and_then(|b| b.email.as_deref())
                .and_then(customer_ref),
            WooCustomerRef::CustomerId => order
                .customer_id
                .filter(|id| id.0 != 0)
                .and_then(|id| customer_ref(&format!("{prefix}customer-{id}"))),
        };
        chosen
            .or_else(|| customer_ref(order_id.as_str()))
            .unwrap_or_else(|| unreachable!("an order id is a valid customer reference"))
    }

    fn document(&self, order_id: &OrderId) -> Option<DocumentRef> {
        Some(DocumentRef {
            kind: DocumentKind::Order,
            id: document_id(order_id.as_str())?,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        order: &Order,
        line: &LineItem,
        action: &str,
        at: DateTime<Utc>,
        location: Option<LocationId>,
        sku: Sku,
        document: Option<DocumentRef>,
        payload: Payload,
    ) -> Event {
        Event {
            event_id: event_id(&[
                "woocommerce",
                "order",
                &order.id.to_string(),
                &line.id.to_string(),
                action,
            ]),
            schema_version: SCHEMA_VERSION,
            occurred_at: at,
            channel: self.settings.channel.clone(),
            location,
            sku: Some(sku),
            document,
            reason: None,
            payload,
        }
    }

    fn placed(&self, order: &Order, order_id: &OrderId, step: Step, out: &mut Translation) {
        let delivery = match self.delivery(order) {
            Ok(delivery) => delivery,
            Err((code, reason)) => {
                for line in &order.line_items {
                    out.skip(format!("line_item {}", line.id), code, reason.clone());
                }
                return;
            }
        };
        let customer = self.customer(order, order_id);
        let document = self.document(order_id);
        let modified = order.date_modified_gmt.unwrap_or(order.date_created_gmt);
        for (index, line) in order.line_items.iter().enumerate() {
            let Some(sku) = self.stock_line(line, out) else {
                continue;
            };
            let Some(hold) = hold_id(&format!("{order_id}-{}", line.id)) else {
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
            let price = text_of(line.price.as_ref())
                .zip(order.currency.as_deref())
                .and_then(|(amount, currency)| money::price(&amount, currency));
            out.push(self.event(
                order,
                line,
                "hold_requested",
                order.date_created_gmt,
                location,
                sku.clone(),
                document.clone(),
                Payload::HoldRequested {
                    hold_id: hold.clone(),
                    order_id: order_id.clone(),
                    order_line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                    customer_ref: customer.clone(),
                    quantity: line.quantity,
                    ttl_seconds,
                    kind,
                    group,
                    price,
                },
            ));
            if step == Step::Held {
                continue;
            }
            out.push(self.event(
                order,
                line,
                "hold_confirmed",
                order.date_paid_gmt.unwrap_or(modified),
                None,
                sku.clone(),
                document.clone(),
                Payload::HoldConfirmed {
                    hold_id: hold.clone(),
                },
            ));
            if step == Step::Paid {
                continue;
            }
            let done = order.date_completed_gmt.unwrap_or(modified);
            let (action, payload) = match kind {
                HoldKind::ClickAndCollect => {
                    ("hold_collected", Payload::HoldCollected { hold_id: hold })
                }
                _ => ("hold_shipped", Payload::HoldShipped { hold_id: hold }),
            };
            out.push(self.event(
                order,
                line,
                action,
                done,
                None,
                sku,
                document.clone(),
                payload,
            ));
        }
    }

    fn released(
        &self,
        order: &Order,
        order_id: &OrderId,
        lookup: &dyn Lookup,
        out: &mut Translation,
    ) -> Result<(), AdapterError> {
        let at = order.date_modified_gmt.unwrap_or(order.date_created_gmt);
        let document = self.document(order_id);
        for line in &order.line_items {
            let Some((sku, hold, facts)) = self.line_hold(order_id, line, lookup, out)? else {
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
            out.push(self.event(
                order,
                line,
                "hold_released",
                at,
                None,
                sku,
                document.clone(),
                Payload::HoldReleased { hold_id: hold },
            ));
        }
        Ok(())
    }

    fn refunded(
        &self,
        order: &Order,
        order_id: &OrderId,
        lookup: &dyn Lookup,
        out: &mut Translation,
    ) -> Result<(), AdapterError> {
        let at = order.date_modified_gmt.unwrap_or(order.date_created_gmt);
        let document = self.document(order_id);
        for line in &order.line_items {
            let Some((sku, hold, facts)) = self.line_hold(order_id, line, lookup, out)? else {
                continue;
            };
            let item = format!("line_item {}", line.id);
            match facts.status {
                HoldStatus::Held | HoldStatus::ReadyForPickup => {
                    out.push(self.event(
                        order,
                        line,
                        "hold_released",
                        at,
                        None,
                        sku,
                        document.clone(),
                        Payload::HoldReleased { hold_id: hold },
                    ));
                }
                HoldStatus::Shipped | HoldStatus::Collected => {
                    let Some(location) = self
                        .settings
                        .returns_location
                        .clone()
                        .or(facts.location.clone())
                    else {
                        out.skip(item, SkipCode::UnmappedLocation, "no returns_location");
                        continue;
                    };
                    let mut event = self.event(
                        order,
                        line,
                        "returned",
                        at,
                        Some(location),
                        sku,
                        document_id(&format!("{order_id}-refund")).map(|id| DocumentRef {
                            kind: DocumentKind::Return,
                            id,
                        }),
                        Payload::Returned {
                            quantity: facts.quantity,
                            disposition: ReturnDisposition::Restock,
                            sold_by_channel: Some(facts.channel.clone()),
                            original_order: Some(order_id.clone()),
                            price: None,
                        },
                    );
                    event.reason = Some(ReasonCode::CustomerReturn);
                    out.push(event);
                }
                status => out.skip(
                    item,
                    SkipCode::HoldClosed,
                    format!("hold {hold} is {}", status.name()),
                ),
            }
        }
        Ok(())
    }

    fn line_hold(
        &self,
        order_id: &OrderId,
        line: &LineItem,
        lookup: &dyn Lookup,
        out: &mut Translation,
    ) -> Result<Option<(Sku, stockline_domain::HoldId, crate::HoldFacts)>, AdapterError> {
        let Some(sku) = self.stock_line(line, out) else {
            return Ok(None);
        };
        let item = format!("line_item {}", line.id);
        let Some(hold) = hold_id(&format!("{order_id}-{}", line.id)) else {
            out.skip(item, SkipCode::BadValue, "no valid hold id");
            return Ok(None);
        };
        match lookup.hold(&hold, &sku).map_err(AdapterError::Lookup)? {
            Some(facts) => Ok(Some((sku, hold, facts))),
            None => {
                out.skip(
                    item,
                    SkipCode::NoHold,
                    format!("Stockline holds nothing for this line (hold {hold})"),
                );
                Ok(None)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Held,
    Paid,
    Completed,
}
