//! `cargo run --release -p gokart-bench -- [--backend sqlite|postgres|both]`
//!
//! Starts `gokart serve` (this same binary, re-executed as a child process) on a fresh database,
//! then measures from this process: the maximum rate of `GET /healthz` (the ceiling of this server
//! on this machine), of click redirects and of postbacks; p50/p99/p99.9 latency of clicks and
//! postbacks at half their maximum rate; and the server's peak RSS. Each rate is also printed as
//! a ratio to the `/healthz` rate, measured in the same run.
//!
//! A maximum rate is the best over the `--connections` levels (32, 128 and 256 by default),
//! each endpoint measured at every level: a group commit answers more per commit the more
//! requests are in flight, while `/healthz` peaks early, so one fixed level would understate one
//! side or the other. The three take turns, level by level, for `--rounds` rounds (2 by
//! default), after an unmeasured warm-up; a level's rate pools all its rounds, and each maximum
//! is the best level's: on this VM rates drift by half within a minute, and a ratio of two rates
//! measured a minute apart, or one lucky moment, measured the drift. Every measurement starts
//! after `--pause-seconds` of quiet, and a half-load run measures the requests scheduled after
//! its first `--warm-up-seconds` (the load's start is not its steady state).
//!
//! `--instructions N` counts instead the instructions the server executes per request, under
//! callgrind (`instructions.rs`): the figure that compares two builds on a noisy VM.
//!
//! `GOKART_BENCH_SERVER_LOG=1` lets the server's log through to this command's stderr.

mod instructions;
mod load;
mod setup;

use std::time::Duration;

use clap::Parser;

/// The same allocator as the `gokart` binary, since this process also runs as the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use load::{closed_loop, open_loop, Until};

#[derive(Debug, Parser)]
struct Args {
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    backend: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent connections of the load generator: each maximum rate is the best of these
    /// levels (every endpoint is measured at each), and latency is measured at the level that
    /// gave the maximum.
    #[arg(long, value_delimiter = ',', default_value = "32,128,256")]
    connections: Vec<usize>,
    /// Rounds of the maximum-rate measurements: each round measures /healthz, clicks and
    /// postbacks at every level, one after the other; a level's rate pools all rounds.
    #[arg(long, default_value_t = 2)]
    rounds: u32,
    /// Connections of the half-load latency runs; by default the level that gave each maximum.
    #[arg(long)]
    latency_connections: Option<usize>,
    /// Seconds of quiet before each measurement, so that what one left behind (SQLite's WAL to
    /// copy into the database, PostgreSQL's autovacuum) is not measured as part of the next.
    #[arg(long, default_value_t = 1)]
    pause_seconds: u64,
    /// Seconds of each half-load run before its latencies are measured (its requests are sent
    /// all the same): the steady state is measured, not the load's first moments.
    #[arg(long, default_value_t = 1)]
    warm_up_seconds: u64,
    /// Clicks stored before measuring (e.g. 10000000 for the large-database check).
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// PostgreSQL server for the postgres backend (a fresh database is created on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// Instead of the load test: instructions per request under callgrind, over this many
    /// requests of each kind (SQLite; needs valgrind). The figure to compare two builds by.
    #[arg(long, value_name = "REQUESTS")]
    instructions: Option<u64>,
    /// With `--instructions`: keep callgrind's files, for `callgrind_annotate`.
    #[arg(long)]
    keep_callgrind: bool,
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(setup::CHILD_MARKER) {
        // The child: plain gokart.
        gokart::cli::init_logging();
        let cli = <gokart::cli::Cli as Parser>::parse_from(
            std::iter::once("gokart".to_owned()).chain(argv[2..].iter().cloned()),
        );
        return tokio::runtime::Runtime::new()?.block_on(gokart::cli::run(cli));
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(count) = args.instructions {
        return instructions::count(count, args.keep_callgrind).await;
    }
    let backends: Vec<&str> = match args.backend.as_str() {
        "both" => vec!["sqlite", "postgres"],
        other => vec![other],
    };
    let mut rows = Vec::new();
    for backend in backends {
        let figures = measure(&args, backend).await?;
        rows.push(figures);
    }
    println!();
    println!("| backend | /healthz req/s | clicks/s (ratio) | postbacks/s (ratio) | click p50/p99/p99.9 ms | postback p50/p99/p99.9 ms | peak RSS MB | connections at max (healthz/clicks/postbacks) |");
    println!("|---|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    println!();
    for row in &rows {
        println!("{}", row.targets());
    }
    let of = |backend: &str| rows.iter().find(|row| row.backend == backend);
    if let (Some(postgres), Some(sqlite)) = (of("postgres"), of("sqlite")) {
        println!("{}", postgres.against(sqlite));
    }
    Ok(())
}

struct Figures {
    backend: String,
    prefill: u64,
    healthz: f64,
    clicks: f64,
    postbacks: f64,
    click_latency: [f64; 3],
    postback_latency: [f64; 3],
    peak_rss_mb: f64,
    /// SQLite: the largest the WAL file was during the run.
    peak_wal_mb: Option<f64>,
    /// The connection levels of the maximum rates of /healthz, clicks and postbacks.
    connections: [usize; 3],
    /// Server CPU time per request at those maximum rates, in µs (/healthz, clicks, postbacks).
    cpu_us: [f64; 3],
}

impl Figures {
    /// Issue 6's targets for this 2-core machine, each with the measured figure.
    fn targets(&self) -> String {
        let (clicks, postbacks) = (self.clicks / self.healthz, self.postbacks / self.healthz);
        let [_, click_p99, _] = self.click_latency;
        let [_, postback_p99, _] = self.postback_latency;
        let wal = self.peak_wal_mb.map_or(String::new(), |mb| format!("; peak WAL {mb:.0} MB"));
        format!(
            "{}: clicks/healthz {clicks:.2} >= 0.50 {}; postbacks/healthz {postbacks:.2} >= 0.25 {}; \
             click p99 {click_p99:.2} <= 5 ms {}; postback p99 {postback_p99:.2} <= 10 ms {}; \
             RSS {:.0} <= 150 MB {}{wal}; server CPU per request {:.0} / {:.0} / {:.0} µs \
             (healthz / click / postback)",
            self.backend,
            verdict(clicks >= 0.5),
            verdict(postbacks >= 0.25),
            verdict(click_p99 <= 5.0),
            verdict(postback_p99 <= 10.0),
            self.peak_rss_mb,
            verdict(self.peak_rss_mb <= 150.0),
            self.cpu_us[0],
            self.cpu_us[1],
            self.cpu_us[2],
        )
    }

    /// Issue 6's acceptance on PostgreSQL: its rates at least half of SQLite's (`baseline`),
    /// measured in the same run.
    fn against(&self, baseline: &Figures) -> String {
        let clicks = self.clicks / baseline.clicks;
        let postbacks = self.postbacks / baseline.postbacks;
        format!(
            "{} against {}: clicks {clicks:.2} >= 0.50 {}; postbacks {postbacks:.2} >= 0.50 {}",
            self.backend,
            baseline.backend,
            verdict(clicks >= 0.5),
            verdict(postbacks >= 0.5),
        )
    }
}

/// How a target reads in the load test's summary.
fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [c50, c99, c999] = self.click_latency;
        let [p50, p99, p999] = self.postback_latency;
        let prefill = if self.prefill > 0 {
            format!(" ({} clicks stored)", self.prefill)
        } else {
            String::new()
        };
        write!(
            f,
            "| {}{prefill} | {:.0} | {:.0} ({:.2}) | {:.0} ({:.2}) | {c50:.2} / {c99:.2} / {c999:.2} | {p50:.2} / {p99:.2} / {p999:.2} | {:.0} | {} / {} / {} |",
            self.backend,
            self.healthz,
            self.clicks,
            self.clicks / self.healthz,
            self.postbacks,
            self.postbacks / self.healthz,
            self.peak_rss_mb,
            self.connections[0],
            self.connections[1],
            self.connections[2],
        )
    }
}

