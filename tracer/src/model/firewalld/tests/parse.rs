//! Reading files: the real lab configurations over the stock files, overrides, malformed files
//! and firewalld.conf.

use std::path::Path;

use super::super::{PortProto, ReadProblem, Target, read_permanent};
use super::{fixture_root, problems_text, read_clean, stock_root, strs, write};

const XML: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

fn file_is(p: Option<&Path>, root: &Path, rel: &str) {
    assert_eq!(p, Some(root.join(rel).as_path()), "file of {rel}");
}

#[test]
fn k0s_calico_worker_over_stock_files() {
    let t = fixture_root("k0s-calico-worker");
    let p = read_clean(t.path());
    let names: Vec<&str> = p.zones.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "block", "dmz", "drop", "external", "home", "internal", "public", "trusted", "work"
        ],
        "stock zones plus the node's"
    );
    let public = &p.zones["public"];
    assert_eq!(
        public.services,
        strs(&["dhcpv6-client", "k0s-worker", "ssh"])
    );
    assert!(public.masquerade && public.forward, "{public:?}");
    assert_eq!(public.interfaces, strs(&["eth0"]));
    assert_eq!(public.sources, strs(&["10.244.0.0/16", "10.96.0.0/12"]));
    assert_eq!(public.target, Target::Default);
    file_is(
        public.file.as_deref(),
        t.path(),
        "etc/firewalld/zones/public.xml",
    );
    file_is(
        p.zones["block"].file.as_deref(),
        t.path(),
        "usr/lib/firewalld/zones/block.xml",
    );

    let k0s = &p.services["k0s-worker"];
    assert_eq!(
        k0s.ports,
        [PortProto::new("179", "tcp"), PortProto::new("10250", "tcp")],
        "the blocked scenario's service lacks 4789/udp"
    );
    file_is(
        k0s.file.as_deref(),
        t.path(),
        "etc/firewalld/services/k0s-worker.xml",
    );
    assert_eq!(p.services["ssh"].ports, [PortProto::new("22", "tcp")]);
    assert!(
        p.services.len() > 200,
        "stock services: {}",
        p.services.len()
    );

    assert_eq!(p.conf.default_zone, "public");
    assert_eq!(p.conf.backend, "nftables");
    file_is(
        p.conf.file.as_deref(),
        t.path(),
        "etc/firewalld/firewalld.conf",
    );
}

#[test]
fn k3s_segregated_worker_trusted_and_stock_targets() {
    let t = fixture_root("k3s-segregated-worker");
    let p = read_clean(t.path());
    let trusted = &p.zones["trusted"];
    assert_eq!(trusted.target, Target::Accept);
    assert_eq!(trusted.interfaces, strs(&["eth1"]));
    assert_eq!(trusted.sources, strs(&["10.42.0.0/16", "10.43.0.0/16"]));
    assert_eq!(trusted.services, strs(&["mdns", "ssh"]));
    let public = &p.zones["public"];
    let ports: Vec<String> = public.ports.iter().map(ToString::to_string).collect();
    assert_eq!(
        ports,
        [
            "80/tcp", "443/tcp", "6379/tcp", "9095/tcp", "8125/tcp", "8125/udp"
        ]
    );
    assert!(!public.masquerade);
    assert_eq!(p.zones["block"].target, Target::Reject);
    assert_eq!(p.zones["drop"].target, Target::Drop);
    assert_eq!(p.zones["work"].target, Target::Default);
}

#[test]
fn etc_files_replace_stock_ones_of_the_same_name() {
    let t = stock_root();
    let stock = read_clean(t.path());
    assert_eq!(
        stock.zones["public"].services,
        strs(&["ssh", "dhcpv6-client"]),
        "stock public"
    );
    assert!(stock.zones["public"].forward);
    write(
        t.path(),
        "etc/firewalld/zones/public.xml",
        &format!("{XML}<zone>\n  <service name=\"http\"/>\n</zone>\n"),
    );
    write(
        t.path(),
        "etc/firewalld/services/ssh.xml",
        &format!("{XML}<service>\n  <port protocol=\"tcp\" port=\"2222\"/>\n</service>\n"),
    );
    // What firewall-cmd --permanent leaves behind: never read.
    write(
        t.path(),
        "etc/firewalld/zones/public.xml.old",
        "<zone><broken",
    );
    let p = read_clean(t.path());
    let public = &p.zones["public"];
    assert_eq!(public.services, strs(&["http"]), "replaced, not merged");
    assert!(!public.forward, "no <forward/> in the replacement");
    file_is(
        public.file.as_deref(),
        t.path(),
        "etc/firewalld/zones/public.xml",
    );
    assert_eq!(p.services["ssh"].ports, [PortProto::new("2222", "tcp")]);
    assert_eq!(p.zones.len(), stock.zones.len());
}

