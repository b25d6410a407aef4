//! `cargo run --release -p gokart-bench -- [--backend sqlite|postgres|both]`
//!
//! Starts `gokart serve` (this same binary, re-executed as a child process) on a fresh database,
//! then measures from this process: the maximum rate of `GET /healthz` (the ceiling of this server
//! on this machine), of click redirects and of postbacks; p50/p99/p99.9 latency of clicks and
//! postbacks at half their maximum rate; and the server's peak RSS. Each rate is also printed as
//! a ratio to the `/healthz` rate, measured in the same run.

mod load;
mod setup;

use std::{sync::Arc, time::Duration};

use clap::Parser;

/// The same allocator as the `gokart` binary, since this process also runs as the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use load::{closed_loop, get, open_loop, MakeRequest, OnResponse};

#[derive(Debug, Parser)]
struct Args {
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    backend: String,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Clicks stored before measuring (e.g. 10000000 for the large-database check).
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// PostgreSQL server for the postgres backend (a fresh database is created on it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(setup::CHILD_MARKER) {
        // The child: plain gokart.
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
    println!("| backend | /healthz req/s | clicks/s (ratio) | postbacks/s (ratio) | click p50/p99/p99.9 ms | postback p50/p99/p99.9 ms | peak RSS MB |");
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    println!();
    for row in &rows {
        println!("{}", row.targets());
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
}

impl Figures {
    /// Issue 6's targets for this 2-core machine, each with the measured figure.
    fn targets(&self) -> String {
        let check = |met: bool| if met { "met" } else { "MISSED" };
        let (clicks, postbacks) = (self.clicks / self.healthz, self.postbacks / self.healthz);
        let [_, click_p99, _] = self.click_latency;
        let [_, postback_p99, _] = self.postback_latency;
        format!(
            "{}: clicks/healthz {clicks:.2} >= 0.50 {}; postbacks/healthz {postbacks:.2} >= 0.25 {}; \
             click p99 {click_p99:.2} <= 5 ms {}; postback p99 {postback_p99:.2} <= 10 ms {}; \
             RSS {:.0} <= 150 MB {}",
            self.backend,
            check(clicks >= 0.5),
            check(postbacks >= 0.25),
            check(click_p99 <= 5.0),
            check(postback_p99 <= 10.0),
            self.peak_rss_mb,
            check(self.peak_rss_mb <= 150.0),
        )
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
            "| {}{prefill} | {:.0} | {:.0} ({:.2}) | {:.0} ({:.2}) | {c50:.2} / {c99:.2} / {c999:.2} | {p50:.2} / {p99:.2} / {p999:.2} | {:.0} |",
            self.backend,
            self.healthz,
            self.clicks,
            self.clicks / self.healthz,
            self.postbacks,
            self.postbacks / self.healthz,
            self.peak_rss_mb
        )
    }
}

async fn measure(args: &Args, backend: &str) -> anyhow::Result<Figures> {
    let duration = Duration::from_secs(args.seconds);
    eprintln!("== {backend}: preparing a fresh database");
    let target = setup::Target::start(backend, &args.pg_url, args.prefill).await?;
    let client = load::client(args.connections);
    let addr = target.addr;

    eprintln!("== {backend}: /healthz");
    let host = target.api_host.clone();
    let healthz: MakeRequest = Arc::new(move |_| get(addr, &host, "/healthz"));
    let healthz = closed_loop(&client, args.connections, duration, healthz, None).await;

    eprintln!("== {backend}: clicks at the maximum rate");
    let clicks_seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clicks = {
        let collect = clicks_seen.clone();
        let on_response: OnResponse = Arc::new(move |response| {
            if let Some(id) = setup::click_id_from_location(response) {
                collect.lock().unwrap_or_else(|e| e.into_inner()).push(id);
            }
        });
        closed_loop(
            &client,
            args.connections,
            duration,
            target.click_requests("max"),
            Some(on_response),
        )
        .await
    };

    eprintln!("== {backend}: postbacks at the maximum rate");
    let click_ids =
        Arc::new(std::mem::take(&mut *clicks_seen.lock().unwrap_or_else(|e| e.into_inner())));
    let postbacks = closed_loop(
        &client,
        args.connections,
        duration,
        target.postback_requests(click_ids.clone(), "Install"),
        None,
    )
    .await;

    eprintln!("== {backend}: clicks at half load");
    let click_half = open_loop(
        &client,
        args.connections,
        clicks.rate() / 2.0,
        duration,
        target.click_requests("half"),
    )
    .await;

    eprintln!("== {backend}: postbacks at half load");
    // The same clicks again, now with their second event, so every postback is a new event.
    let postback_half = open_loop(
        &client,
        args.connections,
        postbacks.rate() / 2.0,
        duration,
        target.postback_requests(click_ids, "s2s_level 200"),
    )
    .await;

    let peak_rss_mb = target.peak_rss_kb() as f64 / 1024.0;
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
        click_latency: [click_half.ms(0.5), click_half.ms(0.99), click_half.ms(0.999)],
        postback_latency: [postback_half.ms(0.5), postback_half.ms(0.99), postback_half.ms(0.999)],
        peak_rss_mb,
    })
}
