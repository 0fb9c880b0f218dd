//! The parts of Shopify's webhook payloads (Admin REST API resources) the adapter
//! reads. Every other field is ignored, so newer API versions with more fields
//! still parse. Ids are [`PlatformId`]s (`u64`, never `f64`).

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;
use serde_json::Value;

use crate::platform_id::PlatformId;

/// `orders/create`, `orders/paid`, `orders/cancelled`: the Order resource.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: PlatformId,
    /// `#1001`: what the customer reads on the confirmation.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    pub created_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub processed_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub cancelled_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<FixedOffset>>,
    /// The shop's currency (ISO 4217).
    #[serde(default)]
    pub currency: Option<String>,
    /// `pending`, `authorized`, `partially_paid`, `paid`, `partially_refunded`,
    /// `refunded`, `voided`.
    #[serde(default)]
    pub financial_status: Option<String>,
    /// Where the order was placed: `web`, `pos`, `shopify_draft_order`, `iphone`,
    /// `android`, or an app's id.
    #[serde(default)]
    pub source_name: Option<String>,
    /// The physical location where a POS order was placed.
    #[serde(default)]
    pub location_id: Option<PlatformId>,
    #[serde(default)]
    pub customer: Option<Customer>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    #[serde(default)]
    pub shipping_lines: Vec<ShippingLine>,
    /// Refunds of the order (a cancelled order lists the refund that cancelled it).
    #[serde(default)]
    pub refunds: Vec<Refund>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    #[serde(default)]
    pub id: Option<PlatformId>,
}

/// A line item of an order, a refund or a fulfillment.
#[derive(Debug, Clone, Deserialize)]
pub struct LineItem {
    pub id: PlatformId,
    #[serde(default)]
    pub variant_id: Option<PlatformId>,
    #[serde(default)]
    pub sku: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub quantity: i64,
    /// The unit price, a decimal string (`"199.00"`) in the shop's currency.
    #[serde(default)]
    pub price: Option<Value>,
    #[serde(default)]
    pub gift_card: bool,
    /// `null`, `partial` or `fulfilled`.
    #[serde(default)]
    pub fulfillment_status: Option<String>,
}

impl LineItem {
    /// The price as a decimal string, whether Shopify wrote a string or a number.
    pub fn price_text(&self) -> Option<String> {
        match self.price.as_ref()? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            _ => None,
        }
    }
}

/// How an order is delivered. Local pickup is written by Shopify as a shipping line
/// whose `code` and `title` name the pickup location (`source` `shopify`); newer
/// API versions may also classify it with `delivery_category` `pickup`.
#[derive(Debug, Clone, Deserialize)]
pub struct ShippingLine {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub delivery_category: Option<String>,
}

/// `refunds/create`: the Refund resource.
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: PlatformId,
    pub order_id: PlatformId,
    pub created_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub processed_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub refund_line_items: Vec<RefundLineItem>,
    #[serde(default)]
    pub transactions: Vec<Transaction>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RefundLineItem {
    pub id: PlatformId,
    pub line_item_id: PlatformId,
    pub quantity: i64,
    /// `no_restock`, `cancel` (unfulfilled units), `return` (fulfilled units),
    /// `legacy_restock`.
    #[serde(default)]
    pub restock_type: Option<String>,
    /// Where the units are restocked.
    #[serde(default)]
    pub location_id: Option<PlatformId>,
    /// The order's line item, in full.
    #[serde(default)]
    pub line_item: Option<LineItem>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transaction {
    /// Where the refund was made (`pos` at a store's till, `web` in the admin...).
    #[serde(default)]
    pub source_name: Option<String>,
}

/// `fulfillments/create`: the Fulfillment resource.
#[derive(Debug, Clone, Deserialize)]
pub struct Fulfillment {
    pub id: PlatformId,
    pub order_id: PlatformId,
    /// `pending`, `open`, `success`, `cancelled`, `error`, `failure`.
    #[serde(default)]
    pub status: Option<String>,
    /// Where the units left from (or were handed over).
    #[serde(default)]
    pub location_id: Option<PlatformId>,
    pub created_at: DateTime<FixedOffset>,
    #[serde(default)]
    pub line_items: Vec<LineItem>,
}

/// `inventory_levels/update`: the InventoryLevel resource.
#[derive(Debug, Clone, Deserialize)]
pub struct InventoryLevel {
    pub inventory_item_id: PlatformId,
    pub location_id: PlatformId,
    /// Units available to sell: Shopify's on hand minus committed (ordered, not yet
    /// fulfilled) and unavailable units. `null` when the item is not tracked.
    #[serde(default)]
    pub available: Option<i64>,
    pub updated_at: DateTime<FixedOffset>,
}
