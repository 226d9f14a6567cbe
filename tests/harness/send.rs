//! Sending exact frames out of an interface of a namespace with an AF_PACKET socket. Frames
//! go out in small paced batches so the receiver's backlog queue never overflows: every frame
//! sent reaches the traced interface. Or streams of frames at steady rates, from a thread, for
//! as long as a test needs traffic flowing.

use std::{
    ffi::CString,
    mem,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bytes::Bytes;

use super::NetNs;

const BATCH: usize = 50;

/// An AF_PACKET socket bound for sending out of one interface of the calling thread's
/// namespace.
struct PacketSocket {
    fd: i32,
    addr: libc::sockaddr_ll,
}

impl PacketSocket {
    fn open(iface: &str, ns: &str) -> Self {
        let name = CString::new(iface).unwrap();
        // SAFETY: plain libc calls; the descriptor is closed on drop.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr());
            assert_ne!(ifindex, 0, "no interface {iface} in {ns}");
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let mut addr: libc::sockaddr_ll = mem::zeroed();
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = ifindex as i32;
            addr.sll_halen = 6;
            PacketSocket { fd, addr }
        }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: sends from a live buffer to an address we own.
        let sent = unsafe {
            libc::sendto(
                self.fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&raw const self.addr).cast(),
                mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            sent,
            frame.len() as isize,
            "sendto: {}",
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: our descriptor, closed once.
        unsafe { libc::close(self.fd) };
    }
}

pub fn send_frames(ns: &NetNs, iface: &str, frames: &[Bytes]) {
    ns.enter(|| {
        let socket = PacketSocket::open(iface, &ns.name);
        for (i, frame) in frames.iter().enumerate() {
            socket.send(frame);
            if (i + 1) % BATCH == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
}

/// Frames at a steady rate: `make(n)` builds the n-th frame of the stream.
pub struct Stream {
    pub per_sec: f64,
    pub make: Box<dyn Fn(u64) -> Bytes + Send>,
}

/// Streams of frames sent from a thread inside a namespace until stopped. Each stream is
/// paced against the clock (the frames due are its rate times the time since the rate was
/// set), not by counting sleeps, so its rate over any window of a second or more is exact to
/// within a frame or two whatever the scheduler does.
pub struct Paced {
    rates: Arc<Mutex<Vec<f64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<u64>>>,
}

/// How often the sender wakes up to send what is due.
const TICK: Duration = Duration::from_millis(2);

impl Paced {
    pub fn start(ns: &NetNs, iface: &str, streams: Vec<Stream>) -> Paced {
        let rates = Arc::new(Mutex::new(
            streams.iter().map(|s| s.per_sec).collect::<Vec<f64>>(),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let (iface, ns_name) = (iface.to_string(), ns.name.clone());
        let thread = {
            let (rates, stop) = (rates.clone(), stop.clone());
            std::thread::spawn(move || {
                tracer_netns::enter(&ns_name).unwrap_or_else(|e| panic!("{e:#}"));
                let socket = PacketSocket::open(&iface, &ns_name);
                let n = streams.len();
                // Per stream: the rate in force, since when, frames sent since then, in all.
                let mut rate = vec![0.0; n];
                let mut since = vec![Instant::now(); n];
                let mut sent_since = vec![0u64; n];
                let mut sent = vec![0u64; n];
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    let wanted = rates.lock().unwrap().clone();
                    for i in 0..n {
                        #[allow(
                            clippy::float_cmp,
                            reason = "a rate is copied from the one the test set, never computed: any difference is a change"
                        )]
                        let changed = wanted[i] != rate[i];
                        if changed {
                            (rate[i], since[i], sent_since[i]) = (wanted[i], now, 0);
                        }
                        let due = (now.duration_since(since[i]).as_secs_f64() * rate[i]) as u64;
                        while sent_since[i] < due {
                            socket.send(&(streams[i].make)(sent[i]));
                            sent_since[i] += 1;
                            sent[i] += 1;
                        }
                    }
                    std::thread::sleep(TICK);
                }
                sent
            })
        };
        Paced {
            rates,
            stop,
            thread: Some(thread),
        }
    }

    /// Changes a stream's rate from now on.
    pub fn set_rate(&self, stream: usize, per_sec: f64) {
        self.rates.lock().unwrap()[stream] = per_sec;
    }

    /// Stops sending; the frames sent per stream.
    pub fn stop(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        thread.join().expect("the sender thread panicked")
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        // A test that fails while traffic flows still stops its sender; a sender that
        // panicked has reported it already.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
