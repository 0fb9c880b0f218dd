//! Availability: per SKU, per location, per channel, in batches, and where a
//! customer can collect soonest.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use stockline_domain::{
    Allocation, ChannelId, Config, GroupId, LocationId, LocationKind, Quantities, Sku, channel_view,
};
use utoipa::IntoParams;

use crate::POSITION_HEADER;
use crate::auth::Caller;
use crate::cache::{CachedSku, PositionSnapshot, SkuRows};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath, ApiQuery, WaitFor};
use crate::state::AppState;
use crate::views::{
    BatchAvailability, BatchAvailabilityItem, BatchAvailabilityRequest, ChannelAvailability,
    ChannelLocationView, LocationAvailability, PickupOption, PickupOptions, QuantitiesView,
    SkuAvailability,
};

pub fn parse_sku(value: &str) -> Result<Sku, ApiError> {
    Sku::new(value).map_err(|e| ApiError::parameter("sku", e.to_string()))
}

pub fn parse_location(field: &'static str, value: &str) -> Result<LocationId, ApiError> {
    LocationId::new(value).map_err(|e| ApiError::parameter(field, e.to_string()))
}

pub fn parse_channel(field: &'static str, value: &str) -> Result<ChannelId, ApiError> {
    ChannelId::new(value).map_err(|e| ApiError::parameter(field, e.to_string()))
}

fn kind_name(kind: LocationKind) -> &'static str {
    match kind {
        LocationKind::Store => "store",
        LocationKind::Warehouse => "warehouse",
        LocationKind::Partner => "partner",
    }
}

fn unknown_sku(sku: &Sku) -> ApiError {
    ApiError::not_found(
        "unknown-sku",
        Some("sku"),
        format!("no stock has ever been recorded for SKU {sku}"),
    )
}

/// A SKU's rows and its partition's configuration, at least as recent as
/// `snapshot` (take it first): from the cache while the SKU's partition has not
/// changed availability rows since they were read. `None` when no stock was ever
/// recorded for the SKU.
fn sku_rows(
    state: &AppState,
    snapshot: &PositionSnapshot,
    sku: &Sku,
) -> Result<Option<Arc<CachedSku>>, ApiError> {
    let partition = state.partition_of(sku);
    // A partition this process does not own (revoked, or not assigned yet) has no
    // position: its rows are read, not kept.
    let position = snapshot.positions.get(&partition).copied();
    if position.is_some()
        && let Some(hit) = state.sku_cache().get(sku.as_str(), snapshot)
    {
        return Ok(Some(hit));
    }
    let config = state.config_of_partition(partition)?;
    let stock = state.store().stock_of(sku)?;
    if stock.is_empty() {
        return Ok(None);
    }
    let allocations = state.store().allocations_of(sku)?;
    let entry = Arc::new(CachedSku::new(
        partition,
        position.unwrap_or(0),
        SkuRows { stock, allocations },
        config,
    ));
    if position.is_some() {
        state
            .sku_cache()
            .insert(sku.as_str(), Arc::clone(&entry), snapshot);
    }
    Ok(Some(entry))
}

fn allocations_at<'a>(
    rows: &'a SkuRows,
    location: &'a LocationId,
) -> impl Iterator<Item = (&'a ChannelId, &'a Allocation)> + 'a {
    rows.allocations
        .iter()
        .filter(move |(l, _, _)| l == location)
        .map(|(_, c, a)| (c, a))
}

fn location_view(
    rows: &SkuRows,
    config: &Config,
    location: &LocationId,
    q: &Quantities,
) -> LocationAvailability {
    LocationAvailability {
        location: location.to_string(),
        kind: config
            .locations
            .get(location)
            .map(|l| kind_name(l.kind).to_owned()),
        quantities: QuantitiesView::from(q),
        exclusive_unused: allocations_at(rows, location)
            .filter(|(_, a)| a.unused() > 0)
            .map(|(c, a)| (c.to_string(), a.unused()))
            .collect(),
    }
}

/// [`SkuAvailability`] up to the value of `position`, serialized from the rows as
/// they are (no intermediate strings and maps): the same bytes as serializing the
/// view, as the tests below check.
#[derive(Serialize)]
struct SkuAvailabilityHead<'a> {
    sku: &'a str,
    locations: LocationsOf<'a>,
    total_available: i64,
}

struct LocationsOf<'a>(&'a CachedSku);

