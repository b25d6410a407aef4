//! Deliveries per second from the queue to a local receiver, through the real worker loop.
//!
//! ```text
//! cargo run --release -p gokart --example delivery_bench [-- <jobs>]
//! ```
//!
//! Uses a fresh SQLite file in the temp directory, or `GOKART_BENCH_DATABASE_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`). The receiver answers 200 at once, so the
//! figure is gokart's own cost: claim, send, record the attempt, mark delivered.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use gokart_delivery::{OutboundClient, Worker};
use gokart_domain::tenant::TenantKind;
use gokart_engine::{tenants::NewTenant, Engine, PublicUrls, SystemClock};
use gokart_storage::{DeliveryFilter, DeliveryKind, DeliveryRecord, DeliveryStatus, PageRequest};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jobs: usize = std::env::args().nth(1).map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    let url = std::env::var("GOKART_BENCH_DATABASE_URL").unwrap_or_else(|_| {
        let path = std::env::temp_dir().join(format!("gokart-bench-{}.db", Uuid::new_v4()));
        format!("sqlite://{}", path.display())
    });
    let store = gokart_storage_sql::connect(&url).await?;
    store.migrate().await?;
    let engine =
        Engine::new(store, Arc::new(SystemClock), PublicUrls::new("localhost", 8080, None));
    let slug = format!("bench-{}", &Uuid::new_v4().simple().to_string()[..8]);
    engine
        .create_tenant(NewTenant {
            slug: slug.clone(),
            kind: TenantKind::AffNetwork,
            name: "Bench".into(),
            admin_email: "ops@bench.test".into(),
            admin_password: "password-123".into(),
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = engine.tenant(&slug).await.map_err(|e| anyhow::anyhow!("{e}"))?.unwrap();

    let (receiver, hits) = spawn_receiver().await?;
    let now = engine.now();
    let mut tx = engine.store.write().await?;
    for _ in 0..jobs {
        let transaction_id = Uuid::new_v4();
        tx.insert_delivery(&DeliveryRecord {
            id: Uuid::new_v4(),
            tenant_id: tenant.id,
            kind: DeliveryKind::PartnerPostback,
            conversion_id: None,
            conversion_event_id: None,
            transaction_id: Some(transaction_id),
            url: format!("http://{receiver}/pb?tx={transaction_id}"),
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            status: DeliveryStatus::Pending,
            failure_reason: None,
            attempt_count: 0,
            next_attempt_at: Some(now),
            locked_until: None,
            lease_owner: None,
            first_attempt_at: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    }
    tx.commit().await?;

    let started = Instant::now();
    let cancel = CancellationToken::new();
    let worker = Worker::new(engine.clone(), OutboundClient::new(true)?);
    let running = tokio::spawn({
        let cancel = cancel.clone();
        async move { worker.run(cancel).await }
    });
    let filter = DeliveryFilter { status: Some(DeliveryStatus::Delivered), ..Default::default() };
    loop {
        let mut tx = engine.store.read().await?;
        let page = PageRequest { index: 0, size: 1 };
        let delivered = tx.list_deliveries(tenant.id, &filter, page).await?.total;
        drop(tx);
        if delivered as usize >= jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    cancel.cancel();
    running.await?;
    println!(
        "{jobs} deliveries ({} requests received) in {:.2} s: {:.0} deliveries/s ({})",
        hits.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        jobs as f64 / elapsed.as_secs_f64(),
        url.split(':').next().unwrap_or_default(),
    );
    Ok(())
}

async fn spawn_receiver() -> anyhow::Result<(std::net::SocketAddr, Arc<AtomicUsize>)> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        async { "ok" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, hits))
}
