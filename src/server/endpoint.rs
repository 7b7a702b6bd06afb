//! Builds what the QUIC endpoint needs: the UDP socket (with large kernel
//! buffers, via socket2) and quinn's server configuration (TLS 1.3, ALPN,
//! idle timeout, datagram buffers); and the ingress's HTTPS configuration.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::QuicServerConfig;
use quinn::rustls;
use socket2::{Domain, Protocol, Socket, Type};

use super::identity::TlsIdentity;
use super::ServerError;
use crate::wire::ALPN;

/// Datagram buffers per connection: about 2 s of 20 ms audio frames from a
/// dozen peers; beyond that the oldest frames are dropped.
const DATAGRAM_BUFFER: usize = 256 * 1024;

/// quinn's server configuration: TLS 1.3 with the switch's certificate,
/// the ALPN, one control stream per connection, datagram buffers.
pub fn server_config(
    identity: &TlsIdentity,
    idle_timeout: Duration,
) -> Result<Arc<quinn::ServerConfig>, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| ServerError::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(
            idle_timeout
                .try_into()
                .map_err(|_| ServerError::Config("idle timeout too large".into()))?,
        ))
        .max_concurrent_bidi_streams(1u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .datagram_receive_buffer_size(Some(DATAGRAM_BUFFER))
        .datagram_send_buffer_size(DATAGRAM_BUFFER);
    server.transport_config(Arc::new(transport));
    Ok(Arc::new(server))
}

/// Binds the UDP socket, with kernel buffers as large as allowed.
pub fn bind_socket(listen: SocketAddr, socket_buffer: usize) -> Result<UdpSocket, ServerError> {
    let socket = Socket::new(
        Domain::for_address(listen),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .map_err(|e| ServerError::Bind(listen, e))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(socket_buffer);
    let _ = socket.set_send_buffer_size(socket_buffer);
    socket
        .bind(&listen.into())
        .map_err(|e| ServerError::Bind(listen, e))?;
    Ok(socket.into())
}

/// The ingress's HTTPS configuration: the same certificate as QUIC, TLS 1.3,
/// ALPN `h2` then `http/1.1`.
pub fn https_config(identity: &TlsIdentity) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}
