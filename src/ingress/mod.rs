//! The ingress: one TCP listener speaking HTTP/1.1 and HTTP/2 (cleartext)
//! for adapter plugins and `/metrics`. A request goes to the adapter whose
//! route is the longest prefix of its path; the host reads and caps the
//! body, performs the WebSocket upgrades adapters accept, and turns an
//! adapter's failure into a 500 while everyone else is served as before.

mod grpc;
mod metrics;
mod port;
mod websocket;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

pub use metrics::IngressCounters;
use port::AdapterLinks;

use crate::config::IngressConfig;
use crate::plugins::bindings::adapter::{Header, HttpReply, HttpRequest};
use crate::plugins::{AdapterPlugin, PluginError, PluginHost};
use crate::server::SwitchLink;
use crate::switch::Directory;

/// How long a client may take to send a request's headers; also the
/// HTTP/2 keep-alive ping interval.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The file `serve` writes the bound ingress address into.
pub const ADDR_FILE: &str = "ingress.addr";

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("cannot listen for HTTP on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// A running ingress.
pub struct IngressHandle {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for IngressHandle {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

struct Mount {
    /// The adapter's error body template (`failure_body`).
    failure_body: Option<String>,
    route: String,
    adapter: Arc<AdapterPlugin>,
    links: Arc<AdapterLinks>,
}

struct Shared {
    mounts: Vec<Mount>,
    link: SwitchLink,
    plugins: Option<Arc<PluginHost>>,
    counters: Arc<IngressCounters>,
    max_body: usize,
    max_message: usize,
}

/// Loads the adapters, binds and serves.
pub async fn start(
    config: &IngressConfig,
    data_dir: &Path,
    link: SwitchLink,
    plugins: Option<Arc<PluginHost>>,
    directory: Directory,
    tls: Option<Arc<quinn::rustls::ServerConfig>>,
) -> Result<IngressHandle, IngressError> {
    let counters = Arc::new(IngressCounters::default());
    let next_stream = Arc::new(AtomicU64::new(1));
    let mut mounts = Vec::new();
    if let Some(host) = &plugins {
        for c in host.adapter_configs() {
            let (links, events) = AdapterLinks::new(
                c.name.get_ref().clone(),
                link.clone(),
                directory.clone(),
                counters.clone(),
                next_stream.clone(),
                config.max_queued_events,
            );
            let adapter = host.load_adapter(&c, links.clone()).await?;
            links.start_pump(&adapter, events);
            info!(adapter = %adapter.name, routes = ?adapter.routes, "adapter mounted");
            for route in &adapter.routes {
                mounts.push(Mount {
                    failure_body: c.failure_body.clone(),
                    route: route.clone(),
                    adapter: adapter.clone(),
                    links: links.clone(),
                });
            }
        }
    }
    // Longest prefix first.
    mounts.sort_by_key(|m| std::cmp::Reverse(m.route.len()));
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| IngressError::Bind(config.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| IngressError::Bind(config.listen, e))?;
    if let Err(e) = std::fs::write(data_dir.join(ADDR_FILE), addr.to_string()) {
        warn!(error = %e, "could not write ingress.addr");
    }
    let shared = Arc::new(Shared {
        mounts,
        link,
        plugins,
        counters,
        max_body: config.max_body_bytes,
        max_message: config.max_message_bytes,
    });
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    info!(%addr, https = tls.is_some(), "HTTP ingress listening");
    let accept = tokio::spawn(accept_loop(listener, shared, tls));
    Ok(IngressHandle { addr, accept })
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait, do not spin.
                warn!(error = %e, "accepting an HTTP connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_http(shared, tcp, remote).await,
                Some(acceptor) => {
                    // The handshake is bounded like a request's headers.
                    match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve_http(shared, stream, remote).await,
                        Ok(Err(e)) => debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%remote, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 (with upgrades) or HTTP/2 on one connection.
async fn serve_http<IO>(shared: Arc<Shared>, io: IO, remote: SocketAddr)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req, remote).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that trickles its headers does not hold a task forever.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(HEADER_TIMEOUT));
    if let Err(e) = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .await
    {
        debug!(%remote, error = %e, "HTTP connection ended with an error");
    }
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

fn full(body: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
    Full::new(body.into()).boxed()
}

/// The host's own error body (the shape the phone API also uses).
fn host_error(status: StatusCode, reason: &str) -> Reply {
    let body = serde_json::json!({"error": true, "status": status.as_u16(), "reason": reason});
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(full(body.to_string()))
        .expect("valid response")
}

/// An error the host answers on an adapter's behalf, in the adapter's
/// API's shape when its config gives one.
fn adapter_error(mount: &Mount, status: StatusCode, reason: &str) -> Reply {
    let Some(template) = &mount.failure_body else {
        return host_error(status, reason);
    };
    let escaped = serde_json::Value::String(reason.to_string()).to_string();
    let body = template
        .replace("{status}", &status.as_u16().to_string())
        .replace("{phrase}", status.canonical_reason().unwrap_or_default())
        .replace("{reason}", &escaped[1..escaped.len() - 1]);
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(full(body))
        .expect("valid response")
}

/// A gRPC error the host answers itself (trailers-only response).
fn grpc_error(code: u16, message: &str) -> Reply {
    let mut response = Response::builder().status(StatusCode::OK);
    for (name, value) in grpc::error_headers(code, message) {
        response = response.header(name, value);
    }
    response.body(full(Bytes::new())).expect("valid response")
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>, remote: SocketAddr) -> Reply {
    let path = req.uri().path().to_string();
    if path == "/metrics" {
        return metrics_reply(&shared).await;
    }
    let Some(mount) = shared.mounts.iter().find(|m| path.starts_with(&m.route)) else {
        return host_error(
            StatusCode::NOT_FOUND,
            &format!("nothing is mounted at {path}"),
        );
    };
    let name = mount.adapter.name.clone();
    let reply = adapter_request(&shared, mount, req, remote).await;
    shared
        .counters
        .count_request(&name, reply.status().as_u16());
    reply
}

async fn adapter_request(
    shared: &Shared,
    mount: &Mount,
    mut req: Request<Incoming>,
    remote: SocketAddr,
) -> Reply {
    let websocket = websocket::is_upgrade(&req);
    let upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let is_grpc = grpc::is_grpc(&parts);
    let headers: Vec<Header> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| {
            Some(Header {
                name: name.as_str().to_string(),
                value: value.to_str().ok()?.to_string(),
            })
        })
        .collect();
    // A gRPC call's body is a stream of messages, read once the adapter
    // accepts the call; any other body is read whole first.
    let (body, grpc_body) = if is_grpc {
        (Bytes::new(), Some(body))
    } else {
        match read_body(body, shared.max_body).await {
            Ok(b) => (b, None),
            Err((status, reason)) => return adapter_error(mount, status, &reason),
        }
    };
    let request = HttpRequest {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        body: body.to_vec(),
        remote: remote.to_string(),
        websocket,
        grpc: is_grpc,
    };
    let adapter = &mount.adapter;
    let failed = |why: String| {
        let reason = format!("adapter `{}` failed: {why}", adapter.name);
        if is_grpc {
            grpc_error(grpc::STATUS_INTERNAL, &reason)
        } else {
            adapter_error(mount, StatusCode::INTERNAL_SERVER_ERROR, &reason)
        }
    };
    match adapter.handle_http(&request).await {
        Err(failure) => failed(failure.to_string()),
        Ok(HttpReply::Respond(r)) => {
            let Some(status) = (100..=599)
                .contains(&r.status)
                .then(|| StatusCode::from_u16(r.status).ok())
                .flatten()
            else {
                return failed(format!("invalid status code {}", r.status));
            };
            let mut response = Response::new(full(r.body));
            *response.status_mut() = status;
            for h in r.headers {
                let (Ok(name), Ok(value)) = (
                    HeaderName::from_bytes(h.name.as_bytes()),
                    HeaderValue::from_str(&h.value),
                ) else {
                    return failed(format!("invalid header `{}`", h.name));
                };
                if name == hyper::header::CONTENT_LENGTH || name == hyper::header::TRANSFER_ENCODING
                {
                    continue;
                }
                response.headers_mut().append(name, value);
            }
            response
        }
        Ok(HttpReply::Upgrade(context)) => {
            if let Some(body) = grpc_body {
                let body = grpc::open(mount.links.clone(), body, context, shared.max_message);
                return Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/grpc")
                    .body(body.boxed())
                    .expect("valid response");
            }
            let Some(upgrade) = upgrade else {
                return failed(
                    "it asked to upgrade a request that is neither a WebSocket upgrade nor a gRPC call"
                        .into(),
                );
            };
            let key = parts
                .headers
                .get("sec-websocket-key")
                .map(|k| k.as_bytes().to_vec())
                .unwrap_or_default();
            let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
            tokio::spawn(websocket::run_stream(
                mount.links.clone(),
                upgrade,
                context,
                shared.max_message,
            ));
            Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("upgrade", "websocket")
                .header("connection", "Upgrade")
                .header("sec-websocket-accept", accept)
                .body(full(Bytes::new()))
                .expect("valid response")
        }
    }
}

/// Reads a whole body, at most `max` bytes.
async fn read_body(body: Incoming, max: usize) -> Result<Bytes, (StatusCode, String)> {
    match Limited::new(body, max).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than {max} bytes"),
        )),
        Err(e) => Err((StatusCode::BAD_REQUEST, format!("reading the body: {e}"))),
    }
}

async fn metrics_reply(shared: &Shared) -> Reply {
    let Ok(stats) = shared.link.stats().await else {
        return host_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the switch is shutting down",
        );
    };
    let plugins = shared
        .plugins
        .as_ref()
        .map(|p| p.list())
        .unwrap_or_default();
    let text = metrics::render(&stats, &plugins, &shared.counters);
    Response::builder()
        .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
        .body(full(text))
        .expect("valid response")
}
