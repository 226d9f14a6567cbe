//! The metrics endpoint of `tracer watch --metrics`: a minimal HTTP/1.1 responder for
//! Prometheus beside the encoder it serves. The watch session publishes its latest counters
//! here every interval; each scrape renders them on its own task, so a slow or hostile client
//! can hold at most its own connection, never the session's loop. Every connection has its
//! own deadlines; the only cap on connections at once is a share of the process's descriptor
//! limit (raised to its maximum), so hundreds of idle or slow clients cannot keep a scrape
//! waiting behind them.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinHandle,
};

use super::{CONTENT_TYPE, RunInfo, Scrape, render};
use crate::{
    events::{PeerEntry, counters::Entry},
    findings::Finding,
    session::DropsView,
};

pub const DEFAULT_ADDR: &str = "127.0.0.1:9464";

/// A request head larger than this is refused: scrapers send a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request, and to take the response.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once at most, whatever the descriptor limit allows.
const MAX_CONNECTIONS: u64 = 16_384;
/// Descriptors kept for everything else the process opens (maps, programs, links, files).
const RESERVED_FDS: u64 = 512;
/// After answering, how long and how much input to take before closing (see `respond`).
const LINGER: Duration = Duration::from_secs(1);
const MAX_DISCARD: usize = 1024 * 1024;

/// `--metrics ADDR`: an address with a port, parsed without name resolution so a typo is
/// reported by the argument parser, before anything is attached.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an address with a port, such as 127.0.0.1:9464 or [::1]:9464")
    })
}

/// The endpoint could not listen.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}")]
pub struct BindError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// What the last interval left for the next scrape.
#[derive(Default)]
struct Latest {
    entries: Vec<Entry>,
    peers: Vec<PeerEntry>,
    addresses: Vec<IpAddr>,
    drops: Option<DropsView>,
    /// The findings of the latest diagnosis (none with `--no-diagnose`).
    findings: Vec<Finding>,
    /// The interfaces watched now, once the session published them.
    ifaces: Option<Vec<(String, u32, String)>>,
    /// The watched veths' pods, once the session published them.
    pods: Option<Vec<(String, String, String)>>,
    /// Counters of interfaces that went away, kept until a scrape has shown them: a scraper
    /// slower than the interval still sees their last values before they disappear.
    gone: Vec<Entry>,
    gone_peers: Vec<PeerEntry>,
}

struct Shared {
    info: RunInfo,
    latest: Mutex<Latest>,
}

impl Shared {
    fn render(&self) -> String {
        let mut latest = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut info = self.info.clone();
        if let Some(ifaces) = &latest.ifaces {
            info.ifaces.clone_from(ifaces);
        }
        if let Some(pods) = &latest.pods {
            info.pods.clone_from(pods);
        }
        let entries: Vec<Entry> = latest.entries.iter().chain(&latest.gone).cloned().collect();
        let peers: Vec<PeerEntry> = latest
            .peers
            .iter()
            .chain(&latest.gone_peers)
            .cloned()
            .collect();
        let text = render(&Scrape {
            info: &info,
            entries: &entries,
            peers: &peers,
            addresses: &latest.addresses,
            drops: latest.drops.as_ref(),
            findings: &latest.findings,
        });
        // Shown once: the next scrape shows them gone.
        latest.gone.clear();
        latest.gone_peers.clear();
        text
    }
}

/// A bound listener, not yet answering: bound before the datapath is attached so a busy
/// port fails the run while nothing is loaded.
pub struct Listener {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Listener {
    pub async fn bind(addr: SocketAddr) -> Result<Listener, BindError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| BindError { addr, source })?;
        // Port 0 picks a free port: say which.
        let addr = listener.local_addr().unwrap_or(addr);
        if !addr.ip().is_loopback() {
            log::warn!("metrics on {addr} are reachable from the network, not only from this node");
        }
        Ok(Listener { listener, addr })
    }

    /// The address it listens on (the port chosen when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts answering scrapes.
    pub fn serve(self, info: RunInfo) -> MetricsServer {
        let shared = Arc::new(Shared {
            info,
            latest: Mutex::default(),
        });
        log::info!("serving metrics on http://{}/metrics", self.addr);
        let task = tokio::spawn(accept(self.listener, shared.clone()));
        MetricsServer { shared, task }
    }
}

