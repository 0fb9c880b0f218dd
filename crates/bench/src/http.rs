//! `stockline-bench http` (issue 4): the service on loopback, in process with the
//! embedded broker and the projector (as `stockline serve` assembles them: ticks
//! and outbox publisher included), driven by a Rust load generator on its own
//! thread (hyper HTTP/1 client connections, keep-alive).
//!
//! - throughput: a fixed number of connections, each sending its next request when
//!   the previous one is answered, for `/health` (trivial) and for
//!   `GET /v1/skus/{sku}/availability` over random SKUs, one after the other in
//!   the same run; requests/s, latency percentiles, and the ratio;
//! - holds: `POST /v1/holds` on an open-loop schedule (constant rate); latency is
//!   measured from each request's scheduled send time, so a stall delays the
//!   measured requests instead of hiding them (no coordinated omission).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Args;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use stockline_domain::{ChannelId, Event, LocationId, Payload, ReceiptKind, SCHEMA_VERSION, Sku};
use stockline_engine::outbox::run_outbox_publisher;
use stockline_engine::ticks::run_tick_publisher;
use stockline_engine::{
    EventPublisher, Positions, ProjectorHandle, ProjectorSettings, spawn_projector,
};
use stockline_kafka::{
    Brokers, EmbeddedBroker, KafkaSettings, RecordProducer, TopicSpec, ensure_topics,
    topic_watermarks,
};
use stockline_service::{AppState, HttpSettings, Role, ServiceParts, TokenEntry};
use stockline_simulator::{SimConfig, Simulator, WAREHOUSE, sku_name};
use stockline_store::{OpenMode, Store};
use tokio::sync::{Mutex, Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// SKUs seeded (the simulator's world, then extra stock at the warehouse).
    #[arg(long, default_value_t = 10_000)]
    pub skus: usize,
    /// Units received at the warehouse per SKU (enough for every hold).
    #[arg(long, default_value_t = 1_000)]
    pub stock_per_sku: i64,
    /// Connections of the throughput runs.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Measured seconds of each throughput run.
    #[arg(long, default_value_t = 10)]
    pub duration_s: u64,
    /// Unmeasured seconds before each run.
    #[arg(long, default_value_t = 2)]
    pub warmup_s: u64,
    /// Throughput runs (health then availability each time).
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Availability requests/s of an open-loop latency run (0: skip it).
    #[arg(long, default_value_t = 5_000)]
    pub availability_rate: u64,
    /// Hold requests per second (open loop).
    #[arg(long, default_value_t = 5_000)]
    pub hold_rate: u64,
    /// Seconds of the hold run (after `warmup_s` at the same rate, unmeasured).
    #[arg(long, default_value_t = 20)]
    pub hold_duration_s: u64,
    /// Client connections of the open-loop runs (requests queue in the client
    /// when all are busy; that wait counts in the latency).
    #[arg(long, default_value_t = 1_024)]
    pub open_loop_connections: usize,
    /// The projector's `batch_max_wait_ms` (default: the projector's default).
    #[arg(long)]
    pub batch_max_wait_ms: Option<u64>,
    /// The projector's `batch_max_records` (default: the projector's default).
    #[arg(long)]
    pub batch_max_records: Option<usize>,
    /// Skip throughput runs (health, availability).
    #[arg(long)]
    pub no_throughput: bool,
    /// Skip the hold run.
    #[arg(long)]
    pub no_holds: bool,
    /// librdkafka property for every client (repeatable), e.g.
    /// `--kafka-property fetch.wait.max.ms=100`.
    #[arg(long = "kafka-property", value_parser = crate::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
}

/// The running stack: embedded broker, projector, ticks, outbox, HTTP.
struct Stack {
    address: SocketAddr,
    token: String,
    projector: ProjectorHandle,
    stop_http: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
    stop_tasks: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
    publisher: EventPublisher,
    _dir: tempfile::TempDir,
    /// Last: dropped after every client of it.
    _brokers: Brokers,
}

