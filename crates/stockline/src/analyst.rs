//! Analysts' commands: replay to an instant, reconcile, per-channel reports,
//! exports, and queries of any store (a live one, a replay).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};
use stockline_domain::analytics::Metric;
use stockline_domain::{HoldStatus, LocationId, Sku};
use stockline_engine::{Positions, RebuildLimit, RebuildSource, rebuild};
use stockline_kafka::Brokers;
use stockline_store::rows::HistoryEntry;
use stockline_store::{CounterRow, OpenMode, Store, StoreContents, compare, describe_value};

use crate::config::Settings;

/// Where the log is read from.
#[derive(Args, Debug, Clone)]
pub struct LogSource {
    /// Read the log from this store's archive (default: the configured store's
    /// archive). With `--kafka`, read the events topic instead.
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// Read the events topic of the configured brokers from offset 0.
    #[arg(long, conflicts_with = "archive")]
    pub kafka: bool,
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .with_context(|| format!("{text:?} is not an RFC 3339 instant (2026-11-21T15:00:00+01:00)"))
}

fn parse_offsets(text: &str) -> Result<Positions> {
    let mut positions = Positions::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        let (partition, offset) = part
            .split_once(':')
            .with_context(|| format!("{part:?} is not PARTITION:OFFSET"))?;
        positions.insert(partition.trim().parse()?, offset.trim().parse()?);
    }
    Ok(positions)
}

/// Replays the log into `to`, limited; returns the report.
fn replay_into(
    settings: &Settings,
    source: &LogSource,
    to: &Path,
    limit: &RebuildLimit,
    show_progress: bool,
) -> Result<stockline_engine::RebuildReport> {
    let topic = settings.kafka.topics.events.clone();
    let partitions = settings.kafka.partitions;
    let bar = indicatif::ProgressBar::hidden();
    let mut progress = |records: u64| {
        bar.set_position(records);
    };
    if source.kafka {
        let Some(list) = settings.kafka.brokers.clone() else {
            bail!("--kafka needs configured brokers (STOCKLINE_KAFKA__BROKERS)");
        };
        let brokers = Brokers::External(list);
        if show_progress {
            let total: u64 = stockline_kafka::topic_watermarks(&brokers, &settings.kafka, &topic)?
                .iter()
                .map(|w| u64::try_from(w.high_watermark).unwrap_or(0))
                .sum();
            style_bar(&bar, total);
        }
        return Ok(rebuild(
            RebuildSource::Kafka {
                brokers: &brokers,
                settings: &settings.kafka,
            },
            to,
            StoreContents::ReadModels,
            &topic,
            partitions,
            limit,
            &mut progress,
        )?);
    }
    let archive_dir = source
        .archive
        .clone()
        .unwrap_or_else(|| settings.store_dir());
    let archive = Store::open(&archive_dir, OpenMode::ArchiveSource)
        .with_context(|| format!("opening {} (the archive to replay)", archive_dir.display()))?;
    if show_progress {
        let total: u64 = archive.positions(&topic)?.values().sum();
        style_bar(&bar, total);
    }
    let report = rebuild(
        RebuildSource::Archive { store: &archive },
        to,
        StoreContents::ReadModels,
        &topic,
        partitions,
        limit,
        &mut progress,
    )?;
    bar.finish_and_clear();
    Ok(report)
}

fn style_bar(bar: &indicatif::ProgressBar, total: u64) {
    bar.set_length(total);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "replay {bar:40} {pos}/{len} records ({per_sec}, ETA {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
}

/// `stockline replay`.
pub fn replay(
    settings: &Settings,
    source: &LogSource,
    to: &Path,
    until: Option<&str>,
    to_offsets: Option<&str>,
) -> Result<()> {
    let limit = RebuildLimit {
        until_ms: until
            .map(parse_instant)
            .transpose()?
            .map(|t| t.timestamp_millis()),
        offsets: to_offsets.map(parse_offsets).transpose()?,
    };
    let report = replay_into(settings, source, to, &limit, true)?;
    let rate = report.records as f64 / report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "replayed {} records into {} in {:.2}s ({rate:.0} records/s); positions {:?}",
        report.records,
        to.display(),
        report.elapsed.as_secs_f64(),
        report.positions
    );
    println!(
        "query it with: stockline query ... --store {} (read models only: a projector \
         cannot continue it; `stockline rebuild` makes a store that can be continued)",
        to.display()
    );
    Ok(())
}