fn problem_for<'a>(problems: &'a [ReadProblem], file: &str) -> &'a ReadProblem {
    let hits: Vec<&ReadProblem> = problems.iter().filter(|p| p.file.ends_with(file)).collect();
    assert_eq!(hits.len(), 1, "one problem for {file}, got: {problems:#?}");
    hits[0]
}

#[test]
fn malformed_zone_files_are_reported_with_positions() {
    let t = stock_root();
    let zones = "etc/firewalld/zones";
    write(
        t.path(),
        &format!("{zones}/unclosed.xml"),
        &format!("{XML}<zone>\n  <short>Unclosed</short>\n  <service name=\"ssh\">\n</zone>\n"),
    );
    write(
        t.path(),
        &format!("{zones}/badattr.xml"),
        &format!(
            "{XML}<zone>\n  <service name=\"ssh\"/>\n  <port prot=\"tcp\" port=\"80\"/>\n</zone>\n"
        ),
    );
    write(
        t.path(),
        &format!("{zones}/unquoted.xml"),
        &format!("{XML}<zone>\n  <port port=80 protocol=\"tcp\"/>\n</zone>\n"),
    );
    write(
        t.path(),
        &format!("{zones}/badtarget.xml"),
        &format!("{XML}<zone target=\"REJECT\">\n  <service name=\"ssh\"/>\n</zone>\n"),
    );
    write(
        t.path(),
        &format!("{zones}/badport.xml"),
        &format!("{XML}<zone>\n\n    <port port=\"70000\" protocol=\"tcp\"/>\n</zone>\n"),
    );
    write(
        t.path(),
        &format!("{zones}/good.xml"),
        &format!("{XML}<zone>\n  <port port=\"6443\" protocol=\"tcp\"/>\n</zone>\n"),
    );
    // A broken replacement of a stock zone: the stock one stays (it is what firewalld's
    // fallback runs).
    write(
        t.path(),
        &format!("{zones}/public.xml"),
        &format!("{XML}<zone>\n  <servce name=\"ssh\"/>\n</zone>\n"),
    );
    let p = read_permanent(t.path());
    let report = problems_text(&p);
    assert_eq!(p.problems.len(), 6, "problems:\n{report}");

    let at = |file: &str, line: u32, col: u32, words: &str| {
        let pr = problem_for(&p.problems, file);
        assert_eq!(
            (pr.line, pr.column),
            (Some(line), Some(col)),
            "position of {pr}"
        );
        assert!(pr.message.contains(words), "{pr} should mention {words:?}");
        assert!(
            pr.to_string()
                .starts_with(&format!("{}:{line}:{col}: ", pr.file.display())),
            "display: {pr}"
        );
    };
    at("unclosed.xml", 5, 1, "not well-formed");
    at("badattr.xml", 4, 3, "missing attribute protocol");
    at("unquoted.xml", 3, 14, "not well-formed");
    at("badtarget.xml", 2, 1, "invalid zone target \"REJECT\"");
    at("badport.xml", 4, 5, "too big");
    at("public.xml", 3, 3, "unexpected element <servce>");

    for bad in ["unclosed", "badattr", "unquoted", "badtarget", "badport"] {
        assert!(!p.zones.contains_key(bad), "{bad} must not be in the model");
    }
    assert_eq!(p.zones["good"].ports, [PortProto::new("6443", "tcp")]);
    file_is(
        p.zones["public"].file.as_deref(),
        t.path(),
        "usr/lib/firewalld/zones/public.xml",
    );
    assert!(p.zones.contains_key("trusted") && p.zones.contains_key("block"));
}

