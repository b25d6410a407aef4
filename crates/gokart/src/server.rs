//! The composition root: store, engine, router and worker put together. `serve` takes a bound
//! listener and a shutdown signal, so tests run it on `127.0.0.1:0` and stop it at will.

use std::{future::Future, sync::Arc};

use gokart_delivery::{OutboundClient, Worker, WorkerConfig};
use gokart_engine::{Clock, Engine};
use gokart_storage::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Everything a running gokart needs, built once.
pub struct Server {
    pub engine: Arc<Engine>,
    pub allow_private_destinations: bool,
    pub run_worker: bool,
    pub worker_config: WorkerConfig,
}

impl Server {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        urls: gokart_engine::PublicUrls,
        allow_private_destinations: bool,
        run_worker: bool,
    ) -> Self {
        Server {
            engine: Engine::new(store, clock, urls),
            allow_private_destinations,
            run_worker,
            worker_config: WorkerConfig::default(),
        }
    }

    /// Opens and migrates the database the settings name.
    pub async fn from_settings(settings: &crate::Settings) -> anyhow::Result<Self> {
        gokart_http::dashboard::set_data_dir(&settings.data_dir);
        let store = gokart_storage_sql::connect(&settings.database_url).await?;
        store.migrate().await?;
        let mut server = Server::new(
            store,
            Arc::new(gokart_engine::SystemClock),
            settings.public_urls(),
            settings.allow_private_destinations,
            !settings.no_worker,
        );
        server.worker_config.lease = chrono::Duration::seconds(settings.delivery_lease_seconds);
        Ok(server)
    }

    pub fn router(&self) -> axum::Router {
        gokart_http::router(gokart_http::AppState { engine: self.engine.clone() })
    }

    /// A delivery worker over this server's engine, with the SSRF setting of the server.
    pub fn worker(&self) -> anyhow::Result<Worker> {
        let client = OutboundClient::new(self.allow_private_destinations)?;
        Ok(Worker::with_config(self.engine.clone(), client, self.worker_config))
    }
}

/// Serves until `shutdown` resolves; in-flight requests finish first. With `run_worker` the
/// delivery worker runs alongside and stops after the HTTP side, finishing its sends in flight.
pub async fn serve(
    server: &Server,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop_worker = CancellationToken::new();
    let worker = if server.run_worker {
        let worker = server.worker()?;
        Some(tokio::spawn(background_jobs(server.engine.clone(), worker, stop_worker.clone())))
    } else {
        None
    };
    let app = server.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    stop_worker.cancel();
    if let Some(worker) = worker {
        worker.await?;
    }
    served?;
    Ok(())
}

/// Runs only the delivery worker until `shutdown` resolves, then lets its sends in flight finish.
pub async fn run_worker_until(
    server: &Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let running =
        tokio::spawn(background_jobs(server.engine.clone(), server.worker()?, cancel.clone()));
    shutdown.await;
    cancel.cancel();
    running.await?;
    Ok(())
}

/// The background jobs of a worker: deliveries, and the approval of due pending conversions.
async fn background_jobs(engine: Arc<Engine>, worker: Worker, cancel: CancellationToken) {
    let approvals = tokio::spawn(engine.run_approvals(cancel.clone().cancelled_owned()));
    worker.run(cancel).await;
    let _ = approvals.await;
}
