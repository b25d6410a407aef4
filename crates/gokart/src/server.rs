//! The composition root: store, engine, router and worker put together. `serve` takes a bound
//! listener and a shutdown signal, so tests run it on `127.0.0.1:0` and stop it at will.

use std::{future::Future, sync::Arc};

use gokart_engine::{Clock, Engine};
use gokart_storage::Store;
use tokio::net::TcpListener;

/// Everything a running gokart needs, built once.
pub struct Server {
    pub engine: Arc<Engine>,
    pub allow_private_destinations: bool,
    pub run_worker: bool,
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
            engine: Arc::new(Engine::new(store, clock, urls)),
            allow_private_destinations,
            run_worker,
        }
    }

    /// Opens and migrates the database the settings name.
    pub async fn from_settings(settings: &crate::Settings) -> anyhow::Result<Self> {
        let store = gokart_storage_sql::connect(&settings.database_url).await?;
        store.migrate().await?;
        Ok(Server::new(
            store,
            Arc::new(gokart_engine::SystemClock),
            settings.public_urls(),
            settings.allow_private_destinations,
            !settings.no_worker,
        ))
    }

    pub fn router(&self) -> axum::Router {
        gokart_http::router(gokart_http::AppState { engine: self.engine.clone() })
    }
}

/// Serves until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    server: &Server,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = server.router().into_make_service_with_connect_info::<std::net::SocketAddr>();
    let (stop_approvals, approvals_stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.engine.clone().run_approvals(async {
        let _ = approvals_stopped.await;
    }));
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    let _ = stop_approvals.send(());
    served?;
    Ok(())
}

/// Runs only the delivery worker until `shutdown` resolves.
pub async fn run_worker_until(
    _server: &Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    shutdown.await;
    Ok(())
}
