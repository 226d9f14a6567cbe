//! The drop probe's kernel facts, read from the running kernel's BTF: the `sk_buff`,
//! `net_device`, `net` and `sock` field offsets the probe reads through, the position of the
//! tracepoint's `reason` and `location` arguments, and the names of the drop reasons (whose
//! numbering changes between kernel versions). Kernels before 5.17 have neither the reason
//! argument nor the enum: there every drop counts under [`NOT_SPECIFIED`].

use std::{collections::HashMap, os::unix::fs::MetadataExt};

use tracer_common::drops::{
    DEV_WINDOW, DROP_PARTS_ALL, DropConfig, NO_ARG, PEEK_BYTES, SKB_WINDOW,
};

use super::{
    ProbeError,
    btf::{Btf, BtfError},
};

/// The reason drops are counted under on kernels that pass none: the kernel's own name for a
/// drop whose caller gave no reason.
pub const NOT_SPECIFIED: &str = "NOT_SPECIFIED";
/// Its value there (any value above `not_a_drop`, which is 0 without reasons).
const NOT_SPECIFIED_VALUE: u32 = 1;

/// Names of `enum skb_drop_reason`, by value, without the `SKB_DROP_REASON_` prefix.
#[derive(Clone, Debug, Default)]
pub struct ReasonNames {
    names: HashMap<u32, String>,
}

impl ReasonNames {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, u64)>) -> Self {
        let names = pairs
            .into_iter()
            .map(|(name, value)| {
                let short = name
                    .strip_prefix("SKB_DROP_REASON_")
                    .unwrap_or(&name)
                    .to_string();
                (value as u32, short)
            })
            .collect();
        ReasonNames { names }
    }

    /// The reason's name, or its number when this kernel does not name it (reasons of
    /// subsystems such as openvswitch or mac80211 carry the subsystem in the high bits).
    /// The names of a kernel without drop reasons: only [`NOT_SPECIFIED`].
    pub fn without_reasons() -> Self {
        ReasonNames {
            names: HashMap::from([(NOT_SPECIFIED_VALUE, NOT_SPECIFIED.to_string())]),
        }
    }

    pub fn name(&self, value: u32) -> String {
        self.names
            .get(&value)
            .cloned()
            .unwrap_or_else(|| format!("REASON_{value:#x}"))
    }

    /// Every named reason with its value.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names.iter().map(|(v, n)| (*v, n.as_str()))
    }

    pub fn value(&self, name: &str) -> Option<u32> {
        self.names
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map(|(v, _)| *v)
    }
}

/// The inode number of the calling thread's network namespace.
pub fn current_netns() -> std::io::Result<u32> {
    Ok(std::fs::metadata("/proc/thread-self/ns/net")?.ino() as u32)
}

fn btf_err(what: &'static str) -> impl FnOnce(BtfError) -> ProbeError {
    move |e| ProbeError::KernelFacts {
        what,
        reason: e.to_string(),
    }
}

/// How many dropped packets the probe hands over as events each second (the counts are exact
/// regardless): per flow and reason, and per CPU over all flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventBudget {
    pub per_flow: u32,
    pub per_cpu: u32,
}

impl EventBudget {
    /// A total per second spread over `cpus` CPUs, rounded up so the total is reachable.
    pub fn new(per_flow: u32, per_sec: u32, cpus: u32) -> Self {
        EventBudget {
            per_flow,
            per_cpu: per_sec.div_ceil(cpus.max(1)),
        }
    }
}

/// The arguments of the `skb:kfree_skb` raw tracepoint, by name (`skb` first). Kernels that
/// keep no parameter names for it in BTF (5.10) are read by the parameters' types, which name
/// each argument the tracepoint has ever had unambiguously.
pub fn kfree_skb_args(btf: &Btf) -> Result<Vec<String>, BtfError> {
    const TYPEDEF: &str = "btf_trace_kfree_skb";
    // Raw tracepoint programs see the TP_PROTO arguments without the leading __data.
    match btf.typedef_fn_params(TYPEDEF) {
        Ok(params) => return Ok(params.into_iter().skip(1).collect()),
        Err(BtfError::UnnamedParams(_)) => {}
        Err(e) => return Err(e),
    }
    let types = btf.typedef_fn_param_types(TYPEDEF)?;
    types
        .iter()
        .skip(1)
        .map(|t| match t.as_str() {
            "struct sk_buff *" => Ok("skb".to_string()),
            "void *" => Ok("location".to_string()),
            "enum skb_drop_reason" => Ok("reason".to_string()),
            "struct sock *" => Ok("rx_sk".to_string()),
            _ => Err(BtfError::UnnamedParams(format!(
                "{TYPEDEF} (a parameter of type {t})"
            ))),
        })
        .collect()
}

