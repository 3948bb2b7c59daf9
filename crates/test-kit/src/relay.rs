//! A TCP relay the test controls: a replica's `replicaof` points at it, and the test
//! cuts the replication link (every connection closed, new ones refused) while the
//! master keeps answering clients, then mends it.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A relay from a free loopback port to `127.0.0.1:<target>`.
pub struct Relay {
    port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    open: AtomicBool,
    stopped: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
}

impl Shared {
    fn close_all(&self) {
        if let Ok(mut streams) = self.streams.lock() {
            for stream in streams.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Relay {
    /// Start relaying to `target` on loopback.
    pub fn start(target: u16) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the relay");
        let port = listener.local_addr().expect("relay address").port();
        listener.set_nonblocking(true).expect("non-blocking relay listener");
        let shared = Arc::new(Shared {
            open: AtomicBool::new(true),
            stopped: AtomicBool::new(false),
            streams: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || accept(listener, target, accepting));
        Self { port, shared }
    }

    /// The port to point `replicaof` at.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cut the link: close every relayed connection and refuse new ones.
    pub fn cut(&self) {
        self.shared.open.store(false, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Let connections through again.
    pub fn mend(&self) {
        self.shared.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.cut();
    }
}

fn accept(listener: TcpListener, target: u16, shared: Arc<Shared>) {
    while !shared.stopped.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // The poll interval of a real socket.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(_) => return,
        };
        if !shared.open.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let _ = client.set_nonblocking(false);
        let Ok(upstream) = TcpStream::connect((Ipv4Addr::LOCALHOST, target)) else {
            continue;
        };
        let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
        if let Ok(mut streams) = shared.streams.lock() {
            streams.extend(client.try_clone());
            streams.extend(upstream.try_clone());
        }
        pipe(client, u2);
        pipe(upstream, c2);
    }
}

/// Copy `from` into `to` until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
