//! The JSON the tool prints, as types: the reference for script writers. Every type here
//! derives `Serialize` and `Deserialize`, the outputs print exactly these, and a Rust program
//! reads a line back with `serde_json::from_str::<WatchLine>(line)` (or [`DiagnoseLine`],
//! [`Comparison`]). Field names below are the JSON keys; a field marked *optional* is left out
//! when it has no value, one marked *nullable* is printed as `null`.
//!
//! # `tracer watch --output json`: one [`WatchLine`] per line
//!
//! Every line also carries `ts` (RFC 3339, UTC, to the millisecond) and `node` (the node's
//! name): read it as [`Stamped`] to have them.
//!
//! | `"type"` | type | when |
//! |---|---|---|
//! | `start` | [`Start`] | once, when every program is attached |
//! | `counters` | [`Counters`] | each interval, for every counter that moved (cumulative values) |
//! | `drop` | [`DropLine`] | each interval, for every dropped flow whose count moved (cumulative) |
//! | `drop_stats` | [`DropStats`] | when sampled drop events were lost or held back |
//! | `finding` | [`Finding`] | when the node's diagnosis finds something new |
//! | `finding_resolved` | [`Finding`] | when a later diagnosis no longer finds it (fixed) |
//! | `iface` | [`IfaceChange`] | an interface `--iface` matches appeared or went, or its pod became known |
//! | `peer` | [`PeerBalance`] | each interval, for every overlay or BGP peer whose traffic moved |
//! | `summary` | [`Summary`] | once, at the end: every counter and drop total |
//!
//! - [`Start`]: `profile`, `profile_reason` (why this profile), `interval_secs`, `interfaces`
//!   (each an [`Interface`]: `iface`, `ifindex`, `hook` = `tc`, `xdp`, `xdp-generic` or
//!   `none`), `programs` (program name to kernel program id, for bpftool).
//! - [`Counters`]: `iface`, `direction` (`ingress`/`egress`), `class`, `inner` (optional,
//!   `true` on rows counting VXLAN packets by the class of the packet they carry), `packets`,
//!   `bytes` (whole frames).
//! - [`DropLine`]: `iface` (`-` when the packet had no device), `class`, `reason` (the
//!   kernel's drop reason, a [`Reason`]), the flow's [`Flow`] fields `proto`, `src`, `dst`
//!   (nullable: not IP), `sport`, `dport`, then `count`, `inner` (optional [`Inner`]: `vni`,
//!   `class` and the inner flow's fields), `function` (optional: `function+0xoffset` where
//!   the kernel dropped it), `explain` (optional: what the reason means) and `cause`
//!   (optional [`DropCause`]: the firewall `rule`, `zone`, `binding`, `element` and `fix`
//!   behind a `NETFILTER_DROP`).
//! - [`IfaceChange`]: `change` (`attached`, `released`, `failed`, or `pod`: the pod of a
//!   watched veth became known, at the first interval for those watched from the start, later
//!   for those the runtime recorded after the veth appeared), `iface`, `ifindex`, `hook`
//!   (optional), `peer_netns_id` and `peer_ifindex` (optional: a veth's other end, in the
//!   namespace of that id), `pod_namespace` and `pod_name` (optional: the pod the veth
//!   belongs to, as the container runtime recorded it in libcni's result cache, `--cni-cache`;
//!   absent while no entry names it, never guessed), `reason` (optional: why it could not be
//!   watched).
//! - [`PeerBalance`]: `peer` (the other node's address), `class`, `out_packets`,
//!   `in_packets`, `out_bytes`, `in_bytes` (since the start), `new_out`, `new_in` (this
//!   interval) and `answered` (false: packets went to the peer this interval and none came
//!   back).
//! - [`DropStats`]: `events_lost` (ring buffer full), `events_suppressed` (held back by the
//!   sampling budget), `uncounted` (no room in the counter table).
//! - [`Finding`]: `id`, `severity` (`error`, `warning`, `info`), `title`, `explain`, the
//!   nullable `class`, `port`, `iface`, `zone`, `binding`, `element` and `rule` (a
//!   [`RuleInfo`]: `family`, `table`, `chain`, `handle`, `text`), and `fix` (commands). A
//!   `finding_resolved` line carries the same fields, as the finding was when last found.
//! - [`Summary`]: `profile`, `duration_secs`, `interfaces`, `counters` (every counter, each
//!   a `counters` object with its `"type"`), `drops` (optional: every [`DropTotal`],
//!   `iface`, `class`, `reason`, `count`; absent without drop capture) and `drop_stats`
//!   (optional: a `drop_stats` object with its `"type"`).
//!
//! # `tracer diagnose --output json`: one [`DiagnoseLine`] per line
//!
//! With `--evidence`, first an `evidence` line per file ([`EvidenceReport`]: `file`, `form`
//! detected, `used` and `unused`, lists of sentences); `problem` lines ([`Problem`]: `message`,
//! a file or command that could not be read, `FILE:LINE: ...` where it has a line); away from
//! the node, `unknown` lines ([`Unknown`]: `what` the inputs do not settle, `why`, and the
//! `settle` commands whose output would); with `--all` a `flow` line per evaluated flow
//! ([`FlowCheck`]: `name`, `verdict` (` (likely)` after it when a missing part could change
//! it), nullable `rule`), a `finding` line per finding (away from the node with `certainty`,
//! `certain` or `likely`, and for a likely one `settle`: the commands that would settle it),
//! and a last `summary` ([`DiagnoseSummary`]: `profile`, `roles`, `errors`, `warnings`,
//! `flows`, `complete`).
//!
//! # `tracer explain --output json`: one [`Explanation`]
//!
//! `verdict` (`accept`, `drop`, `reject`, `unknown: why`), nullable `rule` (a [`RuleInfo`]:
//! for an accepted packet the last rule that accepted it), `zone`, `binding`, `element` (the
//! firewalld element or the rule outside firewalld that decides), and `fix` (commands).
//!
//! # `tracer baseline compare --output json`: one [`Comparison`]
//!
//! `"type": "comparison"`, the `baseline` file, its `recorded_at`, `baseline_secs`,
//! `sample_secs`, the `profile`, `threshold_percent`, `floor_per_sec`, `regression`, every
//! [`Change`] (`regression`, `kind` = `traffic`/`drops`, `iface`, optional `direction`,
//! `class`, optional `inner`, optional `reason`, `measure` = `packets_per_sec`,
//! `bytes_per_sec`, `drops_per_sec` or `sizes`, `before` and `after` (a rate, or size
//! fractions), nullable `change_percent`, optional `distance`, `message`) and the `notes`.
//! The baseline file itself is [`crate::events::baseline::Baseline`].
//!
//! # `tracer cluster --output json`: one [`ClusterReport`]
//!
//! `prometheus` (the server read), `window_secs` (the rules' rate window), `nodes`, `pairs`
//! (each a [`PairRates`]: `sender`, `receiver`, `class`, `sent_per_sec`, nullable
//! `received_per_sec` and `path_lost_per_sec`, `dropped` as [`DroppedRate`]s `reason`,
//! `per_sec`) and `losing` (each a [`LosingPair`]: `sender`, `receiver`, `class`, `where` =
//! `path` or `receiver`, optional `reason`, `share` from 0 to 1, `state` = `pending` or
//! `firing`, `summary`).

mod cluster;
mod compare;
mod diagnose;
mod tagged;
#[cfg(test)]
mod tests;
mod watch;

pub use cluster::{ClusterReport, DroppedRate, LosingPair, LossPlace, PairRates};
pub use compare::{Change, ChangeKind, Comparison, Level, Measure};
pub use diagnose::{DiagnoseLine, DiagnoseSummary, Problem};
pub use watch::{
    Counters, DropLine, DropStats, Flow, Inner, Interface, Stamped, Start, Summary, WatchLine,
};

pub use crate::{
    events::{Direction, DropTotal, PeerBalance, Reason},
    findings::{
        Certainty, Finding, FlowCheck, RuleInfo, Severity, drops::DropCause, explain::Explanation,
    },
    model::{evidence::EvidenceReport, view::Unknown},
    session::{IfaceChange, IfaceChangeKind},
};
