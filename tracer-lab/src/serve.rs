//! Stand-ins for the cluster's servers (kube-apiserver, konnectivity, kubelet, etcd...): TCP
//! listeners that answer every connection with one line, so the lab's traffic is real TCP
//! to the real ports. Run inside a node's namespace by `tracer lab serve`.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener},
    time::Duration,
};

use anyhow::{Context, Result};

/// Serves `ports` until killed.
pub fn serve(ports: &[u16]) -> Result<()> {
    let mut threads = Vec::new();
    for port in ports {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, *port))
            .with_context(|| format!("listening on {port}"))?;
        let port = *port;
        threads.push(std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut conn = conn;
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 64];
                let _ = conn.read(&mut buf);
                let _ = writeln!(conn, "ok {port}");
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}
