//! The baseline: a plain UDP relay (no QUIC, no crypto) with the same
//! pairing, and the clients that load it. Every relay figure of the load
//! generator is also given as a ratio to this one, measured in the same run.
//!
//! Datagram: `pair: u32, leg: u8` then the payload. A leg's first datagram
//! registers its address; afterwards each datagram goes to the other leg.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

/// Runs the relay until killed, writing its bound address to `addr_file`.
pub fn run_relay(listen: SocketAddr, addr_file: &Path) -> std::io::Result<()> {
    let socket = UdpSocket::bind(listen)?;
    let s2 = socket2::SockRef::from(&socket);
    let _ = s2.set_recv_buffer_size(4 << 20);
    let _ = s2.set_send_buffer_size(4 << 20);
    std::fs::write(addr_file, socket.local_addr()?.to_string())?;
    let mut legs: HashMap<u32, [Option<SocketAddr>; 2]> = HashMap::new();
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = socket.recv_from(&mut buf)?;
        if n < 5 {
            continue;
        }
        let pair = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let leg = (buf[4] & 1) as usize;
        let slots = legs.entry(pair).or_default();
        slots[leg] = Some(from);
        if let Some(to) = slots[1 - leg] {
            let _ = socket.send_to(&buf[..n], to);
        }
    }
}
