//! What a pasted file is, told from its text: the listings node operators paste into issues
//! (`nft list ruleset`, `iptables-save` and its variants, `iptables -S`, `iptables -L`,
//! `ipset save`, `firewall-cmd --list-all-zones`, zone and service XML, `ip route`,
//! `ip -d link`, `ip addr`, `sysctl`, `ss -ltn`) and the files they copy (`nft -j` JSON,
//! firewalld.conf, k0s.yaml, k3s's config.yaml).

use crate::model::{cluster::Distribution, nft::Family};

/// Which iptables backend a listing comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Nft,
    Legacy,
    /// The listing does not say (plain `iptables-save`, `-S`, `-L`).
    Unknown,
}

/// A form of evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `nft -j list ruleset`.
    NftJson,
    /// `nft list ruleset`.
    NftText,
    /// `iptables-save`, `iptables-nft-save`, `iptables-legacy-save` (or the ip6 ones).
    IptablesSave(Family, Backend),
    /// `iptables -S`.
    IptablesS(Family),
    /// `iptables -L`, with `-v` or without.
    IptablesL { family: Family, verbose: bool },
    /// `ipset save` (or `ipset list`'s save form).
    IpsetSave,
    /// `firewall-cmd --list-all-zones`, `--list-all`, `--info-zone=NAME`.
    FirewallCmd,
    /// A firewalld zone file.
    ZoneXml,
    /// A firewalld service file.
    ServiceXml,
    /// firewalld.conf.
    FirewalldConf,
    /// `ip route`.
    IpRoute,
    /// `ip link` / `ip -d link` (without addresses).
    IpLink,
    /// `ip addr` / `ip -d addr`.
    IpAddr,
    /// `sysctl` output (`key = value`).
    Sysctl,
    /// `ss -ltn` (or `-ltnp`).
    Listening,
    /// k0s.yaml or k3s's config.yaml.
    Cluster(Distribution),
    /// None of the above.
    Unknown,
}

impl Form {
    /// What the form is, for the report.
    pub fn name(self) -> String {
        let fam = |f: Family| if f == Family::Ip6 { "ip6" } else { "ip" };
        match self {
            Form::NftJson => "nft -j list ruleset".into(),
            Form::NftText => "nft list ruleset".into(),
            Form::IptablesSave(f, b) => format!(
                "{}tables{}-save",
                fam(f),
                match b {
                    Backend::Nft => "-nft",
                    Backend::Legacy => "-legacy",
                    Backend::Unknown => "",
                }
            ),
            Form::IptablesS(f) => format!("{}tables -S", fam(f)),
            Form::IptablesL { family, verbose } => format!(
                "{}tables -L{}",
                fam(family),
                if verbose { " -v" } else { " (without -v)" }
            ),
            Form::IpsetSave => "ipset save".into(),
            Form::FirewallCmd => "firewall-cmd --list-all-zones / --info-zone".into(),
            Form::ZoneXml => "firewalld zone XML".into(),
            Form::ServiceXml => "firewalld service XML".into(),
            Form::FirewalldConf => "firewalld.conf".into(),
            Form::IpRoute => "ip route".into(),
            Form::IpLink => "ip -d link".into(),
            Form::IpAddr => "ip addr".into(),
            Form::Sysctl => "sysctl".into(),
            Form::Listening => "ss -ltn".into(),
            Form::Cluster(Distribution::K0s) => "k0s.yaml".into(),
            Form::Cluster(Distribution::K3s) => "k3s config.yaml".into(),
            Form::Unknown => "unknown".into(),
        }
    }
}

/// The lines that say something (not blank, not a `#` comment), trimmed at the end.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

/// The family an iptables listing is of: IPv6 when its header or its addresses say so.
fn family_of(text: &str) -> Family {
    let header_v6 = text.lines().take(3).any(|l| l.contains("ip6tables"));
    let addr_v6 = text.split_whitespace().any(|w| {
        let w = w.trim_start_matches('!');
        w.contains("::")
            || (w.contains(':')
                && w.contains('/')
                && w.split('/')
                    .next()
                    .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()))
    });
    if header_v6 || addr_v6 {
        Family::Ip6
    } else {
        Family::Ip
    }
}

/// The significant lines of a text, and questions about them.
struct Lines<'t> {
    all: Vec<&'t str>,
}