impl Serialize for LocationsOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entry = self.0;
        serializer.collect_seq(entry.rows.stock.iter().map(|(location, q)| {
            LocationOf {
                location: location.as_str(),
                kind: entry
                    .config
                    .locations
                    .get(location)
                    .map(|l| kind_name(l.kind)),
                quantities: QuantitiesView::from(q),
                exclusive_unused: ExclusiveUnused {
                    rows: &entry.rows,
                    location,
                },
            }
        }))
    }
}

/// [`LocationAvailability`], borrowed.
#[derive(Serialize)]
struct LocationOf<'a> {
    location: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    quantities: QuantitiesView,
    #[serde(skip_serializing_if = "ExclusiveUnused::is_empty")]
    exclusive_unused: ExclusiveUnused<'a>,
}

/// Unused exclusive allocations at a location, by channel (rows are in key order:
/// by channel id within a location, as the view's map sorts them).
struct ExclusiveUnused<'a> {
    rows: &'a SkuRows,
    location: &'a LocationId,
}

impl ExclusiveUnused<'_> {
    fn iter(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        allocations_at(self.rows, self.location)
            .filter(|(_, a)| a.unused() > 0)
            .map(|(c, a)| (c.as_str(), a.unused()))
    }

    fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl Serialize for ExclusiveUnused<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// `{"sku":...,"locations":[...],"total_available":N,"position":`: the SKU's
/// availability body but for the positions, which each answer appends.
fn availability_head(sku: &Sku, entry: &CachedSku) -> Result<Bytes, ApiError> {
    if let Some(head) = entry.availability_head.get() {
        return Ok(head.clone());
    }
    let head = SkuAvailabilityHead {
        sku: sku.as_str(),
        locations: LocationsOf(entry),
        total_available: entry
            .rows
            .stock
            .iter()
            .map(|(_, q)| q.available().max(0))
            .sum(),
    };
    let mut out = Vec::with_capacity(64 + 192 * entry.rows.stock.len());
    serde_json::to_writer(&mut out, &head).map_err(|e| ApiError::Internal(e.to_string()))?;
    // A struct's JSON ends with its closing brace; the position follows instead.
    if out.pop() != Some(b'}') {
        return Err(ApiError::Internal(
            "unexpected availability JSON".to_owned(),
        ));
    }
    out.extend_from_slice(br#","position":"#);
    let head = Bytes::from(out);
    let _ = entry.availability_head.set(head.clone());
    Ok(head)
}

/// A 200 JSON answer: `head`, then the snapshot's positions and the closing brace,
/// with the same positions in `Stockline-Position`.
fn answer_with_head(head: &[u8], snapshot: &PositionSnapshot) -> Response {
    let mut body = Vec::with_capacity(head.len() + snapshot.json.len() + 1);
    body.extend_from_slice(head);
    body.extend_from_slice(&snapshot.json);
    body.push(b'}');
    respond(body, snapshot)
}

/// A 200 JSON answer of `value` (whose `position` is the snapshot's), with the
/// snapshot's positions in `Stockline-Position`. `capacity`: expected body bytes.
fn answer<T: Serialize>(
    value: &T,
    snapshot: &PositionSnapshot,
    capacity: usize,
) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(respond(body, snapshot))
}

fn respond(body: Vec<u8>, snapshot: &PositionSnapshot) -> Response {
    let mut response = (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response();
    if let Some(header) = &snapshot.header {
        response
            .headers_mut()
            .insert(POSITION_HEADER, header.clone());
    }
    response
}

fn require_location(config: &Config, location: &LocationId) -> Result<(), ApiError> {
    if config.locations.contains_key(location) {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "unknown-location",
            Some("location"),
            format!("location {location} is not defined"),
        ))
    }
}

/// Every location's quantities of a SKU.
#[utoipa::path(
    get,
    path = "/v1/skus/{sku}/availability",
    tag = "availability",
    params(("sku" = String, Path, description = "SKU"), ConsistencyParams),
    responses(
        (status = 200, body = SkuAvailability),
        (status = 404, body = Problem, description = "unknown SKU"),
    ),
    security(("bearer" = []))
)]
pub async fn sku_availability(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath(sku): ApiPath<String>,
) -> Result<Response, ApiError> {
    caller.may_read_availability()?;
    wait.wait(&state).await?;
    let sku = parse_sku(&sku)?;
    let snapshot = state.snapshot();
    let entry = sku_rows(&state, &snapshot, &sku)?.ok_or_else(|| unknown_sku(&sku))?;
    let head = availability_head(&sku, &entry)?;
    Ok(answer_with_head(&head, &snapshot))
}

