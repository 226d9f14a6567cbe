//! The cache format as libcni 1.1 wrote it for a bridge network set up through go-cni with
//! the CRI's labels (recorded from tests/cni-pod), and the matching rules.

use super::*;

const BRIDGE: &str = r#"{"kind":"cniCacheV1","containerId":"sb1","config":"e30=","ifName":"eth0","networkName":"podnet","cniArgs":[["K8S_POD_NAME","coredns-abc"],["K8S_POD_INFRA_CONTAINER_ID","sb1"],["K8S_POD_UID","uid-1"],["IgnoreUnknown","1"],["K8S_POD_NAMESPACE","kube-system"]],"result":{"cniVersion":"1.0.0","dns":{},"interfaces":[{"mac":"ce:80:58:a8:be:d8","name":"cni0"},{"mac":"8e:31:1d:1b:55:94","name":"veth8445924e"},{"mac":"56:ec:36:8f:14:28","name":"eth0","sandbox":"/run/netns/pod1"}],"ips":[{"address":"10.88.0.2/24","gateway":"10.88.0.1","interface":2}]}}"#;

fn pod(ns: &str, name: &str) -> PodRef {
    PodRef {
        namespace: ns.into(),
        name: name.into(),
    }
}

#[test]
fn a_bridge_entry_names_its_pod_host_veth_and_sandbox() {
    let a = parse(BRIDGE).unwrap().unwrap();
    assert_eq!(a.pod, pod("kube-system", "coredns-abc"));
    assert_eq!(a.container_id, "sb1");
    assert_eq!(a.host_ifaces, ["cni0", "veth8445924e"]);
    assert_eq!(a.sandbox.as_deref(), Some("/run/netns/pod1"));
}

#[test]
fn entries_without_pod_labels_are_not_pods_and_bad_ones_say_why() {
    let podman = BRIDGE
        .replace("K8S_POD_NAME\"", "X_NAME\"")
        .replace("K8S_POD_NAMESPACE", "X_NS");
    assert_eq!(parse(&podman), Ok(None));
    assert!(
        parse("{not json")
            .unwrap_err()
            .contains("not a libcni cache entry")
    );
    let legacy = BRIDGE.replace("cniCacheV1", "cniCacheV0");
    assert!(parse(&legacy).unwrap_err().contains("cniCacheV0"));
}

#[test]
fn only_one_pod_claiming_a_veth_names_it() {
    let a = parse(BRIDGE).unwrap().unwrap();
    let ids = |path: &str| match path {
        "/run/netns/pod1" => Some(4),
        "/run/netns/pod2" => Some(5),
        _ => None,
    };
    // By the host-side name, whatever the peer's namespace id says when the sandbox is gone.
    assert_eq!(
        pod_of([&a].into_iter(), "veth8445924e", None, ids),
        Some(pod("kube-system", "coredns-abc"))
    );
    assert_eq!(pod_of([&a].into_iter(), "veth0", None, ids), None);
    // By the sandbox: the veth's other end is in the pod's namespace.
    let mut by_ns = a.clone();
    by_ns.host_ifaces.clear();
    assert_eq!(
        pod_of([&by_ns].into_iter(), "veth0", Some(4), ids),
        Some(pod("kube-system", "coredns-abc"))
    );
    assert_eq!(pod_of([&by_ns].into_iter(), "veth0", Some(5), ids), None);
    // A stale entry whose sandbox is elsewhere does not name the veth.
    assert_eq!(pod_of([&a].into_iter(), "veth8445924e", Some(5), ids), None);
    // Two pods claim it: unknown, never a guess.
    let mut other = a.clone();
    other.pod = pod("default", "web");
    other.sandbox = None;
    assert_eq!(
        pod_of([&a, &other].into_iter(), "veth8445924e", None, ids),
        None
    );
    // Two attachments of one pod (its loopback and its eth0): still that pod.
    let mut lo = by_ns.clone();
    lo.host_ifaces.clear();
    assert_eq!(
        pod_of([&by_ns, &lo].into_iter(), "veth0", Some(4), ids),
        Some(pod("kube-system", "coredns-abc"))
    );
}
