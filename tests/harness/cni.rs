//! Pods set up the way containerd's CRI sets them up: tests/cni-pod (go-cni, libcni and the
//! real CNI plugins of /usr/lib/cni) run inside a test's "node" namespace, with the pod's
//! namespace a test namespace too. libcni writes its result cache (and host-local its leases)
//! below /var/lib/cni: each run gets a private mount namespace with the test's scratch
//! directory bound over /var/lib, so nothing lands in the host's /var/lib.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use super::{NetNs, netns::run};

/// tests/cni-pod, built once per test run with Debian's Go and the go-cni sources from
/// golang-github-containerd-go-cni-dev (offline, GOPATH mode), cached under target/.
pub fn cni_pod() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let bin = tmp.join("cni-pod");
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/cni-pod");
        let built = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if built(&bin).is_none() || built(&bin) < built(&src.join("main.go")) {
            run(Command::new("go")
                .args(["build", "-o"])
                .arg(&bin)
                .arg(".")
                .current_dir(&src)
                .env("GO111MODULE", "off")
                .env("GOPATH", "/usr/share/gocode")
                .env("GOFLAGS", "")
                .env("GOCACHE", tmp.join("go-cache")));
        }
        bin
    })
}

/// A node namespace with one CNI network (its conflist) and the scratch /var/lib libcni and
/// the plugins write to.
pub struct CniNode {
    pub ns: NetNs,
    conf: tempfile::TempDir,
    lib: tempfile::TempDir,
}

/// A bridge network with host-local addresses, as a plain containerd node has.
pub const BRIDGE: &str = r#"{"cniVersion":"1.0.0","name":"podnet","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/24"}]]}}]}"#;

impl CniNode {
    /// A fresh namespace tagged `tag`, with `conflist` as its one network.
    pub fn new(tag: &str, conflist: &str) -> CniNode {
        let node = CniNode {
            ns: NetNs::new(tag),
            conf: tempfile::tempdir().unwrap(),
            lib: tempfile::tempdir().unwrap(),
        };
        node.set_network(conflist);
        node
    }

    /// Replaces the node's network configuration.
    pub fn set_network(&self, conflist: &str) {
        std::fs::write(self.conf.path().join("10-test.conflist"), conflist).unwrap();
    }

    /// The result cache directory (`--cni-cache`).
    pub fn results(&self) -> PathBuf {
        self.lib.path().join("cni/results")
    }

    /// Sets up the network of pod `namespace/name` (sandbox `id`) in `pod`, as the CRI does.
    pub fn setup(&self, pod: &NetNs, id: &str, namespace: &str, name: &str) {
        self.cni("setup", pod, id, namespace, name);
    }

    /// Tears it down again, as the CRI does when the sandbox stops.
    pub fn remove(&self, pod: &NetNs, id: &str, namespace: &str, name: &str) {
        self.cni("remove", pod, id, namespace, name);
    }

    fn cni(&self, action: &str, pod: &NetNs, id: &str, namespace: &str, name: &str) {
        let netns = tracer_netns::path(&pod.name);
        let script = r#"mount --bind "$1" /var/lib && shift && exec "$@""#;
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns.name])
            .args(["unshare", "--mount", "--propagation", "private"])
            .args(["sh", "-c", script, "sh"])
            .arg(self.lib.path())
            .arg(cni_pod())
            .arg(action)
            .arg(self.conf.path())
            .arg(id)
            .arg(netns)
            .args([namespace, name, &format!("uid-{id}")]));
    }
}