impl Lines<'_> {
    fn any(&self, p: impl Fn(&str) -> bool) -> bool {
        self.all.iter().any(|l| p(l))
    }

    /// At least half of the lines, and one.
    fn most(&self, p: impl Fn(&str) -> bool) -> bool {
        let n = self.all.iter().filter(|l| p(l)).count();
        n > 0 && n * 2 >= self.all.len()
    }
}

/// Tells the form of `text`.
pub fn detect(text: &str) -> Form {
    let l = Lines {
        all: lines(text).collect(),
    };
    markup(text)
        .or_else(|| rules(text, &l))
        .or_else(|| configuration(&l))
        .or_else(|| commands(&l))
        .unwrap_or(Form::Unknown)
}

/// JSON and XML documents.
fn markup(text: &str) -> Option<Form> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') && text.contains("\"nftables\"") {
        return Some(Form::NftJson);
    }
    if !trimmed.starts_with('<') {
        return None;
    }
    let root = trimmed
        .split('<')
        .filter(|t| !t.starts_with('?') && !t.starts_with('!'))
        .find(|t| !t.is_empty())
        .unwrap_or("");
    Some(if root.starts_with("zone") {
        Form::ZoneXml
    } else if root.starts_with("service") {
        Form::ServiceXml
    } else {
        Form::Unknown
    })
}

/// Firewall listings.
fn rules(text: &str, l: &Lines) -> Option<Form> {
    if l.any(|l| l.starts_with('*')) && l.any(|l| l.starts_with(':')) {
        let head = text.lines().take(3).collect::<Vec<_>>().join(" ");
        // iptables-nft-save says `(nf_tables)` in its header; iptables-legacy-save (and the
        // iptables-save of before the nft backend) says nothing of the kind.
        let backend = if head.contains("nf_tables") || head.contains("-nft-save") {
            Backend::Nft
        } else if head.contains("legacy")
            || (head.contains("# Generated by") && head.contains("tables-save v"))
        {
            Backend::Legacy
        } else {
            Backend::Unknown
        };
        return Some(Form::IptablesSave(family_of(text), backend));
    }
    if l.any(|l| l.starts_with("table ")) && text.contains('{') {
        return Some(Form::NftText);
    }
    if l.most(|l| l.starts_with("-P ") || l.starts_with("-N ") || l.starts_with("-A ")) {
        return Some(Form::IptablesS(family_of(text)));
    }
    if l.any(|l| l.starts_with("Chain ") && (l.contains("(policy") || l.contains("references)"))) {
        let verbose = l.any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.starts_with(&["pkts", "bytes", "target"]) || w.starts_with(&["num", "pkts", "bytes"])
        });
        return Some(Form::IptablesL {
            family: family_of(text),
            verbose,
        });
    }
    if l.any(|l| l.starts_with("create "))
        && l.most(|l| l.starts_with("create ") || l.starts_with("add "))
    {
        return Some(Form::IpsetSave);
    }
    if l.any(|l| l.trim_start().starts_with("target:"))
        && l.any(|l| l.trim_start().starts_with("interfaces:"))
    {
        return Some(Form::FirewallCmd);
    }
    None
}

/// Configuration files.
fn configuration(l: &Lines) -> Option<Form> {
    let key = |keys: &[&str], l: &str| keys.iter().any(|k| l.trim_start().starts_with(k));
    if l.any(|l| l.starts_with("DefaultZone=") || l.starts_with("FirewallBackend=")) {
        return Some(Form::FirewalldConf);
    }
    let k0s = [
        "podCIDR:",
        "serviceCIDR:",
        "provider: kuberouter",
        "provider: calico",
    ];
    if l.any(|l| l.contains("k0s.k0sproject.io") || key(&k0s, l)) {
        return Some(Form::Cluster(Distribution::K0s));
    }
    let k3s = [
        "cluster-cidr:",
        "flannel-backend:",
        "service-cidr:",
        "flannel-iface:",
    ];
    if l.any(|l| !l.starts_with(' ') && key(&k3s, l)) {
        return Some(Form::Cluster(Distribution::K3s));
    }
    None
}

