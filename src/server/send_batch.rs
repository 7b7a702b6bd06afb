//! Packets for many connections, sent with one `sendmmsg` per pass of the
//! network loop instead of one `sendmsg` each: audio packets go to many
//! destinations and cannot be coalesced (GSO needs one destination), but
//! their system calls can. Each packet keeps what quinn-udp would have set
//! for it: its ECN bits and its source address (control messages).
//! Packets with a GSO segment size go out through quinn-udp unchanged.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};

use quinn::udp::{self, UdpSocketState};

/// Most packets handed to the kernel in one call.
const MAX_BATCH: usize = 64;
/// Packets kept for a socket that would block before new ones are dropped.
const UNSENT_LIMIT: usize = 4096;

/// One packet waiting in the batch.
struct Packet {
    destination: SocketAddr,
    ecn: Option<udp::EcnCodepoint>,
    src_ip: Option<IpAddr>,
    segment_size: Option<usize>,
    contents: Vec<u8>,
}

impl Packet {
    fn transmit(&self) -> udp::Transmit<'_> {
        udp::Transmit {
            destination: self.destination,
            ecn: self.ecn,
            contents: &self.contents,
            segment_size: self.segment_size,
            src_ip: self.src_ip,
        }
    }
}

/// Packets queued in one pass, in order.
#[derive(Default)]
pub struct SendBatch {
    packets: VecDeque<Packet>,
    /// Spare packet buffers, to keep the hot path free of allocation.
    spare: Vec<Vec<u8>>,
    /// Set when the kernel refused our control messages (EINVAL): send one
    /// by one through quinn-udp, which knows how to fall back.
    one_by_one: bool,
}

impl SendBatch {
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Queues a copy of a packet (an endpoint's stateless answer).
    pub fn push(&mut self, transmit: &quinn_proto::Transmit, contents: &[u8]) {
        let mut buf = self.take_buffer();
        buf.extend_from_slice(contents);
        self.push_owned(transmit, buf);
    }

    /// An empty buffer to build a packet in, from the spares when any.
    pub fn take_buffer(&mut self) -> Vec<u8> {
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf
    }

    /// Returns a buffer `take_buffer` gave out and nothing was built in.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < MAX_BATCH {
            self.spare.push(buf);
        }
    }

    /// Queues a packet built in `contents`, unless the queue is full of
    /// packets a blocked socket has not taken: then it is dropped, as the
    /// network would, and QUIC recovers it.
    pub fn push_owned(&mut self, transmit: &quinn_proto::Transmit, mut contents: Vec<u8>) {
        if self.packets.len() >= UNSENT_LIMIT {
            self.recycle(contents);
            return;
        }
        contents.truncate(transmit.size);
        self.packets.push_back(Packet {
            destination: transmit.destination,
            ecn: transmit.ecn.map(|ecn| match ecn {
                quinn_proto::EcnCodepoint::Ect0 => udp::EcnCodepoint::Ect0,
                quinn_proto::EcnCodepoint::Ect1 => udp::EcnCodepoint::Ect1,
                quinn_proto::EcnCodepoint::Ce => udp::EcnCodepoint::Ce,
            }),
            src_ip: transmit.src_ip,
            segment_size: transmit.segment_size.filter(|s| *s < contents.len()),
            contents,
        });
    }

    /// Sends what is queued; what the socket would not take stays queued
    /// for its next writability.
    pub fn flush(&mut self, socket: &tokio::net::UdpSocket, udp: &UdpSocketState) {
        while !self.packets.is_empty() {
            let front = &self.packets[0];
            let result = if self.one_by_one || front.segment_size.is_some() {
                socket
                    .try_io(tokio::io::Interest::WRITABLE, || {
                        udp.send(socket.into(), &front.transmit())
                    })
                    .map(|()| 1)
            } else {
                let run = self
                    .packets
                    .iter()
                    .take(MAX_BATCH)
                    .take_while(|p| p.segment_size.is_none())
                    .count();
                socket.try_io(tokio::io::Interest::WRITABLE, || {
                    sendmmsg(socket, self.packets.range(..run))
                })
            };
            match result {
                Ok(sent) => self.retire(sent),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && !self.one_by_one => {
                    tracing::debug!("sendmmsg refused the control messages: sending one by one");
                    self.one_by_one = true;
                }
                Err(e) => {
                    // Unreachable destination and the like: the packet is
                    // lost, as on the network.
                    tracing::debug!(error = %e, "QUIC send failed");
                    self.retire(1);
                }
            }
        }
    }

    fn retire(&mut self, count: usize) {
        for _ in 0..count {
            if let Some(packet) = self.packets.pop_front() {
                self.recycle(packet.contents);
            }
        }
    }
}