async fn start_stack(args: &HttpArgs) -> Result<Stack> {
    let metrics = stockline_service::prometheus();
    let brokers = Brokers::Embedded(EmbeddedBroker::start()?);
    let settings = KafkaSettings {
        properties: args.kafka_properties.iter().cloned().collect(),
        ..KafkaSettings::default()
    };
    ensure_topics(&brokers, &settings, &TopicSpec::stockline_topics(&settings)).await?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), OpenMode::ReadWrite)?;
    let producer = RecordProducer::new(&brokers, &settings)?;
    let defaults = ProjectorSettings::default();
    let projector_settings = ProjectorSettings {
        batch_max_records: args.batch_max_records.unwrap_or(defaults.batch_max_records),
        batch_max_wait_ms: args.batch_max_wait_ms.unwrap_or(defaults.batch_max_wait_ms),
        ..defaults
    };
    println!(
        "stack: embedded broker, projector (batch_max_records={}, batch_max_wait_ms={}), ticks every {} ms, outbox publisher, HTTP on 127.0.0.1",
        projector_settings.batch_max_records,
        projector_settings.batch_max_wait_ms,
        stockline_engine::ticks::DEFAULT_TICK_INTERVAL_MS
    );
    let projector = spawn_projector(&brokers, &settings, &projector_settings, store.clone())?;
    let topic = settings.topics.events.clone();
    let publisher = EventPublisher::new(producer.clone(), &topic, settings.partitions);
    let stop_tasks = Arc::new(Notify::new());
    let tasks = vec![
        tokio::spawn(run_tick_publisher(
            publisher.clone(),
            stockline_engine::ticks::DEFAULT_TICK_INTERVAL_MS,
            Arc::clone(&stop_tasks),
        )),
        tokio::spawn(run_outbox_publisher(
            store.clone(),
            producer,
            settings.topics.clone(),
            settings.partitions,
            projector.flushed(),
            Arc::clone(&stop_tasks),
        )),
    ];
    let token = stockline_service::new_token();
    let http = HttpSettings {
        listen: "127.0.0.1:0".to_owned(),
        tokens: vec![TokenEntry {
            name: "bench".to_owned(),
            sha256: stockline_service::token_digest(&token),
            role: Role::Admin,
        }],
        ..HttpSettings::default()
    };
    let state = AppState::new(ServiceParts {
        store: store.clone(),
        publisher: publisher.clone(),
        status: projector.status(),
        settings: http,
        embedded_broker: true,
        metrics,
    })
    .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop_http, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(stockline_service::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let stack = Stack {
        address,
        token,
        projector,
        stop_http,
        server,
        stop_tasks,
        tasks,
        publisher,
        _dir: dir,
        _brokers: brokers.clone(),
    };
    seed(&stack, &brokers, &settings, args).await?;
    Ok(stack)
}

/// The simulator's world (locations, channels, opening stock) for `skus` SKUs, then
/// `stock_per_sku` more units of each at the warehouse; waits until projected.
async fn seed(
    stack: &Stack,
    brokers: &Brokers,
    settings: &KafkaSettings,
    args: &HttpArgs,
) -> Result<()> {
    let started = Instant::now();
    let mut config = SimConfig::new(1, chrono::Utc::now());
    config.skus = args.skus;
    let mut simulator = Simulator::new(config);
    let mut events = Vec::new();
    while simulator.in_setup() {
        events.push(simulator.next_event());
    }
    let namespace = uuid::Uuid::from_u128(0xb3e1_0c4d_5a6f_4b7e_8d9c_0a1b_2c3d_4e5f);
    let channel = ChannelId::new("wms").map_err(|e| anyhow::anyhow!("{e}"))?;
    let warehouse = LocationId::new(WAREHOUSE).map_err(|e| anyhow::anyhow!("{e}"))?;
    for index in 0..args.skus {
        events.push(Event {
            event_id: uuid::Uuid::new_v5(&namespace, format!("stock:{index}").as_bytes()),
            schema_version: SCHEMA_VERSION,
            occurred_at: chrono::Utc::now(),
            channel: channel.clone(),
            location: Some(warehouse.clone()),
            sku: Some(Sku::new(sku_name(index)).map_err(|e| anyhow::anyhow!("{e}"))?),
            document: None,
            reason: None,
            payload: Payload::StockReceived {
                quantity: args.stock_per_sku,
                kind: ReceiptKind::Restock,
            },
        });
    }
    for chunk in events.chunks(2_000) {
        for result in stack.publisher.publish_all(chunk).await {
            result.context("seeding")?;
        }
    }
    let ends = {
        let brokers = brokers.clone();
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || {
            topic_watermarks(&brokers, &settings, &settings.topics.events)
        })
        .await??
    };
    let target: Positions = ends
        .iter()
        .filter_map(|w| {
            Some((
                u32::try_from(w.partition).ok()?,
                u64::try_from(w.high_watermark).ok()?,
            ))
        })
        .collect();
    if !stack
        .projector
        .wait_for(&target, Duration::from_secs(600))
        .await
    {
        bail!("the projector did not apply the seed within 10 minutes");
    }
    println!(
        "seeded {} events ({} SKUs, 7 locations) and projected them in {:.1} s",
        events.len(),
        args.skus,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

impl Stack {
    async fn stop(self) -> Result<()> {
        self.stop_tasks.notify_waiters();
        self.stop_tasks.notify_one();
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        let _ = self.stop_http.send(());
        self.server.await??;
        tokio::task::spawn_blocking(move || self.projector.stop()).await??;
        Ok(())
    }
}

type Connection = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(address: SocketAddr) -> Result<Connection> {
    let stream = tokio::net::TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// What to send: request `i`'s method, path and body.
#[derive(Clone)]
struct Target {
    name: &'static str,
    auth: Arc<str>,
    build: Arc<dyn Fn(u64) -> (hyper::Method, String, Option<Bytes>) + Send + Sync>,
}

async fn send(connection: &mut Connection, target: &Target, i: u64) -> Result<u16> {
    let (method, path, body) = (target.build)(i);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, "127.0.0.1")
        .header(AUTHORIZATION, &*target.auth);
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    let request = builder.body(Full::new(body.unwrap_or_default()))?;
    connection.ready().await?;
    let response = connection.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).unwrap_or_else(|_| unreachable!("valid bounds"))
}