/// The running endpoint. Dropping it closes the listener.
pub struct MetricsServer {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Replaces what scrapes see with the counters, drops and findings of the interval just
    /// ended.
    pub fn publish(&self, update: Publish) {
        self.shared.publish(update);
    }
}

impl Shared {
    fn publish(&self, update: Publish) {
        // Only the cumulative totals are shown; the per-interval flow lists stay behind.
        let drops = update.drops.map(|d| DropsView {
            totals: d.totals.clone(),
            peers: d.peers.clone(),
            stats: d.stats,
            ..Default::default()
        });
        let mut latest = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = |e: &Entry| (e.iface.clone(), e.direction, e.class.clone(), e.inner);
        let now: std::collections::HashSet<_> = update.entries.iter().map(key).collect();
        let old = std::mem::replace(&mut latest.entries, update.entries);
        latest.gone.retain(|e| !now.contains(&key(e)));
        latest
            .gone
            .extend(old.into_iter().filter(|e| !now.contains(&key(e))));
        let peer_key = |p: &PeerEntry| (p.iface.clone(), p.direction, p.class.clone(), p.peer);
        let now: std::collections::HashSet<_> = update.peers.iter().map(peer_key).collect();
        let old = std::mem::replace(&mut latest.peers, update.peers);
        latest.gone_peers.retain(|p| !now.contains(&peer_key(p)));
        latest
            .gone_peers
            .extend(old.into_iter().filter(|p| !now.contains(&peer_key(p))));
        latest.ifaces = Some(update.ifaces);
        latest.pods = Some(update.pods);
        latest.addresses = update.addresses;
        latest.drops = drops;
        latest.findings = update.findings.to_vec();
    }
}

/// What one interval hands the endpoint.
pub struct Publish<'a> {
    pub entries: Vec<Entry>,
    pub peers: Vec<PeerEntry>,
    /// The node's addresses now.
    pub addresses: Vec<IpAddr>,
    /// The interfaces watched now: name, index, ingress hook.
    pub ifaces: Vec<(String, u32, String)>,
    /// The watched veths whose pod is known: interface, pod namespace, pod name.
    pub pods: Vec<(String, String, String)>,
    pub drops: Option<&'a DropsView>,
    pub findings: &'a [Finding],
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How many connections may be open at once: half of what the descriptor limit leaves.
fn connection_slots() -> usize {
    let open_files = crate::sys::limits::raise_open_files();
    let slots = (open_files.saturating_sub(RESERVED_FDS) / 2).clamp(64, MAX_CONNECTIONS);
    log::debug!("metrics endpoint: up to {slots} connections at once");
    slots as usize
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(connection_slots()));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = respond(stream, &shared).await {
                        log::debug!("metrics connection: {e}");
                    }
                });
            }
            Err(e) => {
                // Out of descriptors and the like: pause instead of spinning on the error.
                log::warn!("metrics endpoint: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads one request and answers it; the connection closes afterwards.
async fn respond(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let reply = match tokio::time::timeout(IO_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => Reply::status(408, "Request Timeout"),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(None)) => Reply::status(431, "Request Header Fields Too Large"),
        Ok(Ok(Some(head))) => route(&head, shared),
    };
    tokio::time::timeout(IO_TIMEOUT, async {
        stream.write_all(&reply.bytes()).await?;
        stream.shutdown().await
    })
    .await
    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))?;
    // Closing with unread input (an oversized head) makes the kernel send a reset, which can
    // destroy the answer before the client reads it: take what is still coming, boundedly.
    let _ = tokio::time::timeout(LINGER, discard(&mut stream)).await;
    Ok(())
}

/// Reads and drops input until the client closes, at most `MAX_DISCARD` bytes.
async fn discard(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while total < MAX_DISCARD {
        match stream.read(&mut buf).await? {
            0 => break,
            n => total += n,
        }
    }
    Ok(())
}

/// The request line and headers, up to the blank line; `None` when they pass `MAX_HEAD`.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            // The client closed early: answer what arrived, a bad request at worst.
            return Ok(Some(head));
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