async fn measure(args: &Args, backend: &str) -> anyhow::Result<Figures> {
    let duration = Duration::from_secs(args.seconds);
    let until = Until::Elapsed(duration);
    eprintln!("== {backend}: preparing a fresh database");
    let target = setup::Target::start(backend, &args.pg_url, args.prefill, &[]).await?;
    let levels = &args.connections;
    let wal = target.watch_wal();
    let most = levels.iter().copied().chain(args.latency_connections).max().unwrap_or(32);
    let client = load::client(most);

    let healthz = target.healthz_requests();
    let click_ids_seen = setup::ClickIds::default();
    let on_response = click_ids_seen.collect();
    // The three endpoints take turns, level by level and round after round, so that the VM's
    // slow and fast moments (its rates drift by half within a minute) fall on all three alike.
    let (mut healthz_runs, mut click_runs, mut postback_runs) =
        (ByLevel::default(), ByLevel::default(), ByLevel::default());
    let mut clicks_sent = 0;
    // The first seconds of load after the quiet setup ran faster than any later ones (the VM
    // lends an idle guest more for a moment): they are not measured.
    eprintln!("== {backend}: warming up (/healthz, not measured)");
    let warm_up = levels.first().copied().unwrap_or(32);
    closed_loop(&client, warm_up, until, healthz.clone(), None).await;
    let latency_warm_up = Duration::from_secs(args.warm_up_seconds);
    let pause = Duration::from_secs(args.pause_seconds);
    // Every measurement starts after a pause of quiet, and says what it measures.
    let quiet_then = |what: String| async move {
        tokio::time::sleep(pause).await;
        eprintln!("== {backend}: {what}");
    };
    for round in 1..=args.rounds {
        for &connections in levels {
            let run_of = format!("{connections} connections, round {round} of {}", args.rounds);
            quiet_then(format!("/healthz, {run_of}")).await;
            let run = closed_loop(&client, connections, until, healthz.clone(), None);
            healthz_runs.add(connections, with_server_cpu(&target, run).await);

            quiet_then(format!("clicks at the maximum rate, {run_of}")).await;
            let requests = target.click_requests("max", clicks_sent);
            let run = closed_loop(&client, connections, until, requests, Some(on_response.clone()));
            let stats = with_server_cpu(&target, run).await;
            clicks_sent += stats.sent;
            click_runs.add(connections, stats);

            // Installs of the clicks just made, each converted once.
            quiet_then(format!("postbacks at the maximum rate, {run_of}")).await;
            let click_ids = click_ids_seen.take();
            let requests = target.postback_requests(click_ids.clone(), "Install", 0);
            let run = closed_loop(&client, connections, until, requests, None);
            let stats = with_server_cpu(&target, run).await;
            if stats.sent > click_ids.len() as u64 {
                eprintln!("   note: more postbacks than clicks; some were duplicates");
            }
            postback_runs.add(connections, stats);
        }
    }
    let (healthz, healthz_connections) =
        healthz_runs.best().ok_or_else(|| anyhow::anyhow!("no connection levels or rounds"))?;
    let (clicks, click_connections) = click_runs.best().expect("levels and rounds are not empty");
    let (postbacks, postback_connections) =
        postback_runs.best().expect("levels and rounds are not empty");

    let click_latency_level = args.latency_connections.unwrap_or(click_connections);
    let postback_latency_level = args.latency_connections.unwrap_or(postback_connections);
    quiet_then(format!("clicks at half load, {click_latency_level} connections")).await;
    let click_half = open_loop(
        &client,
        click_latency_level,
        clicks.rate() / 2.0,
        (latency_warm_up, duration),
        target.click_requests("half", 0),
        Some(on_response),
    )
    .await;

    quiet_then(format!("postbacks at half load, {postback_latency_level} connections")).await;
    // Installs again, as at the maximum rate (a later event costs more to decide: half of the
    // installs' rate would not be half load for it), of the clicks just made at half load.
    let click_ids = click_ids_seen.take();
    let postback_half = open_loop(
        &client,
        postback_latency_level,
        postbacks.rate() / 2.0,
        (latency_warm_up, duration),
        target.postback_requests(click_ids.clone(), "Install", 0),
        None,
    )
    .await;
    if postback_half.sent > click_ids.len() as u64 {
        eprintln!("   note: more postbacks at half load than clicks; some were duplicates");
    }

    for (name, half) in [("clicks", &click_half), ("postbacks", &postback_half)] {
        eprintln!(
            "   {name} at half load: p99 {:.2} ms from the schedule, {:.2} ms from the send",
            half.ms(0.99),
            half.ms_from_send(0.99)
        );
    }
    let peak_rss_mb = target.peak_rss_kb() as f64 / 1024.0;
    let peak_wal_mb =
        wal.map(|peak| peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1048576.0);
    target.stop().await;
    for (name, stats) in [
        ("clicks", &clicks),
        ("postbacks", &postbacks),
        ("click half", &click_half),
        ("postback half", &postback_half),
    ] {
        if stats.failed > 0 {
            eprintln!("   note: {} {name} requests failed", stats.failed);
        }
    }
    Ok(Figures {
        backend: backend.to_owned(),
        prefill: args.prefill,
        healthz: healthz.rate(),
        clicks: clicks.rate(),
        postbacks: postbacks.rate(),
        connections: [healthz_connections, click_connections, postback_connections],
        cpu_us: [
            healthz.cpu_us_per_request(),
            clicks.cpu_us_per_request(),
            postbacks.cpu_us_per_request(),
        ],
        click_latency: [click_half.ms(0.5), click_half.ms(0.99), click_half.ms(0.999)],
        postback_latency: [postback_half.ms(0.5), postback_half.ms(0.99), postback_half.ms(0.999)],
        peak_rss_mb,
        peak_wal_mb,
    })
}