/// One location's quantities of a SKU.
#[utoipa::path(
    get,
    path = "/v1/skus/{sku}/locations/{location}/availability",
    tag = "availability",
    params(
        ("sku" = String, Path, description = "SKU"),
        ("location" = String, Path, description = "location id"),
        ConsistencyParams
    ),
    responses(
        (status = 200, body = SkuAvailability),
        (status = 404, body = Problem, description = "unknown SKU or location"),
    ),
    security(("bearer" = []))
)]
pub async fn location_availability(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath((sku, location)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    caller.may_read_availability()?;
    wait.wait(&state).await?;
    let sku = parse_sku(&sku)?;
    let location = parse_location("location", &location)?;
    let snapshot = state.snapshot();
    let entry = sku_rows(&state, &snapshot, &sku)?;
    let config = match &entry {
        Some(entry) => Arc::clone(&entry.config),
        None => state.config_for(&sku)?,
    };
    require_location(&config, &location)?;
    let entry = entry.ok_or_else(|| unknown_sku(&sku))?;
    let q = entry
        .rows
        .stock
        .iter()
        .find(|(l, _)| l == &location)
        .map(|(_, q)| *q)
        .unwrap_or_default();
    answer(
        &SkuAvailability {
            sku: sku.to_string(),
            total_available: q.available().max(0),
            locations: vec![location_view(&entry.rows, &config, &location, &q)],
            position: snapshot.positions.clone(),
        },
        &snapshot,
        512,
    )
}

/// What a channel may promise: its locations, its buffer, exclusive allocations.
#[utoipa::path(
    get,
    path = "/v1/channels/{channel}/skus/{sku}/availability",
    tag = "availability",
    params(
        ("channel" = String, Path, description = "channel id"),
        ("sku" = String, Path, description = "SKU"),
        ConsistencyParams
    ),
    responses(
        (status = 200, body = ChannelAvailability),
        (status = 404, body = Problem, description = "unknown SKU or channel"),
    ),
    security(("bearer" = []))
)]
pub async fn channel_availability(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath((channel, sku)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    caller.may_read_availability()?;
    wait.wait(&state).await?;
    let channel = parse_channel("channel", &channel)?;
    let sku = parse_sku(&sku)?;
    let snapshot = state.snapshot();
    let entry = sku_rows(&state, &snapshot, &sku)?;
    let config = match &entry {
        Some(entry) => Arc::clone(&entry.config),
        None => state.config_for(&sku)?,
    };
    let Some(channel_config) = config.channels.get(&channel) else {
        return Err(ApiError::not_found(
            "unknown-channel",
            Some("channel"),
            format!("channel {channel} is not configured"),
        ));
    };
    let entry = entry.ok_or_else(|| unknown_sku(&sku))?;
    let rows = &entry.rows;
    let locations: Vec<ChannelLocationView> = rows
        .stock
        .iter()
        .filter(|(location, _)| config.channel_sells_from(&channel, location))
        .map(|(location, q)| ChannelLocationView {
            location: location.to_string(),
            promisable: channel_view(
                &config,
                &channel,
                location,
                q,
                allocations_at(rows, location),
            ),
            available: q.available(),
        })
        .collect();
    let capacity = 128 + 80 * locations.len();
    answer(
        &ChannelAvailability {
            sku: sku.to_string(),
            channel: channel.to_string(),
            buffer: channel_config.buffer,
            total_promisable: locations.iter().map(|l| l.promisable).sum(),
            locations,
            position: snapshot.positions.clone(),
        },
        &snapshot,
        capacity,
    )
}

/// Many SKUs (x locations) in one call.
#[utoipa::path(
    post,
    path = "/v1/availability",
    tag = "availability",
    params(ConsistencyParams),
    request_body = BatchAvailabilityRequest,
    responses(
        (status = 200, body = BatchAvailability),
        (status = 413, body = Problem, description = "more cells than `availability_cells_max`"),
    ),
    security(("bearer" = []))
)]
pub async fn batch_availability(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiJson(request): ApiJson<BatchAvailabilityRequest>,
) -> Result<Response, ApiError> {
    caller.may_read_availability()?;
    wait.wait(&state).await?;
    let max = state.settings().availability_cells_max;
    let locations = request
        .locations
        .as_ref()
        .map(|ls| {
            ls.iter()
                .map(|l| parse_location("locations", l))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let cells = request.skus.len() * locations.as_ref().map_or(1, |l| l.len().max(1));
    if request.skus.len() > max || cells > max {
        return Err(ApiError::TooMany {
            what: "the request",
            field: "skus",
            count: cells,
            max,
        });
    }
    let channel = request
        .channel
        .as_deref()
        .map(|c| parse_channel("channel", c))
        .transpose()?;
    let snapshot = state.snapshot();
    let mut items = Vec::new();
    for sku in &request.skus {
        let sku = parse_sku(sku)?;
        let Some(entry) = sku_rows(&state, &snapshot, &sku)? else {
            continue;
        };
        let rows = &entry.rows;
        for (location, q) in &rows.stock {
            if locations.as_ref().is_some_and(|ls| !ls.contains(location)) {
                continue;
            }
            let promisable = channel.as_ref().map(|channel| {
                channel_view(
                    &entry.config,
                    channel,
                    location,
                    q,
                    allocations_at(rows, location),
                )
            });
            items.push(BatchAvailabilityItem {
                sku: sku.to_string(),
                location: location.to_string(),
                quantities: QuantitiesView::from(q),
                promisable,
            });
        }
    }
    let capacity = 64 + 260 * items.len();
    answer(
        &BatchAvailability {
            items,
            position: snapshot.positions.clone(),
        },
        &snapshot,
        capacity,
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PickupQuery {
    /// Units wanted.
    pub quantity: i64,
    /// Stores of this group.
    pub group: String,
    /// Count what this channel may promise (default: plain availability).
    pub channel: Option<String>,
}

/// Where a customer can collect N units soonest: stores of a group.
#[utoipa::path(
    get,
    path = "/v1/skus/{sku}/pickup-options",
    tag = "availability",
    params(("sku" = String, Path, description = "SKU"), PickupQuery, ConsistencyParams),
    responses(
        (status = 200, body = PickupOptions),
        (status = 404, body = Problem, description = "unknown SKU or group"),
    ),
    security(("bearer" = []))
)]
pub async fn pickup_options(
    State(state): State<AppState>,
    caller: Caller,
    wait: WaitFor,
    ApiPath(sku): ApiPath<String>,
    ApiQuery(query): ApiQuery<PickupQuery>,
) -> Result<Response, ApiError> {
    caller.may_read_availability()?;
    wait.wait(&state).await?;
    let sku = parse_sku(&sku)?;
    if !(1..=stockline_domain::event::QUANTITY_MAX).contains(&query.quantity) {
        return Err(ApiError::parameter(
            "quantity",
            "must be a positive number of units",
        ));
    }
    let group =
        GroupId::new(&query.group).map_err(|e| ApiError::parameter("group", e.to_string()))?;
    let channel = query
        .channel
        .as_deref()
        .map(|c| parse_channel("channel", c))
        .transpose()?;
    let snapshot = state.snapshot();
    let entry = sku_rows(&state, &snapshot, &sku)?;
    let config = match &entry {
        Some(entry) => Arc::clone(&entry.config),
        None => state.config_for(&sku)?,
    };
    let stores: Vec<(&LocationId, &stockline_domain::LocationConfig)> = config
        .group_members(&group)
        .filter(|(_, l)| l.active && l.kind == LocationKind::Store)
        .collect();
    if stores.is_empty() {
        return Err(ApiError::not_found(
            "unknown-group",
            Some("group"),
            format!("group {group} has no active store"),
        ));
    }
    let empty = SkuRows::default();
    let rows = entry.as_ref().map_or(&empty, |entry| &entry.rows);
    let stock: BTreeMap<&LocationId, Quantities> =
        rows.stock.iter().map(|(l, q)| (l, *q)).collect();
    let incoming = state.store().incoming_of(&sku)?;
    let mut now = Vec::new();
    let mut later = Vec::new();
    for (location, location_config) in stores {
        let q = stock.get(location).copied().unwrap_or_default();
        let available_now = match &channel {
            Some(channel) => channel_view(
                &config,
                channel,
                location,
                &q,
                allocations_at(rows, location),
            ),
            None => q.available().max(0),
        };
        if available_now >= query.quantity {
            now.push((available_now, location, location_config));
            continue;
        }
        // Expected purchase-order lines, earliest first, until they cover the rest.
        let mut lines: Vec<(i64, i64)> = incoming
            .iter()
            .filter(|(l, _, line)| l == location && line.outstanding() > 0)
            .map(|(_, _, line)| (line.expected_at_micros, line.outstanding()))
            .collect();
        lines.sort_unstable();
        let mut covered = available_now;
        for (expected_at_micros, outstanding) in lines {
            covered += outstanding;
            if covered >= query.quantity {
                later.push((expected_at_micros, available_now, location, location_config));
                break;
            }
        }
    }
    now.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    later.sort_by(|a, b| a.0.cmp(&b.0).then(a.2.cmp(b.2)));
    let mut options: Vec<PickupOption> = now
        .into_iter()
        .map(|(available_now, location, config)| PickupOption {
            location: location.to_string(),
            name: config.name.clone(),
            available_now,
            ready: "now".to_owned(),
        })
        .collect();
    options.extend(
        later
            .into_iter()
            .map(|(at, available_now, location, config)| PickupOption {
                location: location.to_string(),
                name: config.name.clone(),
                available_now,
                ready: chrono::DateTime::from_timestamp_micros(at)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
            }),
    );
    let capacity = 128 + 128 * options.len();
    answer(
        &PickupOptions {
            sku: sku.to_string(),
            quantity: query.quantity,
            options,
            position: snapshot.positions.clone(),
        },
        &snapshot,
        capacity,
    )
}

/// The consistency parameters every read accepts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// `PARTITION:OFFSET,...`: answer only once these writes (the tokens writes
    /// return) are applied.
    pub wait_for: Option<String>,
    /// How long to wait for `wait_for`, in ms (default 2000; answered 503
    /// `wait-timeout` when it runs out).
    pub wait_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use stockline_domain::LocationConfig;
    use stockline_engine::Positions;

    use super::*;

    /// The hot path's bytes are those of the view it stands for.
    #[test]
    fn availability_head_serializes_as_the_view() {
        let location = |s: &str| LocationId::new(s).expect("location");
        let channel = |s: &str| ChannelId::new(s).expect("channel");
        let mut config = Config::default();
        for (l, kind) in [
            ("s-1", LocationKind::Store),
            ("wh", LocationKind::Warehouse),
        ] {
            config.locations.insert(
                location(l),
                LocationConfig {
                    name: l.to_owned(),
                    kind,
                    groups: BTreeSet::new(),
                    active: true,
                },
            );
        }
        let q = |on_hand, reserved| Quantities {
            on_hand,
            reserved,
            safety_stock: 1,
            incoming: 4,
            ..Quantities::default()
        };
        let rows = SkuRows {
            // "gone" is not configured: no kind; "wh" is oversold.
            stock: vec![
                (location("gone"), q(2, 0)),
                (location("s-1"), q(9, 3)),
                (location("wh"), q(1, 5)),
            ],
            allocations: vec![
                (
                    location("s-1"),
                    channel("app"),
                    Allocation {
                        allocated: 3,
                        in_use: 1,
                    },
                ),
                (
                    location("s-1"),
                    channel("web"),
                    Allocation {
                        allocated: 2,
                        in_use: 0,
                    },
                ),
                (
                    location("wh"),
                    channel("web"),
                    Allocation {
                        allocated: 1,
                        in_use: 1,
                    },
                ),
            ],
        };
        let entry = CachedSku::new(1, 7, rows, Arc::new(config));
        let sku = Sku::new("SKU-1").expect("sku");
        let positions = Positions::from([(0, 12), (1, 7), (2, 0)]);
        let snapshot = PositionSnapshot::new(positions.clone(), positions.clone());
        let head = availability_head(&sku, &entry).expect("head");
        let mut fast = head.to_vec();
        fast.extend_from_slice(&snapshot.json);
        fast.push(b'}');
        let view = SkuAvailability {
            sku: sku.to_string(),
            locations: entry
                .rows
                .stock
                .iter()
                .map(|(l, q)| location_view(&entry.rows, &entry.config, l, q))
                .collect(),
            total_available: entry
                .rows
                .stock
                .iter()
                .map(|(_, q)| q.available().max(0))
                .sum(),
            position: positions,
        };
        let slow = serde_json::to_vec(&view).expect("json");
        assert_eq!(
            String::from_utf8_lossy(&fast),
            String::from_utf8_lossy(&slow)
        );
        assert!(view.locations[1].exclusive_unused.len() == 2);
        assert!(view.locations[2].exclusive_unused.is_empty());
        assert!(view.locations[0].kind.is_none());
        // Built once.
        let again = availability_head(&sku, &entry).expect("head");
        assert_eq!(again.as_ptr(), head.as_ptr());
    }
}
