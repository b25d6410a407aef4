//! `--instructions N`: the instructions the server executes per `/healthz`, click and
//! postback, counted by callgrind.
//!
//! The load test's rates and CPU times move with the VM (its `/healthz` rate moved 39k-110k
//! within a day); instruction counts do not, so two builds can be compared by a few percent.
//! The server runs under `valgrind --tool=callgrind` on a fresh SQLite database, counting only
//! around each measured phase: N clicks with distinct members, then an install postback for
//! each, then N `/healthz`, sent over [`CONNECTIONS`] connections (so that batches form as under
//! load, if smaller). Runs of one build differ by 2-4 % (how requests fall into batches):
//! compare builds over two runs each.

use std::{path::Path, process::Command};

use crate::{
    load::{self, closed_loop, MakeRequest, OnResponse, Until},
    setup::{ClickIds, Target},
};

/// Connections the requests are sent over.
const CONNECTIONS: usize = 16;
/// Clicks and their postbacks sent before counting starts: the server's caches and the
/// database's first pages are the start, not what a request costs.
const WARM_UP: u64 = 300;
/// The phases, as dumped, in the order they are printed.
const PHASES: [&str; 3] = ["healthz", "clicks", "postbacks"];

/// Counts and prints instructions per request over `count` requests of each kind; with `keep`,
/// leaves callgrind's files for `callgrind_annotate`.
pub async fn count(count: u64, keep: bool) -> anyhow::Result<()> {
    let work = std::env::temp_dir().join(format!("gokart-instructions-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work)?;
    let callgrind = [
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}/callgrind.%p.out", work.display()),
        "--instr-atstart=no".to_owned(),
    ];
    eprintln!("== sqlite under callgrind: starting the server (tens of seconds)");
    let target = Target::start("sqlite", "", 0, &callgrind).await?;
    let counted = phases(&target, count).await;
    target.stop().await;
    counted?;
    for phase in PHASES {
        let total = dumped_instructions(&work, phase)?;
        println!("{phase}: {:.1} k instructions per request", total as f64 / count as f64 / 1e3);
    }
    if keep {
        let kept = work.display();
        println!("callgrind files kept in {kept} (callgrind_annotate --inclusive=yes <file>)");
    } else {
        std::fs::remove_dir_all(&work)?;
    }
    Ok(())
}

/// Sends the warm-up, then each of `PHASES` with counting switched on around it.
async fn phases(target: &Target, count: u64) -> anyhow::Result<()> {
    let client = load::client(CONNECTIONS);
    let click_ids_seen = ClickIds::default();
    let on_response = click_ids_seen.collect();
    let send = |requests: MakeRequest, sent: u64, on_response: Option<OnResponse>| {
        let client = client.clone();
        async move {
            let run = closed_loop(&client, CONNECTIONS, Until::Sent(sent), requests, on_response);
            let stats = run.await;
            anyhow::ensure!(stats.failed == 0, "{} requests failed", stats.failed);
            Ok(())
        }
    };
    let pid = target.pid();

    eprintln!("== warming up: {WARM_UP} clicks and their postbacks");
    send(target.click_requests("warm", 0), WARM_UP, Some(on_response.clone())).await?;
    send(target.postback_requests(click_ids_seen.take(), "Install", 0), WARM_UP, None).await?;

    let clicks = send(target.click_requests("counted", 0), count, Some(on_response));
    counted(pid, "clicks", clicks).await?;
    let click_ids = click_ids_seen.take();
    anyhow::ensure!(click_ids.len() as u64 == count, "{} click ids seen", click_ids.len());
    counted(pid, "postbacks", send(target.postback_requests(click_ids, "Install", 0), count, None))
        .await?;
    counted(pid, "healthz", send(target.healthz_requests(), count, None)).await
}

/// Runs `requests` (not started until awaited) with counting switched on around them, and dumps
/// the count as `phase`.
async fn counted(
    pid: u32,
    phase: &str,
    requests: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    eprintln!("== counting: {phase}");
    callgrind_control(pid, &["--zero", "--instr=on"])?;
    requests.await?;
    callgrind_control(pid, &["--instr=off", &format!("--dump={phase}")])
}

/// Runs `callgrind_control` with each of `arguments` in turn against the server.
fn callgrind_control(pid: u32, arguments: &[&str]) -> anyhow::Result<()> {
    for argument in arguments {
        let done = Command::new("callgrind_control").arg(argument).arg(pid.to_string()).output()?;
        anyhow::ensure!(done.status.success(), "callgrind_control {argument} failed");
    }
    Ok(())
}

/// The instructions of the dump named `phase`, summed over callgrind's files in `work` (one
/// per thread when they are separated; one per dump here).
fn dumped_instructions(work: &Path, phase: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(work)? {
        let bytes = std::fs::read(entry?.path())?;
        let text = String::from_utf8_lossy(&bytes);
        if !text.contains(&format!("desc: Trigger: dump {phase}\n")) {
            continue;
        }
        let totals = text.lines().find_map(|line| line.strip_prefix("totals: "));
        total += totals.and_then(|n| n.trim().parse::<u64>().ok()).unwrap_or(0);
    }
    anyhow::ensure!(total > 0, "callgrind dumped nothing for {phase}");
    Ok(total)
}