/// The `sk_buff` fields the probe reads, with the size it reads each as (64-bit kernels:
/// `head` is a pointer, `tail` an offset from it).
const SKB_FIELDS: [(&str, u32); 8] = [
    ("dev", 8),
    ("sk", 8),
    ("len", 4),
    ("protocol", 2),
    ("network_header", 2),
    ("mac_header", 2),
    ("tail", 4),
    ("head", 8),
];

/// The offset of a member and its size, which must be `size`: the probe reads it as that.
fn field_at(btf: &Btf, name: &str, path: &[&str], size: u32) -> Result<(u32, u32), ProbeError> {
    let facts = |reason: String| ProbeError::KernelFacts {
        what: "sk_buff layout",
        reason,
    };
    let offset = btf
        .member_offset(name, path)
        .map_err(|e| facts(e.to_string()))?;
    let got = btf
        .member_size(name, path)
        .map_err(|e| facts(e.to_string()))?;
    if got != size {
        return Err(facts(format!(
            "{name}.{} is {got} bytes, expected {size}",
            path.join(".")
        )));
    }
    Ok((offset, size))
}

/// The start and length of the bytes that hold every `(offset, size)` of `fields`, when that
/// is at most `max`.
fn window(fields: &[(u32, u32)], max: u32) -> Option<(u32, u32)> {
    let start = fields.iter().map(|(o, _)| *o).min()?;
    let end = fields.iter().map(|(o, s)| o + s).max()?;
    (end - start <= max).then_some((start, end - start))
}

/// The struct the drop probe reads packet bytes as when it reads them in place: the kernel
/// checks each load against the member it falls in, so the struct has to start with a byte
/// array that holds the longest read. `new_utsname` starts with `char sysname[65]`.
fn peek_type(btf: &Btf) -> Option<u32> {
    let array = ("new_utsname", &["sysname"][..]);
    (btf.member_offset(array.0, array.1).ok()? == 0
        && btf.member_size(array.0, array.1).ok()? >= PEEK_BYTES)
        .then(|| btf.struct_id(array.0).ok())
        .flatten()
}

