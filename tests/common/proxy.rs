//! A TCP proxy in front of each member's peer port that can cut links between members, for
//! partition tests. Member `i` listens for peers on 127.0.0.(10+i) and sends from that
//! address, so the proxy knows which member a connection comes from.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The loopback address member `index` (1-based) uses for peer traffic.
pub fn member_ip(index: usize) -> String {
    format!("127.0.0.{}", 10 + index)
}

fn member_of(address: &SocketAddr) -> Option<usize> {
    match address.ip() {
        std::net::IpAddr::V4(ip) if ip.octets()[0] == 127 && ip.octets()[3] > 10 => {
            Some(ip.octets()[3] as usize - 10)
        }
        _ => None,
    }
}

#[derive(Default)]
struct Links {
    /// Directed (from, to) member pairs whose traffic is dropped.
    blocked: BTreeSet<(usize, usize)>,
    /// Live proxied connections: (from, to, both sockets) so a partition can cut them.
    open: Vec<(usize, usize, TcpStream, TcpStream)>,
}

#[derive(Clone, Default)]
pub struct Proxy {
    links: Arc<Mutex<Links>>,
    stopped: Arc<AtomicBool>,
}

impl Proxy {
    /// Forwards `listen` to `target`, the peer port of member `to`.
    pub fn forward(&self, listen: SocketAddr, target: SocketAddr, to: usize) {
        let listener = TcpListener::bind(listen)
            .unwrap_or_else(|error| panic!("proxy bind {listen}: {error}"));
        listener.set_nonblocking(true).unwrap();
        let proxy = self.clone();
        thread::spawn(move || {
            while !proxy.stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((inbound, from_address)) => proxy.connect(inbound, from_address, target, to),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    fn connect(&self, inbound: TcpStream, from_address: SocketAddr, target: SocketAddr, to: usize) {
        inbound.set_nonblocking(false).unwrap();
        let from = member_of(&from_address).unwrap_or(0);
        if self.links.lock().unwrap().blocked.contains(&(from, to)) {
            let _ = inbound.shutdown(Shutdown::Both);
            return;
        }
        let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            let _ = inbound.shutdown(Shutdown::Both);
            return;
        };
        self.links.lock().unwrap().open.push((
            from,
            to,
            inbound.try_clone().unwrap(),
            outbound.try_clone().unwrap(),
        ));
        pump(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
        pump(outbound, inbound);
    }

    /// Cuts every link between different groups, both ways; links inside a group stay.
    pub fn partition(&self, groups: &[&[usize]]) {
        let mut links = self.links.lock().unwrap();
        links.blocked.clear();
        for (a, group) in groups.iter().enumerate() {
            for (b, other) in groups.iter().enumerate() {
                if a != b {
                    for from in group.iter() {
                        for to in other.iter() {
                            links.blocked.insert((*from, *to));
                        }
                    }
                }
            }
        }
        let blocked = links.blocked.clone();
        links.open.retain(|(from, to, inbound, outbound)| {
            if blocked.contains(&(*from, *to)) {
                let _ = inbound.shutdown(Shutdown::Both);
                let _ = outbound.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }

    pub fn heal(&self) {
        self.links.lock().unwrap().blocked.clear();
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let mut links = self.links.lock().unwrap();
        for (_, _, inbound, outbound) in links.open.drain(..) {
            let _ = inbound.shutdown(Shutdown::Both);
            let _ = outbound.shutdown(Shutdown::Both);
        }
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    thread::spawn(move || {
        let mut buffer = [0u8; 16384];
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    if to.write_all(&buffer[..read]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