#[test]
fn firewalld_conf_problems_and_defaults() {
    let t = stock_root();
    let conf = "etc/firewalld/firewalld.conf";
    write(
        t.path(),
        conf,
        "# comment\nDefaultZone = trusted\nthis is not a setting\nFirewallBackend=ebpf\nNoSuchKey=1\nLogDenied=\nDefaultZone=drop\n; other comment\nLogDenied=all\n",
    );
    let p = read_permanent(t.path());
    assert_eq!(p.conf.default_zone, "trusted", "first definition wins");
    assert_eq!(p.conf.backend, "nftables", "invalid backend: default");
    // The empty LogDenied (line 6) is ignored, so LogDenied=all (line 9) is the first
    // definition and no repeat: no problem for line 9.
    let lines: Vec<Option<u32>> = p.problems.iter().map(|x| x.line).collect();
    assert_eq!(
        lines,
        [Some(3), Some(5), Some(6), Some(7), Some(4)],
        "problems:\n{}",
        problems_text(&p)
    );
    assert!(
        p.problems[0].message.contains("not a KEY=VALUE"),
        "{}",
        p.problems[0]
    );
    assert!(p.problems[4].message.contains("ebpf"), "{}", p.problems[4]);

    // No firewalld.conf at all: firewalld's built-in defaults, nothing to report.
    std::fs::remove_file(t.path().join(conf)).expect("rm conf");
    let p = read_clean(t.path());
    assert_eq!(
        (p.conf.default_zone.as_str(), p.conf.backend.as_str()),
        ("public", "nftables")
    );
    assert_eq!(p.conf.file, None);

    // A default zone that does not exist: firewalld falls back to public.
    write(
        t.path(),
        conf,
        "FirewallBackend=IPTables\nDefaultZone=nope\n",
    );
    let p = read_permanent(t.path());
    assert_eq!(p.conf.default_zone, "public");
    assert_eq!(p.conf.backend, "iptables");
    let pr = problem_for(&p.problems, "firewalld.conf");
    assert_eq!(pr.line, Some(2), "{pr}");
    assert!(pr.message.contains("\"nope\""), "{pr}");

    // A problem with a value names the line that set it, not an earlier line of the same key
    // that firewalld ignored.
    write(
        t.path(),
        conf,
        "DefaultZone=\nDefaultZone=nope\nFirewallBackend = a = b\nFirewallBackend=ebpf\n",
    );
    let p = read_permanent(t.path());
    assert_eq!(
        (p.conf.default_zone.as_str(), p.conf.backend.as_str()),
        ("public", "nftables")
    );
    let at: Vec<(Option<u32>, &str)> = p
        .problems
        .iter()
        .map(|x| (x.line, x.message.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (
                Some(1),
                "DefaultZone has no value; firewalld ignores the line"
            ),
            (
                Some(3),
                "\"FirewallBackend = a = b\" is not a KEY=VALUE line; firewalld ignores it"
            ),
            (
                Some(4),
                "FirewallBackend \"ebpf\" is neither nftables nor iptables; firewalld uses nftables"
            ),
            (
                Some(2),
                "DefaultZone \"nope\" names no zone; firewalld uses \"public\""
            ),
        ],
        "problems:\n{}",
        problems_text(&p)
    );
}