#[derive(Debug, Clone)]
struct LoadFigures {
    name: String,
    requests: u64,
    errors: u64,
    statuses: BTreeMap<u16, u64>,
    latency_us: Histogram<u64>,
    seconds: f64,
    /// Open loop: the rate asked for.
    target_rate: Option<u64>,
    /// CPU seconds by thread of the whole process (server, projector, broker,
    /// load generator) during the run.
    cpu: Vec<(String, f64)>,
}

impl LoadFigures {
    fn new(name: &str) -> LoadFigures {
        LoadFigures {
            name: name.to_owned(),
            requests: 0,
            errors: 0,
            statuses: BTreeMap::new(),
            latency_us: histogram(),
            seconds: 0.0,
            target_rate: None,
            cpu: Vec::new(),
        }
    }

    fn record(&mut self, result: &Result<u16>, latency: Duration) {
        self.requests += 1;
        match result {
            Ok(status) => *self.statuses.entry(*status).or_insert(0) += 1,
            Err(_) => self.errors += 1,
        }
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self.latency_us.record(us.min(100_000_000));
    }

    fn merge(&mut self, other: &LoadFigures) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (status, count) in &other.statuses {
            *self.statuses.entry(*status).or_insert(0) += count;
        }
        let _ = self.latency_us.add(&other.latency_us);
    }

    fn per_s(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn row(&self) -> String {
        format!(
            "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            self.name,
            self.target_rate
                .map_or_else(|| "closed loop".to_owned(), |r| format!("{r}/s open loop")),
            self.per_s(),
            self.ms(0.5),
            self.ms(0.99),
            self.ms(0.999),
            self.latency_us.max() as f64 / 1000.0,
            self.status_summary()
        )
    }

    fn cpu_summary(&self) -> String {
        let total: f64 = self.cpu.iter().map(|(_, t)| t).sum();
        format!(
            "  CPU {:.1} s in {:.1} s: {}",
            total,
            self.seconds,
            self.cpu
                .iter()
                .take(8)
                .map(|(name, t)| format!("{name} {t:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn status_summary(&self) -> String {
        let mut parts: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        if self.errors > 0 {
            parts.push(format!("errors: {}", self.errors));
        }
        parts.join(", ")
    }
}

/// `concurrency` connections, each sending its next request when the last one is
/// answered, for `warmup` (not measured) then `duration`.
async fn closed_loop(
    address: SocketAddr,
    target: Target,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<LoadFigures> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut figures = LoadFigures::new(target.name);
            let mut connection = connect(address).await?;
            let mut i = worker as u64;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let result = send(&mut connection, &target, i).await;
                if result.is_err() {
                    connection = connect(address).await?;
                }
                if sent >= measure_from {
                    figures.record(&result, sent.elapsed());
                }
                i += concurrency as u64;
            }
            anyhow::Ok(figures)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = crate::procfs::thread_cpu();
    tokio::time::sleep_until(end.into()).await;
    let cpu = crate::procfs::cpu_delta(&cpu_before, &crate::procfs::thread_cpu());
    let mut total = LoadFigures::new(target.name);
    for worker in workers {
        total.merge(&worker.await??);
    }
    total.seconds = duration.as_secs_f64();
    total.cpu = cpu;
    Ok(total)
}

/// Requests at a constant `rate` for `warmup` (not measured) then `duration`,
/// spread over `connections` connections; each latency runs from the request's
/// scheduled send time to its answer.
async fn open_loop(
    address: SocketAddr,
    target: Target,
    rate: u64,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<LoadFigures> {
    let (jobs, queue) = mpsc::unbounded_channel::<(u64, Instant)>();
    let queue = Arc::new(Mutex::new(queue));
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + warmup;
    let mut workers = Vec::new();
    for _ in 0..connections {
        let target = target.clone();
        let queue = Arc::clone(&queue);
        let mut connection = connect(address).await?;
        workers.push(tokio::spawn(async move {
            let mut figures = LoadFigures::new(target.name);
            loop {
                let job = queue.lock().await.recv().await;
                let Some((i, scheduled)) = job else { break };
                let result = send(&mut connection, &target, i).await;
                if result.is_err() {
                    connection = connect(address).await?;
                }
                if scheduled >= measure_from {
                    figures.record(&result, scheduled.elapsed());
                }
            }
            anyhow::Ok(figures)
        }));
    }
    let total_requests = rate * (warmup + duration).as_secs();
    // The schedule runs on a thread of its own with `std::thread::sleep`
    // (tens of µs late at most), not on tokio's timer, whose 1 ms ticks would add
    // up to a millisecond to every measured latency.
    let scheduler = std::thread::Builder::new()
        .name("load-scheduler".to_owned())
        .spawn(move || {
            let mut cpu_before = None;
            for i in 0..total_requests {
                // i/rate seconds after the start, in integer nanoseconds.
                let offset_ns = u128::from(i) * 1_000_000_000 / u128::from(rate.max(1));
                let scheduled =
                    start + Duration::from_nanos(u64::try_from(offset_ns).unwrap_or(u64::MAX));
                let now = Instant::now();
                if scheduled > now {
                    std::thread::sleep(scheduled - now);
                }
                if cpu_before.is_none() && scheduled >= measure_from {
                    cpu_before = Some(crate::procfs::thread_cpu());
                }
                if jobs.send((i, scheduled)).is_err() {
                    break;
                }
            }
            drop(jobs);
            crate::procfs::cpu_delta(
                &cpu_before.unwrap_or_default(),
                &crate::procfs::thread_cpu(),
            )
        })?;
    let cpu = tokio::task::spawn_blocking(move || scheduler.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the scheduler thread panicked"))?;
    let mut total = LoadFigures::new(target.name);
    for worker in workers {
        total.merge(&worker.await??);
    }
    total.cpu = cpu;
    // Requests were scheduled over `duration`; completions may trail it.
    total.seconds = duration.as_secs_f64();
    total.target_rate = Some(rate);
    Ok(total)
}

/// SplitMix64: the load generator's SKU choices.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn targets(token: &str, skus: usize) -> (Target, Target, Target) {
    let auth: Arc<str> = Arc::from(format!("Bearer {token}"));
    let skus = skus.max(1) as u64;
    let health = Target {
        name: "GET /health",
        auth: Arc::clone(&auth),
        build: Arc::new(|_| (hyper::Method::GET, "/health".to_owned(), None)),
    };
    let availability = Target {
        name: "GET /v1/skus/{sku}/availability",
        auth: Arc::clone(&auth),
        build: Arc::new(move |i| {
            let sku = sku_name(usize::try_from(mix(i) % skus).unwrap_or(0));
            (
                hyper::Method::GET,
                format!("/v1/skus/{sku}/availability"),
                None,
            )
        }),
    };
    let run = std::process::id();
    let holds = Target {
        name: "POST /v1/holds",
        auth,
        build: Arc::new(move |i| {
            let sku = sku_name(usize::try_from(mix(i) % skus).unwrap_or(0));
            let body = format!(
                r#"{{"hold_id":"bench-{run}-{i}","sku":"{sku}","location":"{WAREHOUSE}","quantity":1,"ttl_seconds":3600,"kind":"checkout","order_id":"order-{run}-{i}","customer_ref":"customer-{i}","channel":"web"}}"#
            );
            (
                hyper::Method::POST,
                "/v1/holds".to_owned(),
                Some(Bytes::from(body)),
            )
        }),
    };
    (health, availability, holds)
}

pub fn run(args: &HttpArgs) -> Result<()> {
    println!(
        "http benchmark: {} SKUs; throughput runs {} s (+{} s warm-up) at {} connections; holds at {}/s for {} s",
        args.skus,
        args.duration_s,
        args.warmup_s,
        args.concurrency,
        args.hold_rate,
        args.hold_duration_s
    );
    crate::print_machine();
    let server_rt = crate::runtime()?;
    let stack = server_rt.block_on(start_stack(args))?;
    let address = stack.address;
    let (health, availability, holds) = targets(&stack.token, args.skus);
    let status = stack.projector.status();

    let client_args = args.clone();
    let client = std::thread::Builder::new()
        .name("load-generator".to_owned())
        .spawn(move || -> Result<Vec<LoadFigures>> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let args = client_args;
                let warmup = Duration::from_secs(args.warmup_s);
                let duration = Duration::from_secs(args.duration_s);
                let mut results = Vec::new();
                if !args.no_throughput {
                    for _ in 0..args.rounds {
                        for target in [&health, &availability] {
                            let figures = closed_loop(
                                address,
                                target.clone(),
                                args.concurrency,
                                warmup,
                                duration,
                            )
                            .await?;
                            println!("{}", figures.row());
                            println!("{}", figures.cpu_summary());
                            results.push(figures);
                        }
                    }
                    if args.availability_rate > 0 {
                        for target in [&health, &availability] {
                            let figures = open_loop(
                                address,
                                target.clone(),
                                args.availability_rate,
                                args.concurrency.max(16),
                                warmup,
                                duration,
                            )
                            .await?;
                            println!("{}", figures.row());
                            println!("{}", figures.cpu_summary());
                            results.push(figures);
                        }
                    }
                }
                if !args.no_holds {
                    let figures = open_loop(
                        address,
                        holds,
                        args.hold_rate,
                        args.open_loop_connections,
                        warmup,
                        Duration::from_secs(args.hold_duration_s),
                    )
                    .await?;
                    println!("{}", figures.row());
                    println!("{}", figures.cpu_summary());
                    results.push(figures);
                }
                anyhow::Ok(results)
            })
        })?;
    let before = status.borrow().clone();
    let started = Instant::now();
    let results = client
        .join()
        .map_err(|_| anyhow::anyhow!("the load generator panicked"))??;
    let after = status.borrow().clone();
    let elapsed = started.elapsed().as_secs_f64();
    server_rt.block_on(stack.stop())?;

    println!();
    println!("| endpoint | load | requests/s | p50 ms | p99 ms | p99.9 ms | max ms | statuses |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for figures in &results {
        println!("{}", figures.row());
    }
    let closed: Vec<&LoadFigures> = results.iter().filter(|f| f.target_rate.is_none()).collect();
    let rate_of = |name: &str| {
        let runs: Vec<f64> = closed
            .iter()
            .filter(|f| f.name == name)
            .map(|f| f.per_s())
            .collect();
        (!runs.is_empty()).then(|| runs.iter().sum::<f64>() / runs.len() as f64)
    };
    if let (Some(health), Some(availability)) = (
        rate_of("GET /health"),
        rate_of("GET /v1/skus/{sku}/availability"),
    ) {
        println!(
            "availability/health throughput ratio: {:.2} (target >= 0.7)",
            availability / health
        );
    }
    let batches = after.batches - before.batches;
    let records = after.records - before.records;
    println!(
        "projector during the runs: {records} records in {batches} batches ({:.1} records/batch, {:.0} batches/s)",
        records as f64 / batches.max(1) as f64,
        batches as f64 / elapsed
    );
    Ok(())
}