/// `stockline reconcile`: replays the log up to the live store's positions and
/// compares; then lists stock counts that disagreed with the books.
pub fn reconcile(
    settings: &Settings,
    source: &LogSource,
    store_dir: Option<&Path>,
    limit: usize,
) -> Result<()> {
    let live_dir = store_dir.map_or_else(|| settings.store_dir(), Path::to_path_buf);
    let live = Store::open(&live_dir, OpenMode::ReadOnly)
        .with_context(|| format!("opening the live store {}", live_dir.display()))?;
    let positions = live.positions(&settings.kafka.topics.events)?;
    let scratch = tempfile::tempdir().context("a scratch directory for the replay")?;
    let replay_dir = scratch.path().join("replay");
    let source = LogSource {
        archive: source
            .archive
            .clone()
            .or_else(|| (!source.kafka).then(|| live_dir.clone())),
        kafka: source.kafka,
    };
    let limit_offsets = RebuildLimit {
        offsets: Some(positions.clone()),
        until_ms: None,
    };
    let report = replay_into(settings, &source, &replay_dir, &limit_offsets, false)?;
    let replayed = Store::open(&replay_dir, OpenMode::ReadOnly)?;
    let comparison = compare(&live, &replayed, limit)?;
    let keys: u64 = comparison.keys_compared.iter().map(|(_, n)| n).sum();
    if comparison.difference_count == 0 {
        println!(
            "reconciled: the store equals a replay of the log ({} records, {keys} keys in {} column families)",
            report.records,
            comparison.keys_compared.len()
        );
    } else {
        println!(
            "{} differences between the store and a replay of the log:",
            comparison.difference_count
        );
        for difference in &comparison.differences {
            println!(
                "  {} {}\n    live:     {}\n    replayed: {}",
                difference.cf,
                stockline_store::compare::printable(&difference.key),
                difference.left.as_deref().map_or_else(
                    || "(absent)".to_owned(),
                    |v| describe_value(difference.cf, v)
                ),
                difference.right.as_deref().map_or_else(
                    || "(absent)".to_owned(),
                    |v| describe_value(difference.cf, v)
                ),
            );
        }
    }
    count_discrepancies(&live)?;
    if comparison.difference_count > 0 {
        bail!("the store differs from the log");
    }
    Ok(())
}

