//! `http-client`: outgoing HTTP/1.1 requests, over TLS for `https://`
//! (the system's CAs and the plugin's `http_ca_file`), to the destinations
//! the operator lists in the plugin's `http_hosts`. Anything else is refused
//! before a connection is made. The wait is credited back to the calling
//! hook's budget: the request has its own timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::plugins::bindings::callswitch::plugin::http_client::{Host, HttpRequest, HttpResponse};
use crate::plugins::state::{HttpGrant, PluginState};

/// Largest response body handed to a plugin.
const MAX_RESPONSE_BODY: usize = 1 << 20;

/// Whether `host:port` is one of `allowed` (`host` alone allows any port).
pub fn destination_allowed(allowed: &[String], host: &str, port: u16) -> bool {
    let with_port = format!("{host}:{port}");
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(&with_port))
}

/// The TLS client configuration of a grant: the system's certificates and
/// the grant's `http_ca_file`, TLS 1.2 and 1.3, ALPN `http/1.1`.
fn tls_config(grant: &HttpGrant) -> Arc<ClientConfig> {
    grant
        .tls
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "reading the system's CA certificates");
            }
            let (added, ignored) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, ignored, "system CA certificates for http-client");
            for cert in &grant.extra_roots {
                if let Err(e) = roots.add(cert.clone()) {
                    tracing::warn!(error = %e, "a certificate of http_ca_file is not a usable CA");
                }
            }
            let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
            let mut config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

async fn send(grant: &HttpGrant, request: HttpRequest) -> Result<HttpResponse, String> {
    let allowed = &grant.hosts;
    let uri: Uri = request
        .url
        .parse()
        .map_err(|e| format!("invalid URL `{}`: {e}", request.url))?;
    let (tls, default_port) = match uri.scheme_str() {
        Some("http") => (false, 80),
        Some("https") => (true, 443),
        Some(other) => {
            return Err(format!(
                "`{other}` URLs are not supported (only http and https)"
            ))
        }
        None => return Err(format!("URL `{}` is not absolute", request.url)),
    };
    let host = uri
        .host()
        .ok_or_else(|| format!("URL `{}` has no host", request.url))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(default_port);
    if !destination_allowed(allowed, &host, port) {
        return Err(format!(
            "destination {host}:{port} is not in this plugin's http_hosts ({})",
            if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            }
        ));
    }
    let timeout = request
        .timeout_ms
        .map(|ms| Duration::from_millis(ms.into()))
        .unwrap_or(grant.timeout);
    let exchange = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if tls {
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
            let stream = TlsConnector::from(tls_config(grant))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
            exchange(TokioIo::new(stream), &uri, &host, port, request).await
        } else {
            exchange(TokioIo::new(tcp), &uri, &host, port, request).await
        }
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        format!(
            "no response from {host}:{port} within {} ms",
            timeout.as_millis()
        )
    })?
}

/// One HTTP/1.1 request and its response over an open connection.
async fn exchange<IO>(
    io: IO,
    uri: &Uri,
    host: &str,
    port: u16,
    request: HttpRequest,
) -> Result<HttpResponse, String>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake with {host}:{port}: {e}"))?;
    tokio::spawn(conn);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let mut builder = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(path)
        .header("host", uri.authority().map(|a| a.as_str()).unwrap_or(host));
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        builder = builder.header(name.as_str(), value.as_str());
    }
    let req = builder
        .body(Full::new(Bytes::from(request.body)))
        .map_err(|e| format!("invalid request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request to {host}:{port} failed: {e}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = Limited::new(resp.into_body(), MAX_RESPONSE_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the response from {host}:{port}: {e}"))?
        .to_bytes()
        .to_vec();
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

impl Host for PluginState {
    async fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, String> {
        let started = Instant::now();
        let http = self.http.clone();
        let result = send(&http, request).await;
        self.waited += started.elapsed();
        if let Err(e) = &result {
            tracing::debug!(plugin = &*self.plugin, error = %e, "plugin HTTP request failed");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::destination_allowed;

    #[test]
    fn destinations_match_host_or_host_and_port() {
        let allowed = vec!["hooks.example".to_string(), "127.0.0.1:9000".to_string()];
        assert!(destination_allowed(&allowed, "hooks.example", 8080));
        assert!(destination_allowed(&allowed, "127.0.0.1", 9000));
        assert!(!destination_allowed(&allowed, "127.0.0.1", 9001));
        assert!(!destination_allowed(&allowed, "evil.example", 80));
        assert!(!destination_allowed(&[], "127.0.0.1", 9000));
    }
}
