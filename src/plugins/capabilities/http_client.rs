//! `http-client`: outgoing HTTP/1.1 requests to the destinations the
//! operator lists in the plugin's `http_hosts`. Anything else is refused
//! before a connection is made. The wait is credited back to the calling
//! hook's budget: the request has its own timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::plugins::bindings::callswitch::plugin::http_client::{Host, HttpRequest, HttpResponse};
use crate::plugins::state::PluginState;

/// Largest response body handed to a plugin.
const MAX_RESPONSE_BODY: usize = 1 << 20;

/// Whether `host:port` is one of `allowed` (`host` alone allows any port).
pub fn destination_allowed(allowed: &[String], host: &str, port: u16) -> bool {
    let with_port = format!("{host}:{port}");
    allowed
        .iter()
        .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(&with_port))
}

async fn send(
    allowed: &[String],
    default_timeout: Duration,
    request: HttpRequest,
) -> Result<HttpResponse, String> {
    let uri: Uri = request
        .url
        .parse()
        .map_err(|e| format!("invalid URL `{}`: {e}", request.url))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => return Err(format!("`{other}` URLs are not supported (only http)")),
        None => return Err(format!("URL `{}` is not absolute", request.url)),
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("URL `{}` has no host", request.url))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
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
        .unwrap_or(default_timeout);
    let exchange = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
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
            .header("host", uri.authority().map(|a| a.as_str()).unwrap_or(&host));
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
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        format!(
            "no response from {host}:{port} within {} ms",
            timeout.as_millis()
        )
    })?
}

impl Host for PluginState {
    async fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, String> {
        let started = Instant::now();
        let http = self.http.clone();
        let result = send(&http.hosts, http.timeout, request).await;
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