/// Stock counts that disagreed with the books, with the changes since the previous
/// count at the same place: what explains the drift.
fn count_discrepancies(store: &Store) -> Result<()> {
    let mut by_place: BTreeMap<(String, String), Vec<HistoryEntry>> = BTreeMap::new();
    store.for_each_raw(stockline_store::cf::HISTORY, |key, value| {
        let entry: HistoryEntry = stockline_wire::decode_row(value)
            .map_err(|e| store.corrupt(stockline_store::cf::HISTORY, key, e))?;
        let sku = stockline_store::keys::split_ids(key)
            .first()
            .map(|s| (*s).to_owned())
            .unwrap_or_default();
        by_place
            .entry((sku, entry.location.to_string()))
            .or_default()
            .push(entry);
        Ok(())
    })?;
    let mut found = 0;
    let mut out = String::new();
    for ((sku, location), entries) in &by_place {
        let mut since_count: Vec<&HistoryEntry> = Vec::new();
        for entry in entries {
            let is_count = entry.cause == "stock_counted";
            if is_count && entry.before.on_hand != entry.after.on_hand {
                found += 1;
                let _ = writeln!(
                    out,
                    "  {location} {sku}: books {} counted {} ({:+}) at {}; since the previous count:",
                    entry.before.on_hand,
                    entry.after.on_hand,
                    entry.after.on_hand - entry.before.on_hand,
                    entry.log_time
                );
                for change in since_count
                    .iter()
                    .filter(|c| c.before.on_hand != c.after.on_hand)
                {
                    let _ = writeln!(
                        out,
                        "      {} {} {:+} on hand ({} -> {}) by {} {}",
                        change.log_time,
                        change.cause,
                        change.after.on_hand - change.before.on_hand,
                        change.before.on_hand,
                        change.after.on_hand,
                        change.channel.as_ref().map_or("-", |c| c.as_str()),
                        change
                            .document
                            .as_ref()
                            .map(|d| d.id.to_string())
                            .unwrap_or_default()
                    );
                }
            }
            if is_count {
                since_count.clear();
            } else {
                since_count.push(entry);
            }
        }
    }
    if found == 0 {
        println!("stock counts: every count agreed with the books");
    } else {
        println!("stock counts that disagreed with the books ({found}):");
        print!("{out}");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Period {
    Day,
    Week,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Grouping {
    Channel,
    Location,
    ChannelLocation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// One row of the performance report.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReportRow {
    pub period: String,
    pub channel: String,
    pub location: String,
    pub units_sold: i64,
    /// Revenue per currency, in minor units.
    pub revenue_minor: BTreeMap<String, i64>,
    pub till_sales: i64,
    pub holds_requested: i64,
    pub holds_accepted: i64,
    pub holds_rejected: i64,
    pub rejected_by_reason: BTreeMap<String, i64>,
    pub holds_expired: i64,
    pub holds_confirmed: i64,
    pub holds_released: i64,
    pub holds_collected: i64,
    pub holds_no_show: i64,
    pub holds_shipped: i64,
    pub pickups_collected: i64,
    pub pickups_no_show: i64,
    pub pickups_expired: i64,
    /// collected / (collected + no-show + expired), for click & collect and
    /// reserve in store.
    pub pickup_rate: Option<f64>,
    /// Mean minutes from ready for pickup to collected.
    pub ready_to_collected_minutes: Option<f64>,
    pub units_returned: i64,
    pub returns_cross_channel: i64,
    pub units_received: i64,
    pub count_discrepancies: i64,
    pub waitlist_joined: i64,
    pub waitlist_notified: i64,
    #[serde(skip)]
    ready_to_collected_ms: i64,
    #[serde(skip)]
    collected_after_ready: i64,
}

impl ReportRow {
    fn add(&mut self, metric: Metric, detail: &str, value: i64) {
        match metric {
            Metric::UnitsSold => self.units_sold += value,
            Metric::RevenueMinor => {
                *self.revenue_minor.entry(detail.to_owned()).or_default() += value
            }
            Metric::TillSales => self.till_sales += value,
            Metric::HoldsRequested => self.holds_requested += value,
            Metric::HoldsAccepted => self.holds_accepted += value,
            Metric::HoldsRejected => {
                self.holds_rejected += value;
                *self
                    .rejected_by_reason
                    .entry(detail.to_owned())
                    .or_default() += value;
            }
            Metric::HoldsExpired => self.holds_expired += value,
            Metric::HoldsConfirmed => self.holds_confirmed += value,
            Metric::HoldsReleased => self.holds_released += value,
            Metric::HoldsReadyForPickup => {}
            Metric::HoldsCollected => self.holds_collected += value,
            Metric::HoldsNoShow => self.holds_no_show += value,
            Metric::HoldsShipped => self.holds_shipped += value,
            Metric::PickupsCollected => self.pickups_collected += value,
            Metric::PickupsNoShow => self.pickups_no_show += value,
            Metric::PickupsExpired => self.pickups_expired += value,
            Metric::PickupReadyToCollectedMs => self.ready_to_collected_ms += value,
            Metric::PickupsCollectedAfterReady => self.collected_after_ready += value,
            Metric::UnitsReturned => self.units_returned += value,
            Metric::ReturnsCrossChannel => self.returns_cross_channel += value,
            Metric::UnitsReceived => self.units_received += value,
            Metric::CountDiscrepancies => self.count_discrepancies += value,
            Metric::WaitlistJoined => self.waitlist_joined += value,
            Metric::WaitlistNotified => self.waitlist_notified += value,
        }
    }

    fn finish(&mut self) {
        let ended = self.pickups_collected + self.pickups_no_show + self.pickups_expired;
        self.pickup_rate = (ended > 0).then(|| self.pickups_collected as f64 / ended as f64);
        self.ready_to_collected_minutes = (self.collected_after_ready > 0).then(|| {
            self.ready_to_collected_ms as f64 / self.collected_after_ready as f64 / 60_000.0
        });
    }

    /// A figure by name, for charts.
    pub fn figure(&self, name: &str) -> Option<f64> {
        Some(match name {
            "units_sold" => self.units_sold as f64,
            "revenue" => self.revenue_minor.values().sum::<i64>() as f64 / 100.0,
            "holds_requested" => self.holds_requested as f64,
            "holds_accepted" => self.holds_accepted as f64,
            "holds_rejected" => self.holds_rejected as f64,
            "holds_expired" => self.holds_expired as f64,
            "holds_collected" => self.holds_collected as f64,
            "holds_no_show" => self.holds_no_show as f64,
            "pickup_rate" => self.pickup_rate.unwrap_or(0.0),
            "units_returned" => self.units_returned as f64,
            "returns_cross_channel" => self.returns_cross_channel as f64,
            _ => return None,
        })
    }
}

/// The figures `--chart` accepts.
pub const CHART_FIGURES: [&str; 11] = [
    "units_sold",
    "revenue",
    "holds_requested",
    "holds_accepted",
    "holds_rejected",
    "holds_expired",
    "holds_collected",
    "holds_no_show",
    "pickup_rate",
    "units_returned",
    "returns_cross_channel",
];

fn day_of(date: NaiveDate) -> i64 {
    date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
        .num_days()
}

fn date_of(day: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
        + chrono::Days::new(u64::try_from(day).unwrap_or(0))
}

/// Builds the report rows from daily counters.
pub fn report_rows(counters: &[CounterRow], period: Period, grouping: Grouping) -> Vec<ReportRow> {
    let mut rows: BTreeMap<(String, String, String), ReportRow> = BTreeMap::new();
    for counter in counters {
        let Some(metric) = Metric::from_name(&counter.metric) else {
            continue;
        };
        let period_start = match period {
            Period::Day => counter.day,
            // ISO weeks start on Monday; 1970-01-01 was a Thursday.
            Period::Week => counter.day - (counter.day + 3).rem_euclid(7),
        };
        let period_name = match period {
            Period::Day => date_of(period_start).to_string(),
            Period::Week => format!("week of {}", date_of(period_start)),
        };
        let (channel, location) = match grouping {
            Grouping::Channel => (counter.channel.clone(), String::new()),
            Grouping::Location => (String::new(), counter.location.clone()),
            Grouping::ChannelLocation => (counter.channel.clone(), counter.location.clone()),
        };
        let row = rows
            .entry((period_name.clone(), channel.clone(), location.clone()))
            .or_insert_with(|| ReportRow {
                period: period_name,
                channel,
                location,
                ..ReportRow::default()
            });
        row.add(metric, &counter.detail, counter.value);
    }
    rows.into_values()
        .map(|mut row| {
            row.finish();
            row
        })
        .collect()
}

fn money(revenue: &BTreeMap<String, i64>) -> String {
    if revenue.is_empty() {
        return "-".to_owned();
    }
    revenue
        .iter()
        .map(|(currency, minor)| format!("{currency} {}.{:02}", minor / 100, minor.rem_euclid(100)))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

fn minutes(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

const COLUMNS: [&str; 20] = [
    "period",
    "channel",
    "location",
    "units_sold",
    "revenue",
    "holds_requested",
    "holds_accepted",
    "holds_rejected",
    "rejected_by_reason",
    "holds_expired",
    "holds_confirmed",
    "holds_collected",
    "holds_no_show",
    "holds_shipped",
    "pickup_rate",
    "ready_to_collected_min",
    "units_returned",
    "returns_cross_channel",
    "waitlist_joined",
    "waitlist_notified",
];

fn row_cells(row: &ReportRow) -> Vec<String> {
    let reasons = row
        .rejected_by_reason
        .iter()
        .map(|(reason, n)| format!("{reason}:{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        row.period.clone(),
        if row.channel.is_empty() {
            "-".into()
        } else {
            row.channel.clone()
        },
        if row.location.is_empty() {
            "-".into()
        } else {
            row.location.clone()
        },
        row.units_sold.to_string(),
        money(&row.revenue_minor),
        row.holds_requested.to_string(),
        row.holds_accepted.to_string(),
        row.holds_rejected.to_string(),
        if reasons.is_empty() {
            "-".into()
        } else {
            reasons
        },
        row.holds_expired.to_string(),
        row.holds_confirmed.to_string(),
        row.holds_collected.to_string(),
        row.holds_no_show.to_string(),
        row.holds_shipped.to_string(),
        percent(row.pickup_rate),
        minutes(row.ready_to_collected_minutes),
        row.units_returned.to_string(),
        row.returns_cross_channel.to_string(),
        row.waitlist_joined.to_string(),
        row.waitlist_notified.to_string(),
    ]
}

/// Renders the report rows.
pub fn render_report(rows: &[ReportRow], format: Format) -> Result<String> {
    let mut out = String::new();
    match format {
        Format::Json => out = serde_json::to_string_pretty(rows)?,
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(COLUMNS)?;
            for row in rows {
                writer.write_record(row_cells(row))?;
            }
            out = String::from_utf8(writer.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
        }
        Format::Table => {
            let cells: Vec<Vec<String>> = rows.iter().map(row_cells).collect();
            let widths: Vec<usize> = (0..COLUMNS.len())
                .map(|i| {
                    cells
                        .iter()
                        .map(|c| c[i].len())
                        .chain([COLUMNS[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |values: &[String]| {
                values
                    .iter()
                    .zip(&widths)
                    .map(|(v, w)| format!("{v:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_owned()
            };
            let header: Vec<String> = COLUMNS.iter().map(|c| (*c).to_owned()).collect();
            let _ = writeln!(out, "{}", line(&header));
            for row in &cells {
                let _ = writeln!(out, "{}", line(row));
            }
        }
    }
    Ok(out)
}

/// An SVG line chart of one figure over the periods, one line per group.
pub fn render_chart(rows: &[ReportRow], figure: &str) -> Result<String> {
    if !CHART_FIGURES.contains(&figure) {
        bail!(
            "unknown figure {figure:?}; one of {}",
            CHART_FIGURES.join(", ")
        );
    }
    let periods: Vec<String> = {
        let mut p: Vec<String> = rows.iter().map(|r| r.period.clone()).collect();
        p.sort();
        p.dedup();
        p
    };
    let mut series: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for row in rows {
        let name = [row.channel.as_str(), row.location.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" @ ");
        let value = row.figure(figure).unwrap_or(0.0);
        *series
            .entry(if name.is_empty() { "all".into() } else { name })
            .or_default()
            .entry(row.period.clone())
            .or_default() += value;
    }
    let max = series
        .values()
        .flat_map(|s| s.values())
        .fold(0.0_f64, |a, b| a.max(*b))
        .max(1e-9);
    let (width, height, left, bottom, top, right) = (900.0, 420.0, 70.0, 60.0, 40.0, 200.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let x = |i: usize| {
        if periods.len() <= 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (periods.len() - 1) as f64
        }
    };
    let y = |v: f64| top + plot_h * (1.0 - v / max);
    let palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{left}" y="24" font-size="16">{figure} per {}</text>"#,
        if periods.first().is_some_and(|p| p.starts_with("week")) {
            "week"
        } else {
            "day"
        }
    );
    let _ = writeln!(
        svg,
        r#"<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{left}" y1="{top}" x2="{left}" y2="{}" stroke="black"/>"#,
        top + plot_h,
        left + plot_w,
        top + plot_h,
        top + plot_h
    );
    for step in 0..=4 {
        let value = max * f64::from(step) / 4.0;
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{value:.1}</text><line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="#ddd"/>"##,
            left - 6.0,
            y(value) + 4.0,
            y(value),
            left + plot_w,
            y(value)
        );
    }
    for (i, period) in periods.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x(i),
            top + plot_h + 18.0,
            period.trim_start_matches("week of ")
        );
    }
    for (index, (name, values)) in series.iter().enumerate() {
        let color = palette[index % palette.len()];
        let points: Vec<String> = periods
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{:.1},{:.1}",
                    x(i),
                    y(values.get(p).copied().unwrap_or(0.0))
                )
            })
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let legend_y = top + 16.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{}" y="{}" width="12" height="12" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            left + plot_w + 16.0,
            legend_y,
            left + plot_w + 34.0,
            legend_y + 10.0,
            xml_escape(name)
        );
    }
    svg.push_str("</svg>\n");
    Ok(svg)
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `stockline report`.
#[allow(clippy::too_many_arguments)]
pub fn report(
    settings: &Settings,
    store_dir: Option<&Path>,
    from: &str,
    to: &str,
    period: Period,
    grouping: Grouping,
    format: Format,
    chart: Option<(&str, &Path)>,
) -> Result<()> {
    let from = NaiveDate::parse_from_str(from, "%Y-%m-%d")
        .with_context(|| format!("--from {from:?} is not YYYY-MM-DD"))?;
    let to = NaiveDate::parse_from_str(to, "%Y-%m-%d")
        .with_context(|| format!("--to {to:?} is not YYYY-MM-DD"))?;
    let dir = store_dir.map_or_else(|| settings.store_dir(), Path::to_path_buf);
    let store = Store::open(&dir, OpenMode::ReadOnly)
        .with_context(|| format!("opening {}", dir.display()))?;
    let counters = store.channel_stats(day_of(from), day_of(to))?;
    let rows = report_rows(&counters, period, grouping);
    print!("{}", render_report(&rows, format)?);
    if let Some((figure, path)) = chart {
        std::fs::write(path, render_chart(&rows, figure)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("chart of {figure} written to {}", path.display());
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

/// `stockline export`: the event log as JSON lines or CSV, one column per envelope
/// field, from a store's archive.
pub fn export(
    settings: &Settings,
    archive_dir: Option<&Path>,
    format: ExportFormat,
    from: Option<&str>,
    to: Option<&str>,
    out: Option<&Path>,
) -> Result<()> {
    let dir = archive_dir.map_or_else(|| settings.store_dir(), Path::to_path_buf);
    let store = Store::open(&dir, OpenMode::ReadOnly)
        .with_context(|| format!("opening {}", dir.display()))?;
    let from_ms = from
        .map(parse_instant)
        .transpose()?
        .map(|t| t.timestamp_millis());
    let to_ms = to
        .map(parse_instant)
        .transpose()?
        .map(|t| t.timestamp_millis());
    let sink: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let (mut csv_writer, mut sink) = match format {
        ExportFormat::Csv => (Some(csv::Writer::from_writer(sink)), None),
        ExportFormat::Jsonl => (None, Some(sink)),
    };
    if let Some(writer) = csv_writer.as_mut() {
        writer.write_record([
            "partition",
            "offset",
            "log_time",
            "event_id",
            "schema_version",
            "occurred_at",
            "channel",
            "location",
            "sku",
            "document_kind",
            "document_id",
            "reason",
            "kind",
            "payload",
        ])?;
    }
    let (mut written, mut skipped) = (0u64, 0u64);
    let started = Instant::now();
    for partition in 0..settings.kafka.partitions {
        stockline_engine::archive::for_each_archived(&store, partition, 0, |record| {
            if from_ms.is_some_and(|f| record.timestamp_ms < f)
                || to_ms.is_some_and(|t| record.timestamp_ms >= t)
            {
                return Ok(true);
            }
            let Some(event) = record
                .payload
                .as_deref()
                .and_then(|p| stockline_wire::decode_event(p).ok())
            else {
                skipped += 1;
                return Ok(true);
            };
            let log_time = stockline_domain::LogTime::from_millis(record.timestamp_ms).to_string();
            let value = serde_json::to_value(&event)
                .map_err(|e| stockline_engine::EngineError::Operator(e.to_string()))?;
            let kind = event.payload.kind().name();
            let payload = value
                .get("payload")
                .and_then(|p| p.get(kind))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            let text = |field: &str| match value.get(field) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            let document_kind = value
                .pointer("/document/kind")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned();
            let document_id = value
                .pointer("/document/id")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned();
            let row = [
                partition.to_string(),
                record.offset.to_string(),
                log_time,
                text("event_id"),
                text("schema_version"),
                text("occurred_at"),
                text("channel"),
                text("location"),
                text("sku"),
                document_kind,
                document_id,
                text("reason"),
                kind.to_owned(),
                payload.to_string(),
            ];
            let io = |e: std::io::Error| stockline_engine::EngineError::Operator(e.to_string());
            match csv_writer.as_mut() {
                Some(writer) => writer
                    .write_record(&row)
                    .map_err(|e| stockline_engine::EngineError::Operator(e.to_string()))?,
                None => {
                    let Some(sink) = sink.as_mut() else {
                        unreachable!("JSON lines have a sink")
                    };
                    let line = serde_json::json!({
                        "partition": partition,
                        "offset": record.offset,
                        "log_time": row[2],
                        "event_id": row[3],
                        "schema_version": event.schema_version,
                        "occurred_at": row[5],
                        "channel": row[6],
                        "location": value.get("location"),
                        "sku": value.get("sku"),
                        "document_kind": value.pointer("/document/kind"),
                        "document_id": value.pointer("/document/id"),
                        "reason": value.get("reason"),
                        "kind": kind,
                        "payload": payload,
                    });
                    writeln!(sink, "{line}").map_err(io)?;
                }
            }
            written += 1;
            Ok(true)
        })?;
    }
    if let Some(writer) = csv_writer.as_mut() {
        writer.flush()?;
    }
    if let Some(sink) = sink.as_mut() {
        sink.flush()?;
    }
    eprintln!(
        "exported {written} events ({skipped} undecodable records skipped) in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum QueryAction {
    /// Every location's quantities of a SKU.
    Availability { sku: String },
    /// Every SKU's quantities at a location.
    Stock { location: String },
    /// Holds open (held or ready) at a location.
    OpenHolds { location: String },
    /// A hold by id.
    Hold { hold_id: String },
}

/// `stockline query`: the read models of any store (live or replayed).
pub fn query(settings: &Settings, store_dir: Option<&Path>, action: QueryAction) -> Result<()> {
    let dir = store_dir.map_or_else(|| settings.store_dir(), Path::to_path_buf);
    let store = Store::open(&dir, OpenMode::ReadOnly)
        .with_context(|| format!("opening {}", dir.display()))?;
    let quantities_line = |name: &str, q: &stockline_domain::Quantities| {
        format!(
            "{name:<16} on_hand {:>5}  reserved {:>4}  committed {:>4}  unavailable {:>3}  safety {:>3}  incoming {:>4}  in_transit {:>4}  available {:>5}",
            q.on_hand,
            q.reserved,
            q.committed,
            q.unavailable(),
            q.safety_stock,
            q.incoming,
            q.in_transit,
            q.available()
        )
    };
    match action {
        QueryAction::Availability { sku } => {
            let sku = Sku::new(&sku).map_err(anyhow::Error::msg)?;
            for (location, q) in store.stock_of(&sku)? {
                println!("{}", quantities_line(location.as_str(), &q));
            }
        }
        QueryAction::Stock { location } => {
            let location = LocationId::new(&location).map_err(anyhow::Error::msg)?;
            for (sku, q) in store.stock_at(&location)? {
                println!("{}", quantities_line(sku.as_str(), &q));
            }
        }
        QueryAction::OpenHolds { location } => {
            let location = LocationId::new(&location).map_err(anyhow::Error::msg)?;
            let holds = store.open_holds_at(&location)?;
            for hold in &holds {
                println!(
                    "{:<28} {:<12} qty {}  {:<17} {}  channel {:<11} order {}  customer {}  expires {}",
                    hold.hold_id.as_str(),
                    hold.sku.as_str(),
                    hold.quantity,
                    format!("{:?}", hold.kind),
                    if hold.status == HoldStatus::ReadyForPickup {
                        "ready"
                    } else if hold.confirmed {
                        "paid "
                    } else {
                        "held "
                    },
                    hold.channel.as_str(),
                    hold.order_id.as_str(),
                    hold.customer_ref.as_str(),
                    hold.expires_at
                );
            }
            println!("{} open holds at {location}", holds.len());
        }
        QueryAction::Hold { hold_id } => {
            let hold_id = stockline_domain::HoldId::new(&hold_id).map_err(anyhow::Error::msg)?;
            let holds = store.holds_by_id(&hold_id)?;
            if holds.is_empty() {
                bail!("no hold {hold_id}");
            }
            for hold in holds {
                println!("{hold:#?}");
            }
        }
    }
    Ok(())
}
