//! Availability: per SKU, per location, per channel, in batches, and where a
//! customer can collect soonest.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use stockline_domain::{
    Allocation, ChannelId, Config, GroupId, LocationId, LocationKind, Quantities, Sku, channel_view,
};
use utoipa::IntoParams;

use crate::auth::Caller;
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

/// A SKU's rows and allocations, or 404 when the SKU has never been seen.
struct SkuRows {
    stock: Vec<(LocationId, Quantities)>,
    allocations: Vec<(LocationId, ChannelId, Allocation)>,
}

impl SkuRows {
    fn load(state: &AppState, sku: &Sku) -> Result<SkuRows, ApiError> {
        let stock = state.store().stock_of(sku)?;
        if stock.is_empty() {
            return Err(ApiError::not_found(
                "unknown-sku",
                Some("sku"),
                format!("no stock has ever been recorded for SKU {sku}"),
            ));
        }
        let allocations = state.store().allocations_of(sku)?;
        Ok(SkuRows { stock, allocations })
    }

    fn allocations_at<'a>(
        &'a self,
        location: &'a LocationId,
    ) -> impl Iterator<Item = (&'a ChannelId, &'a Allocation)> + 'a {
        self.allocations
            .iter()
            .filter(move |(l, _, _)| l == location)
            .map(|(_, c, a)| (c, a))
    }

    fn location_view(
        &self,
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
            exclusive_unused: self
                .allocations_at(location)
                .filter(|(_, a)| a.unused() > 0)
                .map(|(c, a)| (c.to_string(), a.unused()))
                .collect(),
        }
    }
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
) -> Result<Json<SkuAvailability>, ApiError> {
    caller.may_read_availability()?;
    wait.wait(&state).await?;
    let sku = parse_sku(&sku)?;
    let rows = SkuRows::load(&state, &sku)?;
    let config = state.config_for(&sku)?;
    let locations: Vec<LocationAvailability> = rows
        .stock
        .iter()
        .map(|(location, q)| rows.location_view(&config, location, q))
        .collect();
    let total_available = rows.stock.iter().map(|(_, q)| q.available().max(0)).sum();
    Ok(Json(SkuAvailability {
        sku: sku.to_string(),
        locations,
        total_available,
        position: state.positions(),
    }))
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
) -> Result<Json<SkuAvailability>, ApiError> {
    caller.may_read_availability()?;
    wait.wait(&state).await?;
    let sku = parse_sku(&sku)?;
    let location = parse_location("location", &location)?;
    let config = state.config_for(&sku)?;
    require_location(&config, &location)?;
    let rows = SkuRows::load(&state, &sku)?;
    let q = rows
        .stock
        .iter()
        .find(|(l, _)| l == &location)
        .map(|(_, q)| *q)
        .unwrap_or_default();
    Ok(Json(SkuAvailability {
        sku: sku.to_string(),
        total_available: q.available().max(0),
        locations: vec![rows.location_view(&config, &location, &q)],
        position: state.positions(),
    }))
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
) -> Result<Json<ChannelAvailability>, ApiError> {
    caller.may_read_availability()?;
    wait.wait(&state).await?;
    let channel = parse_channel("channel", &channel)?;
    let sku = parse_sku(&sku)?;
    let config = state.config_for(&sku)?;
    let Some(channel_config) = config.channels.get(&channel) else {
        return Err(ApiError::not_found(
            "unknown-channel",
            Some("channel"),
            format!("channel {channel} is not configured"),
        ));
    };
    let rows = SkuRows::load(&state, &sku)?;
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
                rows.allocations_at(location),
            ),
            available: q.available(),
        })
        .collect();
    Ok(Json(ChannelAvailability {
        sku: sku.to_string(),
        channel: channel.to_string(),
        buffer: channel_config.buffer,
        total_promisable: locations.iter().map(|l| l.promisable).sum(),
        locations,
        position: state.positions(),
    }))
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
) -> Result<Json<BatchAvailability>, ApiError> {
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
    let mut items = Vec::new();
    for sku in &request.skus {
        let sku = parse_sku(sku)?;
        let stock = state.store().stock_of(&sku)?;
        let allocations = state.store().allocations_of(&sku)?;
        let config = state.config_for(&sku)?;
        for (location, q) in &stock {
            if locations.as_ref().is_some_and(|ls| !ls.contains(location)) {
                continue;
            }
            let promisable = channel.as_ref().map(|channel| {
                let at = allocations
                    .iter()
                    .filter(|(l, _, _)| l == location)
                    .map(|(_, c, a)| (c, a));
                channel_view(&config, channel, location, q, at)
            });
            items.push(BatchAvailabilityItem {
                sku: sku.to_string(),
                location: location.to_string(),
                quantities: QuantitiesView::from(q),
                promisable,
            });
        }
    }
    Ok(Json(BatchAvailability {
        items,
        position: state.positions(),
    }))
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
) -> Result<Json<PickupOptions>, ApiError> {
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
    let config = state.config_for(&sku)?;
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
    let stock: BTreeMap<LocationId, Quantities> =
        state.store().stock_of(&sku)?.into_iter().collect();
    let allocations = state.store().allocations_of(&sku)?;
    let incoming = state.store().incoming_of(&sku)?;
    let mut now = Vec::new();
    let mut later = Vec::new();
    for (location, location_config) in stores {
        let q = stock.get(location).copied().unwrap_or_default();
        let available_now = match &channel {
            Some(channel) => {
                let at = allocations
                    .iter()
                    .filter(|(l, _, _)| l == location)
                    .map(|(_, c, a)| (c, a));
                channel_view(&config, channel, location, &q, at)
            }
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
    Ok(Json(PickupOptions {
        sku: sku.to_string(),
        quantity: query.quantity,
        options,
        position: state.positions(),
    }))
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