/// Everything the drop probe needs to know about this kernel.
pub fn kernel_facts(
    btf: &Btf,
    netns_inum: u32,
    budget: EventBudget,
) -> Result<(DropConfig, ReasonNames), ProbeError> {
    let layout = |e: BtfError| ProbeError::KernelFacts {
        what: "sk_buff layout",
        reason: e.to_string(),
    };
    let off = |s: &str, path: &[&str]| btf.member_offset(s, path).map_err(layout);
    let skb = SKB_FIELDS
        .iter()
        .map(|&(field, size)| field_at(btf, "sk_buff", &[field], size))
        .collect::<Result<Vec<_>, _>>()?;
    let skb_at = |name: &str| {
        let i = SKB_FIELDS.iter().position(|(f, _)| *f == name);
        skb[i.expect("a field of SKB_FIELDS")].0
    };
    let (skb_window, skb_window_len) =
        window(&skb, SKB_WINDOW).ok_or_else(|| ProbeError::KernelFacts {
            what: "sk_buff layout",
            reason: format!(
                "the fields the drop probe reads ({}) span more than {SKB_WINDOW} bytes",
                SKB_FIELDS.map(|(f, _)| f).join(", ")
            ),
        })?;
    let dev = [
        field_at(btf, "net_device", &["ifindex"], 4)?,
        field_at(btf, "net_device", &["nd_net", "net"], 8)?,
    ];
    // Two reads where a kernel keeps them far apart.
    let (dev_window, dev_window_len) = window(&dev, DEV_WINDOW).unwrap_or((0, 0));
    let params = kfree_skb_args(btf).map_err(btf_err("kfree_skb tracepoint"))?;
    let args: Vec<&str> = params.iter().map(String::as_str).collect();
    let position = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .map(|i| i as u32)
            .ok_or_else(|| ProbeError::KernelFacts {
                what: "kfree_skb tracepoint",
                reason: format!("no argument {name:?} in ({})", args.join(", ")),
            })
    };
    if position("skb")? != 0 {
        return Err(ProbeError::KernelFacts {
            what: "kfree_skb tracepoint",
            reason: format!("skb is not the first argument of ({})", args.join(", ")),
        });
    }
    // Before 5.17 the tracepoint has no reason argument and the kernel no reason enum.
    let (reasons, reason_arg, not_a_drop) = match btf.enum_values("skb_drop_reason") {
        Ok(pairs) if args.contains(&"reason") => {
            let reasons = ReasonNames::from_pairs(pairs);
            let not_a_drop = ["SKB_NOT_DROPPED_YET", "SKB_CONSUMED"]
                .iter()
                .filter_map(|n| reasons.value(n))
                .max()
                .unwrap_or(0);
            (reasons, position("reason")?, not_a_drop)
        }
        _ => (ReasonNames::without_reasons(), NO_ARG, 0),
    };
    let config = DropConfig {
        skb_window,
        skb_window_len,
        skb_head: skb_at("head"),
        skb_tail: skb_at("tail"),
        skb_len: skb_at("len"),
        skb_mac_header: skb_at("mac_header"),
        skb_network_header: skb_at("network_header"),
        skb_protocol: skb_at("protocol"),
        skb_dev: skb_at("dev"),
        skb_sk: skb_at("sk"),
        dev_window,
        dev_window_len,
        dev_ifindex: dev[0].0,
        dev_nd_net: dev[1].0,
        sk_net: off("sock", &["__sk_common", "skc_net", "net"])?,
        net_inum: off("net", &["ns", "inum"])?,
        netns_inum,
        reason_arg,
        location_arg: position("location")?,
        reason_if_absent: NOT_SPECIFIED_VALUE,
        not_a_drop,
        events_per_flow: budget.per_flow,
        events_per_cpu: budget.per_cpu,
        ready: 1,
        parts: DROP_PARTS_ALL,
        peek_type: peek_type(btf).unwrap_or(0),
    };
    Ok((config, reasons))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::probes::btf::VMLINUX;

    #[test]
    fn the_running_kernel_provides_every_fact() {
        let btf = Btf::from_file(Path::new(VMLINUX)).expect("this kernel has BTF");
        let (cfg, reasons) =
            kernel_facts(&btf, 4_026_531_840, EventBudget::new(10, 1000, 2)).unwrap();
        assert_eq!(cfg.ready, 1);
        assert_eq!((cfg.events_per_flow, cfg.events_per_cpu), (10, 500));
        assert_eq!((cfg.reason_arg, cfg.location_arg), (2, 1));
        assert!(cfg.skb_head > 0 && cfg.skb_dev > 0 && cfg.net_inum > 0 && cfg.dev_ifindex > 0);
        // Packets are read in place as `new_utsname`, whose first member holds any one read.
        assert_eq!(Some(cfg.peek_type), btf.struct_id("new_utsname").ok());
        assert_ne!(cfg.peek_type, 0);
        // One read of the sk_buff holds every field the probe needs.
        assert!(cfg.skb_window_len > 0 && cfg.skb_window_len <= SKB_WINDOW);
        for off in [cfg.skb_head, cfg.skb_dev, cfg.skb_len, cfg.skb_protocol] {
            assert!(off >= cfg.skb_window && off < cfg.skb_window + cfg.skb_window_len);
        }
        assert_ne!(cfg.skb_mac_header, cfg.skb_network_header);
        assert_eq!(cfg.not_a_drop, reasons.value("SKB_CONSUMED").unwrap());
        assert!(cfg.reason_if_absent > 0);
        for name in [
            "NETFILTER_DROP",
            "IP_RPFILTER",
            "NO_SOCKET",
            "PKT_TOO_BIG",
            "UDP_CSUM",
            "NEIGH_FAILED",
        ] {
            let v = reasons
                .value(name)
                .unwrap_or_else(|| panic!("no reason {name}"));
            assert_eq!(reasons.name(v), name);
        }
        assert_eq!(reasons.name(0xdead_0000), "REASON_0xdead0000");
    }

    #[test]
    fn a_window_holds_every_field_or_there_is_none() {
        assert_eq!(window(&[(16, 8), (24, 8), (192, 8)], 256), Some((16, 184)));
        assert_eq!(window(&[(224, 4), (264, 8)], 64), Some((224, 48)));
        assert_eq!(window(&[(264, 4), (1200, 8)], 64), None);
        assert_eq!(window(&[], 64), None);
    }

    #[test]
    fn without_reasons_every_drop_is_not_specified() {
        let names = ReasonNames::without_reasons();
        assert_eq!(names.name(NOT_SPECIFIED_VALUE), NOT_SPECIFIED);
        assert_eq!(names.value(NOT_SPECIFIED), Some(NOT_SPECIFIED_VALUE));
    }
}