/// Runs one measurement, keeps the server CPU time it took, and prints a line: its rate and
/// the server's CPU time per request.
async fn with_server_cpu(
    target: &setup::Target,
    run: impl std::future::Future<Output = load::RunStats>,
) -> load::RunStats {
    let before = target.cpu_time();
    let mut stats = run.await;
    stats.server_cpu = target.cpu_time().saturating_sub(before);
    eprintln!(
        "   {:.0} req/s, server CPU {:.1} µs per request",
        stats.rate(),
        stats.cpu_us_per_request()
    );
    stats
}

/// An endpoint's runs at each connection level, every round's pooled: a level's rate is all
/// its rounds' answers over all their time, so one lucky moment does not make the maximum.
#[derive(Default)]
struct ByLevel(Vec<(usize, load::RunStats)>);

impl ByLevel {
    fn add(&mut self, connections: usize, run: load::RunStats) {
        match self.0.iter_mut().find(|(level, _)| *level == connections) {
            Some((_, pooled)) => pooled.pool(run),
            None => self.0.push((connections, run)),
        }
    }

    /// The level with the highest pooled rate, and its pooled runs.
    fn best(self) -> Option<(load::RunStats, usize)> {
        self.0
            .into_iter()
            .max_by(|(_, a), (_, b)| a.rate().total_cmp(&b.rate()))
            .map(|(level, run)| (run, level))
    }
}
