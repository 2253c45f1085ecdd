//! The `[metrics] listen` HTTP/1 listener: `/metrics` (Prometheus text format), `/healthz`
//! and `/readyz`. Bounded like the DNS listeners: at most [`MAX_CONNECTIONS`] at once (more
//! are closed at accept), the request head within [`HEADER_TIMEOUT`], every connection
//! closed after [`CONNECTION_LIFETIME`], request heads at most [`MAX_HEAD`] bytes; only GET
//! and HEAD are answered, bodies are never read.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{encoding::prometheus_text, registry::Registry};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{collect::View, health};

/// Scrapers, load balancers and probes at once; a few suffice.
const MAX_CONNECTIONS: usize = 16;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Keep-alive connections are closed after this; the scraper opens a new one.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("failed to listen on metrics {address}: {source}")]
pub struct MetricsListenError {
    address: SocketAddr,
    source: std::io::Error,
}

/// The bound listener, not yet served.
pub struct MetricsListener {
    listener: TcpListener,
}

/// What every request reads.
struct Shared {
    registry: Registry,
    view: Arc<View>,
}

impl MetricsListener {
    /// Binds `address`; must run inside the tokio runtime.
    pub async fn bind(address: SocketAddr) -> Result<Self, MetricsListenError> {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| MetricsListenError { address, source })?;
        Ok(Self { listener })
    }

    /// Serves until `shutdown`.
    pub fn serve(self, view: View, shutdown: &CancellationToken, tracker: &TaskTracker) {
        let view = Arc::new(view);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(view.clone()));
        let shared = Arc::new(Shared { registry, view });
        tracker.spawn(accept(
            self.listener,
            shared,
            shutdown.clone(),
            tracker.clone(),
        ));
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors, say: do not spin.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue; // dropped: closed at once
        };
        let (shared, shutdown) = (shared.clone(), shutdown.clone());
        tracker.spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(respond(&shared, &request)) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = tokio::time::timeout(CONNECTION_LIFETIME, connection) => {}
            }
        });
    }
}

fn respond(shared: &Shared, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_text::encode(&mut body, &shared.registry) {
                Ok(()) => Response::builder()
                    .header(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_default(),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "encoding failed\n".into(),
                ),
            }
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match health::ready(&shared.view) {
            Ok(()) => text(StatusCode::OK, "ready\n".into()),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "/metrics, /healthz, /readyz\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}