/// Room for the control messages of one packet: ECN, then the source
/// address (in6_pktinfo is the largest).
const CMSG_ROOM: usize = 64;

#[repr(C, align(8))]
struct ControlBuf([u8; CMSG_ROOM]);

/// Sends a run of packets with one `sendmmsg`; the count the kernel took.
fn sendmmsg<'a>(
    socket: &tokio::net::UdpSocket,
    packets: impl Iterator<Item = &'a Packet>,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;

    let packets: Vec<&Packet> = packets.collect();
    let count = packets.len();
    let names: Vec<socket2::SockAddr> = packets
        .iter()
        .map(|p| socket2::SockAddr::from(p.destination))
        .collect();
    // SAFETY: plain C structs, all-zero is their empty state.
    let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; count];
    let mut controls: Vec<ControlBuf> = (0..count).map(|_| ControlBuf([0; CMSG_ROOM])).collect();
    let mut headers: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; count];
    for i in 0..count {
        let packet = packets[i];
        iovs[i].iov_base = packet.contents.as_ptr() as *mut libc::c_void;
        iovs[i].iov_len = packet.contents.len();
        let hdr = &mut headers[i].msg_hdr;
        // sendmmsg does not write through msg_name; the type is shared
        // with recvmmsg.
        hdr.msg_name = names[i].as_ptr() as *mut libc::c_void;
        hdr.msg_namelen = names[i].len();
        hdr.msg_iov = &mut iovs[i];
        hdr.msg_iovlen = 1;
        hdr.msg_control = controls[i].0.as_mut_ptr() as *mut libc::c_void;
        hdr.msg_controllen = CMSG_ROOM as _;
        // SAFETY: the header points at a buffer of CMSG_ROOM bytes,
        // aligned for cmsghdr, and encode_controls asserts each message
        // fits.
        unsafe { encode_controls(hdr, packet) };
    }
    // SAFETY: every header points at live buffers owned by this frame.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            headers.as_mut_ptr(),
            count as libc::c_uint,
            0,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(sent as usize)
}

/// Writes a packet's ECN and source-address control messages, as quinn-udp
/// does for one `sendmsg`.
///
/// # Safety
/// `hdr.msg_control` must point at `hdr.msg_controllen` writable bytes,
/// aligned for `cmsghdr`.
unsafe fn encode_controls(hdr: &mut libc::msghdr, packet: &Packet) {
    let mut used = 0usize;
    let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
    let mut push = |level: libc::c_int, kind: libc::c_int, data: &[u8]| {
        let space = libc::CMSG_SPACE(data.len() as u32) as usize;
        assert!(used + space <= CMSG_ROOM, "control buffer too small");
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(data.len() as u32) as _;
        std::ptr::copy_nonoverlapping(data.as_ptr(), libc::CMSG_DATA(cmsg), data.len());
        used += space;
        // msg_controllen still spans the whole room here, as CMSG_NXTHDR
        // needs; it is cut to what was used at the end.
        cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
    };
    let ecn = packet.ecn.map_or(0, |e| e as libc::c_int);
    let ipv4 = packet.destination.is_ipv4()
        || matches!(packet.destination.ip(), IpAddr::V6(a) if a.to_ipv4_mapped().is_some());
    if ipv4 {
        push(libc::IPPROTO_IP, libc::IP_TOS, &ecn.to_ne_bytes());
    } else {
        push(libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &ecn.to_ne_bytes());
    }
    match packet.src_ip {
        Some(IpAddr::V4(v4)) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            push(libc::IPPROTO_IP, libc::IP_PKTINFO, as_bytes(&info));
        }
        Some(IpAddr::V6(v6)) => {
            let info = libc::in6_pktinfo {
                ipi6_ifindex: 0,
                ipi6_addr: libc::in6_addr {
                    s6_addr: v6.octets(),
                },
            };
            push(libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, as_bytes(&info));
        }
        None => {}
    }
    hdr.msg_controllen = used as _;
}

fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: a Copy C struct viewed as its bytes, for copying only.
    unsafe { std::slice::from_raw_parts(value as *const T as *const u8, std::mem::size_of::<T>()) }
}