#[test]
fn what_firewall_cmd_permanent_writes() {
    // In the shape firewall-cmd --permanent writes (seen in the lab): MAC sources go in
    // address=, ipsets in ipset=; rules as nested elements.
    let t = stock_root();
    write(
        t.path(),
        "etc/firewalld/zones/trusted.xml",
        r#"<?xml version="1.0" encoding="utf-8"?>
<zone target="ACCEPT">
  <short>Trusted</short>
  <description>All network connections are accepted.</description>
  <port port="2379-2380" protocol="tcp"/>
  <port port="2379" protocol="tcp"/>
  <port port="2381-2378" protocol="tcp"/>
  <forward-port port="80" protocol="tcp" to-port="8080"/>
  <rule family="ipv4">
    <source address="10.1.0.0/16"/>
    <port port="22" protocol="tcp"/>
    <accept>
      <limit value="3/minute"/>
    </accept>
  </rule>
  <rule priority="-5" family="ipv4">
    <source NOT="x" address="10.2.0.0/16" invert="yes"/>
    <service name="ssh"/>
    <log prefix="ssh " level="info"/>
    <reject type="icmp-host-prohibited"/>
  </rule>
  <interface name="eth+"/>
  <source ipset="foo"/>
  <source address="00:11:22:33:44:55"/>
  <forward/>
</zone>
"#,
    );
    let p = read_permanent(t.path());
    // The second rule has an attribute firewalld does not know: the whole file is refused.
    let pr = problem_for(&p.problems, "trusted.xml");
    assert_eq!((pr.line, pr.column), (Some(17), Some(5)), "{pr}");
    assert!(pr.message.contains("unexpected attribute NOT"), "{pr}");

    let fixed = std::fs::read_to_string(t.path().join("etc/firewalld/zones/trusted.xml"))
        .expect("read back")
        .replace(" NOT=\"x\"", "");
    write(t.path(), "etc/firewalld/zones/trusted.xml", &fixed);
    let p = read_clean(t.path());
    let z = &p.zones["trusted"];
    let ports: Vec<String> = z.ports.iter().map(ToString::to_string).collect();
    assert_eq!(ports, ["2378-2381/tcp"], "coalesced like firewalld");
    assert_eq!(
        z.forward_ports,
        strs(&["port=80:proto=tcp:toport=8080:toaddr="])
    );
    assert_eq!(
        z.rich_rules,
        strs(&[
            r#"rule family="ipv4" source address="10.1.0.0/16" port port="22" protocol="tcp" accept limit value="3/m""#,
            r#"rule priority="-5" family="ipv4" source NOT address="10.2.0.0/16" service name="ssh" log prefix="ssh " level="info" reject type="icmp-host-prohibited""#,
        ])
    );
    // Without a family the rule is well-formed XML that firewalld's `Rich_Rule.check()`
    // refuses (an address needs a family): firewalld loads the zone without it, with a warning.
    let no_family = fixed.replace(
        r#"<rule priority="-5" family="ipv4">"#,
        r#"<rule priority="-5">"#,
    );
    write(t.path(), "etc/firewalld/zones/trusted.xml", &no_family);
    let p = read_permanent(t.path());
    assert_eq!(p.zones["trusted"].rich_rules.len(), 1);
    let pr = problem_for(&p.problems, "trusted.xml");
    assert!(pr.message.contains("invalid rich rule"), "{pr}");
    assert_eq!(z.sources, strs(&["ipset:foo", "00:11:22:33:44:55"]));
    assert_eq!(z.interfaces, strs(&["eth+"]));
}

#[test]
fn undefined_services_and_combined_zones() {
    let t = stock_root();
    write(
        t.path(),
        "etc/firewalld/zones/public.xml",
        &format!(
            "{XML}<zone>\n  <service name=\"ssh\"/>\n  <service name=\"k0s-controller\"/>\n</zone>\n"
        ),
    );
    write(
        t.path(),
        "etc/firewalld/services/node.xml",
        &format!("{XML}<service>\n  <include service=\"nothere\"/>\n</service>\n"),
    );
    write(
        t.path(),
        "etc/firewalld/zones/k8s/api.xml",
        &format!(
            "{XML}<zone target=\"DROP\">\n  <port port=\"6443\" protocol=\"tcp\"/>\n  <interface name=\"eth2\"/>\n</zone>\n"
        ),
    );
    write(
        t.path(),
        "etc/firewalld/zones/k8s/etcd.xml",
        &format!(
            "{XML}<zone>\n  <port port=\"2379-2380\" protocol=\"tcp\"/>\n  <masquerade/>\n</zone>\n"
        ),
    );
    let p = read_permanent(t.path());
    let pr = problem_for(&p.problems, "zones/public.xml");
    assert_eq!((pr.line, pr.column), (Some(4), Some(3)), "{pr}");
    assert!(pr.message.contains("\"k0s-controller\""), "{pr}");
    let pr = problem_for(&p.problems, "services/node.xml");
    assert_eq!((pr.line, pr.column), (Some(3), Some(3)), "{pr}");
    assert_eq!(p.problems.len(), 2, "{}", problems_text(&p));

    let k8s = &p.zones["k8s"];
    let ports: Vec<String> = k8s.ports.iter().map(ToString::to_string).collect();
    assert_eq!(ports, ["6443/tcp", "2379-2380/tcp"]);
    assert_eq!(k8s.interfaces, strs(&["eth2"]));
    assert!(k8s.masquerade);
    assert_eq!(
        k8s.target,
        Target::Default,
        "combined zones keep the default target"
    );
    file_is(k8s.file.as_deref(), t.path(), "etc/firewalld/zones/k8s");
}