fn route(head: &[u8], shared: &Shared) -> Reply {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Reply::status(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") {
        return Reply::status(400, "Bad Request");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut r = Reply::status(405, "Method Not Allowed");
            r.allow = true;
            return r;
        }
    };
    // Prometheus may add query parameters; none change what is served.
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let mut reply = match path {
        "/metrics" => Reply {
            code: 200,
            reason: "OK",
            content_type: CONTENT_TYPE,
            body: shared.render(),
            allow: false,
            head_only: false,
        },
        "/" => Reply::text(200, "OK", "tracer: Prometheus metrics are at /metrics\n"),
        _ => Reply::status(404, "Not Found"),
    };
    reply.head_only = head_only;
    reply
}

struct Reply {
    code: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
    /// Adds `Allow: GET, HEAD` (405).
    allow: bool,
    /// HEAD: the headers of the GET answer, no body.
    head_only: bool,
}

impl Reply {
    fn text(code: u16, reason: &'static str, body: &str) -> Reply {
        Reply {
            code,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
            allow: false,
            head_only: false,
        }
    }

    fn status(code: u16, reason: &'static str) -> Reply {
        Reply::text(code, reason, &format!("{code} {reason}\n"))
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.code,
            self.reason,
            self.content_type,
            self.body.len()
        );
        if self.allow {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        if !self.head_only {
            out.push_str(&self.body);
        }
        out.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            info: RunInfo {
                node: "node-1".into(),
                version: "0.1.0".into(),
                kernel: "6.18".into(),
                ifaces: vec![],
                pods: vec![],
            },
            latest: Mutex::default(),
        }
    }

    fn answer(request: &str) -> String {
        String::from_utf8(route(request.as_bytes(), &shared()).bytes()).unwrap()
    }

    #[test]
    fn metrics_with_length_and_type() {
        let r = answer("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(head.contains("Connection: close"));
        assert!(
            body.contains(
                "tracer_build_info{node=\"node-1\",version=\"0.1.0\",kernel=\"6.18\"} 1\n"
            )
        );
    }

    #[test]
    fn other_paths_and_methods() {
        assert!(answer("GET /metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200"));
        assert!(answer("GET / HTTP/1.1\r\n\r\n").ends_with("are at /metrics\n"));
        assert!(answer("GET /favicon.ico HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let post = answer("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"));
        assert!(answer("garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
        assert!(answer("GET /metrics SPDY/3\r\n\r\n").starts_with("HTTP/1.1 400"));
        let head = answer("HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(head.ends_with("\r\n\r\n") && !head.contains("tracer_build_info"));
        assert!(!head.contains("Content-Length: 0\r\n"));
    }

    #[test]
    fn a_removed_interface_stays_until_a_scrape_showed_it() {
        let shared = shared();
        let entry = |iface: &str, packets| {
            let mut e = Entry::eth0_ingress("kube-apiserver", false, packets, packets * 60, [0; 8]);
            e.iface = iface.into();
            e
        };
        let publish = |entries: Vec<Entry>, ifaces: &[&str]| {
            shared.publish(Publish {
                entries,
                peers: vec![],
                addresses: vec![],
                ifaces: ifaces
                    .iter()
                    .map(|i| ((*i).to_string(), 7, "tc".into()))
                    .collect(),
                pods: vec![],
                drops: None,
                findings: &[],
            });
        };
        let veth = "tracer_packets_total{node=\"node-1\",iface=\"veth1\",direction=\"ingress\",class=\"kube-apiserver\"} 5\n";
        publish(
            vec![entry("eth0", 3), entry("veth1", 5)],
            &["eth0", "veth1"],
        );
        assert!(shared.render().contains(veth));
        // veth1 goes; two intervals pass before the next scrape: it is still shown, once.
        publish(vec![entry("eth0", 4)], &["eth0"]);
        publish(vec![entry("eth0", 5)], &["eth0"]);
        let text = shared.render();
        assert!(text.contains(veth), "{text}");
        assert!(
            !text.contains("tracer_interface_info{node=\"node-1\",iface=\"veth1\""),
            "{text}"
        );
        let text = shared.render();
        assert!(!text.contains("veth1"), "{text}");
        assert!(
            text.contains("iface=\"eth0\",direction=\"ingress\",class=\"kube-apiserver\"} 5\n")
        );
    }

    #[test]
    fn addresses() {
        assert!(parse_addr("127.0.0.1:9464").is_ok());
        assert!(parse_addr("[::1]:9464").is_ok());
        assert!(parse_addr("localhost").unwrap_err().contains("such as"));
    }
}