/// The output of `ip`, `sysctl` and `ss`.
fn commands(l: &Lines) -> Option<Form> {
    let link_header = |l: &str| {
        l.split_whitespace()
            .next()
            .and_then(|n| n.strip_suffix(':'))
            .is_some_and(|n| n.parse::<u32>().is_ok())
            && l.contains(" mtu ")
    };
    if l.any(link_header) {
        let inet = |l: &str| {
            let l = l.trim_start();
            l.starts_with("inet ") || l.starts_with("inet6 ")
        };
        return Some(if l.any(inet) {
            Form::IpAddr
        } else {
            Form::IpLink
        });
    }
    let route = |l: &str| {
        l.starts_with("default ")
            || l.contains(" dev ")
                && l.split_whitespace().next().is_some_and(|d| {
                    d.parse::<std::net::IpAddr>().is_ok()
                        || d.parse::<crate::model::net::Cidr>().is_ok()
                        || matches!(
                            d,
                            "local" | "broadcast" | "unreachable" | "blackhole" | "prohibit"
                        )
                })
    };
    if l.most(route) {
        return Some(Form::IpRoute);
    }
    if l.most(|l| l.starts_with("net.") && l.contains('=')) {
        return Some(Form::Sysctl);
    }
    let first = l.all.first().copied().unwrap_or("");
    if first.starts_with("State") && first.contains("Local Address")
        || l.most(|l| l.starts_with("LISTEN"))
    {
        return Some(Form::Listening);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_by_their_text() {
        let cases: &[(&str, Form)] = &[
            ("{\"nftables\": []}", Form::NftJson),
            (
                "table inet filter {\n\tchain input {\n\t}\n}\n",
                Form::NftText,
            ),
            (
                "# Generated by iptables-nft-save v1.8.9 (nf_tables) on x\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
                Form::IptablesSave(Family::Ip, Backend::Nft),
            ),
            (
                "# Generated by iptables-save v1.8.9 on x\n*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
                Form::IptablesSave(Family::Ip, Backend::Legacy),
            ),
            (
                "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
                Form::IptablesSave(Family::Ip, Backend::Unknown),
            ),
            (
                "-P INPUT ACCEPT\n-P FORWARD DROP\n-N KUBE-ROUTER-INPUT\n-A INPUT -j KUBE-ROUTER-INPUT\n",
                Form::IptablesS(Family::Ip),
            ),
            (
                "Chain INPUT (policy ACCEPT)\ntarget     prot opt source               destination\nACCEPT     all  --  anywhere             anywhere\n",
                Form::IptablesL {
                    family: Family::Ip,
                    verbose: false,
                },
            ),
            (
                "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)\n pkts bytes target     prot opt in     out     source               destination\n",
                Form::IptablesL {
                    family: Family::Ip,
                    verbose: true,
                },
            ),
            (
                "create s hash:net family inet\nadd s 10.0.0.0/8\n",
                Form::IpsetSave,
            ),
            (
                "public (active)\n  target: default\n  interfaces: eth0\n",
                Form::FirewallCmd,
            ),
            ("<?xml version=\"1.0\"?>\n<zone>\n</zone>\n", Form::ZoneXml),
            (
                "<service><port port=\"1\" protocol=\"tcp\"/></service>",
                Form::ServiceXml,
            ),
            (
                "default via 192.168.10.1 dev eth0\n10.244.2.0/24 dev kube-bridge proto kernel scope link src 10.244.2.1\n",
                Form::IpRoute,
            ),
            (
                "1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue state UNKNOWN\n    link/loopback 00:00:00:00:00:00\n",
                Form::IpLink,
            ),
            (
                "1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue\n    inet 127.0.0.1/8 scope host lo\n",
                Form::IpAddr,
            ),
            (
                "net.ipv4.ip_forward = 1\nnet.ipv4.conf.all.rp_filter = 2\n",
                Form::Sysctl,
            ),
            (
                "State  Recv-Q Send-Q Local Address:Port Peer Address:Port\nLISTEN 0 4096 0.0.0.0:6443 0.0.0.0:*\n",
                Form::Listening,
            ),
            (
                "cluster-cidr: 10.42.0.0/16\n",
                Form::Cluster(Distribution::K3s),
            ),
            ("hello\n", Form::Unknown),
        ];
        for (text, form) in cases {
            assert_eq!(detect(text), *form, "{text}");
        }
    }
}
