//! What an evaluation says: the verdict on a packet, the rule (or policy) that decided it,
//! named as its backend names it, and the way the packet went.

use std::fmt;

use crate::{Backend, Family};

/// What the ruleset does to the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every base chain of the hook let it through.
    Accept,
    /// Dropped silently.
    Drop,
    /// Dropped with an error sent back (ICMP unreachable or TCP reset).
    Reject,
    /// The model cannot tell; why.
    Unknown(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Reject => f.write_str("reject"),
            Verdict::Unknown(why) => write!(f, "unknown: {why}"),
        }
    }
}

/// A rule (or a base chain's policy: handle 0, text `policy drop`) where it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRef {
    /// Where the table lives: nftables, or legacy iptables.
    pub backend: Backend,
    /// The table's family.
    pub family: Family,
    /// The table's name.
    pub table: String,
    /// The chain's name.
    pub chain: String,
    /// The rule's handle (for a legacy table, its number in the chain); 0 for a policy.
    pub handle: u64,
    /// Its number in the chain, from 1 (how iptables names rules); 0 for a policy.
    pub position: usize,
    /// The rule as nft prints it (for a legacy table, as `iptables-save` does), or `policy
    /// accept` / `policy drop`.
    pub text: String,
    /// The rule as `iptables-save` prints it, for a rule of an iptables table whose save
    /// listing was read.
    pub saved: Option<String>,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend {
            Backend::Nftables => {
                write!(f, "{} {} {}", self.family, self.table, self.chain)?;
                if self.handle != 0 {
                    write!(f, " handle {}", self.handle)?;
                }
            }
            Backend::IptablesLegacy => {
                write!(
                    f,
                    "{} -t {} chain {}",
                    self.backend.command(self.family),
                    self.table,
                    self.chain
                )?;
                if self.handle != 0 {
                    write!(f, " rule {}", self.handle)?;
                }
            }
        }
        write!(f, ": {}", self.text)
    }
}

/// The verdict, the rule that decided it, and the way there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What happens to the packet.
    pub verdict: Verdict,
    /// The rule (or policy) that decided. For an accepted packet every base chain accepted it;
    /// this is the last rule that did (a policy only when no rule did); `None` when no base
    /// chain is registered on the hook.
    pub deciding: Option<RuleRef>,
    /// Every jump and goto taken (verdict maps' included), in order, across all base chains.
    pub trail: Vec<RuleRef>,
    /// The rule (or policy) that accepted the packet in each base chain it got through, in
    /// the order the kernel ran them.
    pub accepted: Vec<RuleRef>,
}
