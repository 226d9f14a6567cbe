//! What the ruleset does to one described packet: the base chains of the packet's hook run in
//! priority order, each walked rule by rule through jumps, gotos, returns and verdict maps, the
//! way the kernel's nf_tables core does. The answer names the verdict, the rule that decided it
//! and every chain change on the way; when a rule the model cannot evaluate could change the
//! path, the answer is [`Verdict::Unknown`] with that rule, never a guess.

use std::cmp::Reverse;

use super::{
    Chain, Family, Hook, Policy, Rule, Ruleset, Table,
    expr::{Expr, MapData, Stmt, VerdictStmt, XtKind},
    fields::{Ctx, Got, Tracked, V},
    matching::Tri,
    order,
    packet::Packet,
};

pub use crate::verdict::{Outcome, RuleRef, Verdict};

/// Evaluates `pkt` against every base chain of its hook (all tables whose family sees it:
/// inet + ip for IPv4, inet + ip6 for IPv6; arp, bridge and netdev tables are ignored), in
/// priority order, the way the kernel does: `accept` ends only its base chain, `drop` and
/// `reject` end everything, the end of a base chain applies its policy.
///
/// What it assumes, so that a diagnosis can say so:
/// - Only `filter` and `route` base chains are run: `nat` chains rewrite addresses rather than
///   filter. The packet's addresses are taken as final and no NAT as having happened: `ct
///   status dnat`/`snat` do not match. A DNAT in prerouting would change `daddr`; pass the
///   translated address to see what the filter chains do with it.
/// - `limit`, `quota` and `ct count` see the packet as within their rate: `limit rate 10/second`
///   matches, `limit rate over ...` does not.
/// - iptables-nft `xt` extensions show only their name in the JSON listing: `xt match comment`
///   is always true, `xt target REJECT` rejects and `LOG`/`NFLOG`/`CT` do nothing to the
///   verdict; any other match or target whose result could change the path gives
///   [`Verdict::Unknown`], naming the extension.
/// - Interfaces are compared by name (`iif "lo"` as `iifname "lo"`), and IPv6 packets are taken
///   to carry no extension headers.
/// - Unknown, and said so when it matters: routing lookups other than `fib daddr type` (the
///   reverse-path check `fib saddr . iif oif missing`), the mark, status bits and direction of
///   an existing connection, header fields a [`Packet`] does not describe (TCP flags, TTL...),
///   whether a non-local IPv4 destination is a subnet broadcast, and which device an ingress
///   chain is bound to (the JSON listing leaves it out).
/// - Among base chains of equal priority the kernel runs the most recently registered first;
///   this takes the one of the newer table (higher handle), then of the newer chain. Between
///   an iptables-legacy chain and an nftables one of equal priority no listing tells: both
///   orders are tried, and where they decide differently the verdict is unknown
///   ([`crate::order`]).
pub fn evaluate(ruleset: &Ruleset, pkt: &Packet) -> Outcome {
    evaluate_assuming(ruleset, pkt, &Assume::default())
}

/// Rules to treat otherwise than they are, to ask "what then?": what else would refuse the
/// packet once a refusing rule let it through (the whole set of changes a packet needs), and
/// which rule a refusing rule keeps from deciding (an ACCEPT it shadows).
#[derive(Clone, Debug, Default)]
pub struct Assume {
    /// Rules (or policies, handle 0) taken as `accept` when they are reached.
    pub accept: Vec<RuleRef>,
    /// Rules taken as not matching.
    pub skip: Vec<RuleRef>,
}

/// [`evaluate`], with some rules taken as accepting or as not matching.
pub fn evaluate_assuming(ruleset: &Ruleset, pkt: &Packet, assume: &Assume) -> Outcome {
    let mut bases: Vec<(&Table, &Chain, i32)> = Vec::new();
    for table in &ruleset.tables {
        let sees = match table.family {
            Family::Inet => true,
            Family::Ip | Family::Ip6 => table.family == pkt.ip_family(),
            Family::Arp | Family::Bridge | Family::Netdev => false,
        };
        if !sees {
            continue;
        }
        for chain in &table.chains {
            if let Some(base) = &chain.base
                && base.hook == pkt.hook
                && base.kind != "nat"
            {
                bases.push((table, chain, base.priority));
            }
        }
    }
    bases.sort_by_key(|(t, c, prio)| (*prio, Reverse(t.handle), Reverse(c.handle)));
    if matches!(pkt.hook, Hook::Ingress | Hook::Egress)
        && let Some((table, chain, _)) = bases.first()
    {
        // nft's JSON listing does not say which device an ingress chain is bound to.
        return Outcome {
            verdict: Verdict::Unknown(format!(
                "the listing does not say which device {} chain {} is bound to",
                table.name, chain.name
            )),
            deciding: Some(policy_ref(table, chain).1),
            trail: Vec::new(),
            accepted: Vec::new(),
        };
    }
    let outcome = run_bases(&bases, pkt, assume);
    match order::legacy_first(&bases) {
        Some(other) => order::settle(outcome, &run_bases(&other, pkt, assume), &bases),
        None => outcome,
    }
}

/// Runs the packet through `bases`, in that order.
fn run_bases(bases: &[(&Table, &Chain, i32)], pkt: &Packet, assume: &Assume) -> Outcome {
    let mut walk = Walk {
        ctx: Ctx::new(pkt),
        trail: Vec::new(),
        steps: 0,
        assume,
    };
    let mut last_rule_accept = None;
    let mut last_policy_accept = None;
    let mut accepted = Vec::new();
    for (table, chain, _) in bases {
        let (verdict, at) = match walk.base(table, chain) {
            End::Accept(r) if r.handle == 0 => {
                accepted.push(r.clone());
                last_policy_accept = Some(r);
                continue;
            }
            End::Accept(r) => {
                accepted.push(r.clone());
                last_rule_accept = Some(r);
                continue;
            }
            End::Drop(r) => (Verdict::Drop, r),
            End::Reject(r) => (Verdict::Reject, r),
            End::Unknown(why, r) => (Verdict::Unknown(crate::bounded(why)), r),
        };
        return Outcome {
            verdict,
            deciding: Some(at),
            trail: walk.trail,
            accepted,
        };
    }
    Outcome {
        verdict: Verdict::Accept,
        deciding: last_rule_accept.or(last_policy_accept),
        trail: walk.trail,
        accepted,
    }
}

/// The kernel's jump stack depth (NFT_JUMP_STACK_SIZE); it refuses deeper rulesets.
const MAX_DEPTH: usize = 16;
/// Rules visited for one packet before giving up: far more than any real ruleset takes, so
/// either the (hand-made) ruleset loops or it is too large to follow here.
const MAX_STEPS: usize = 10_000_000;
/// Rules visited after which the walk checks once whether the table's jump graph has a cycle,
/// so that a looping ruleset is answered without walking up to [`MAX_STEPS`].
const LOOP_CHECK_AT: usize = 100_000;

/// How a base chain ended.
enum End {
    Accept(RuleRef),
    Drop(RuleRef),
    Reject(RuleRef),
    Unknown(String, RuleRef),
}

/// What one rule does.
enum Step<'r> {
    /// Did not match, or matched without a verdict.
    Next,
    Verdict(&'r VerdictStmt),
    Reject,
    /// A NAT statement: accepts (in a nat chain).
    Nat,
    Unknown(String),
}

struct Walk<'p> {
    ctx: Ctx<'p>,
    trail: Vec<RuleRef>,
    steps: usize,
    assume: &'p Assume,
}

/// The same rule: same place (the text may be rendered differently).
fn same_rule(a: &RuleRef, b: &RuleRef) -> bool {
    (a.backend, a.family, &a.table, &a.chain, a.handle)
        == (b.backend, b.family, &b.table, &b.chain, b.handle)
}

fn rule_ref(table: &Table, chain: &Chain, rule: &Rule) -> RuleRef {
    let position = chain
        .rules
        .iter()
        .position(|r| std::ptr::eq(r, rule))
        .map_or(0, |i| i + 1);
    RuleRef {
        position,
        saved: rule.saved.clone(),
        backend: table.backend,
        family: table.family,
        table: table.name.clone(),
        chain: chain.name.clone(),
        handle: rule.handle,
        text: rule.text.clone(),
    }
}

/// A base chain's policy, and the [`RuleRef`] that stands for it.
fn policy_ref(table: &Table, chain: &Chain) -> (Policy, RuleRef) {
    let policy = chain.base.as_ref().map_or(Policy::Accept, |b| b.policy);
    let text = match policy {
        Policy::Drop => "policy drop",
        Policy::Accept => "policy accept",
    };
    let at = RuleRef {
        backend: table.backend,
        family: table.family,
        table: table.name.clone(),
        chain: chain.name.clone(),
        handle: 0,
        position: 0,
        text: text.to_string(),
        saved: None,
    };
    (policy, at)
}

impl Walk<'_> {
    fn base(&mut self, table: &Table, base: &Chain) -> End {
        let assume = self.assume;
        let policy = || match policy_ref(table, base) {
            (_, at) if assume.accept.iter().any(|r| same_rule(r, &at)) => End::Accept(at),
            (Policy::Drop, at) => End::Drop(at),
            (Policy::Accept, at) => End::Accept(at),
        };
        let mut stack: Vec<(&Chain, usize)> = Vec::new();
        let (mut chain, mut at) = (base, 0usize);
        loop {
            let Some(rule) = chain.rules.get(at) else {
                // The end of a regular chain returns to the rule after the last jump.
                match stack.pop() {
                    Some((c, i)) => (chain, at) = (c, i),
                    None => return policy(),
                }
                continue;
            };
            self.steps += 1;
            if self.steps == LOOP_CHECK_AT
                && let Some(chains) = crate::graph::cycle(table)
            {
                let why = format!(
                    "the ruleset loops through chains {} (the kernel would not have loaded it)",
                    chains.join(" -> ")
                );
                return End::Unknown(why, rule_ref(table, chain, rule));
            }
            if self.steps > MAX_STEPS {
                let why = format!(
                    "the evaluation stopped after visiting {MAX_STEPS} rules for this packet; the ruleset has no loop but is too large to follow here"
                );
                return End::Unknown(why, rule_ref(table, chain, rule));
            }
            let assumed = |list: &[RuleRef]| {
                list.iter().any(|r| {
                    (r.backend, r.family, r.handle) == (table.backend, table.family, rule.handle)
                        && r.table == table.name
                        && r.chain == chain.name
                })
            };
            if assumed(&assume.skip) {
                at += 1;
                continue;
            }
            if assumed(&assume.accept) {
                return End::Accept(rule_ref(table, chain, rule));
            }
            let verdict = match self.rule(rule, table) {
                Step::Next => {
                    at += 1;
                    continue;
                }
                Step::Verdict(v) => v,
                Step::Reject => return End::Reject(rule_ref(table, chain, rule)),
                Step::Nat => return End::Accept(rule_ref(table, chain, rule)),
                Step::Unknown(why) => return End::Unknown(why, rule_ref(table, chain, rule)),
            };
            match verdict {
                VerdictStmt::Accept => return End::Accept(rule_ref(table, chain, rule)),
                VerdictStmt::Drop => return End::Drop(rule_ref(table, chain, rule)),
                VerdictStmt::Continue => at += 1,
                VerdictStmt::Return => match stack.pop() {
                    Some((c, i)) => (chain, at) = (c, i),
                    None => return policy(),
                },
                VerdictStmt::Jump(target) => {
                    if stack.len() >= MAX_DEPTH {
                        return End::Unknown(
                            format!("jumps nest deeper than the kernel's {MAX_DEPTH}"),
                            rule_ref(table, chain, rule),
                        );
                    }
                    self.trail.push(rule_ref(table, chain, rule));
                    stack.push((chain, at + 1));
                    (chain, at) = (&table.chains[target.index], 0);
                }
                VerdictStmt::Goto(target) => {
                    self.trail.push(rule_ref(table, chain, rule));
                    (chain, at) = (&table.chains[target.index], 0);
                }
            }
        }
    }

    /// Runs one rule's statements in order.
    fn rule<'r>(&mut self, rule: &'r Rule, table: &'r Table) -> Step<'r> {
        // The first match the model could not decide: from there on the rule may or may not
        // be running, so anything that would change the path makes the outcome unknown.
        let mut unsure: Option<String> = None;
        let decide = |unsure: Option<String>, step: Step<'r>| match unsure {
            Some(why) => Step::Unknown(why),
            None => step,
        };
        for stmt in &rule.statements {
            match stmt {
                Stmt::Match(m) => match self.ctx.test(m, table) {
                    Tri::Yes => {}
                    Tri::No => return Step::Next,
                    Tri::Maybe(why) => {
                        unsure.get_or_insert(why);
                    }
                },
                Stmt::Verdict(v) => return decide(unsure, Step::Verdict(v)),
                Stmt::Vmap { key, map } => {
                    return match self.ctx.lookup(key, map, table) {
                        Ok(None) => Step::Next,
                        Ok(Some(e)) => match &e.data {
                            Some(MapData::Verdict(v)) => decide(unsure, Step::Verdict(v)),
                            _ => Step::Unknown("a verdict map element without a verdict".into()),
                        },
                        Err(why) => Step::Unknown(why),
                    };
                }
                Stmt::Reject { only } => {
                    return match only {
                        Some(f) if self.ctx.pkt.is_other_family(*f) => Step::Next,
                        _ => decide(unsure, Step::Reject),
                    };
                }
                Stmt::Nat => return decide(unsure, Step::Nat),
                Stmt::SetMark(value) => match self.new_mark(value, unsure.as_deref()) {
                    Some(mark) => self.ctx.mark = mark,
                    None => return Step::Next,
                },
                Stmt::SetCtMark(value) => match self.new_mark(value, unsure.as_deref()) {
                    // Without a conntrack entry the kernel sets nothing.
                    Some(_) if matches!(self.ctx.ct_mark, Tracked::Absent) => {}
                    Some(mark) => self.ctx.ct_mark = mark,
                    None => return Step::Next,
                },
                Stmt::Limit { over } => {
                    if *over {
                        return Step::Next;
                    }
                }
                Stmt::NoEffect => {}
                Stmt::Xt { kind, name } => match (kind, name.as_str()) {
                    (XtKind::Match, _) => {
                        unsure.get_or_insert(format!(
                            "iptables extension match `{name}` (xt compat) cannot be evaluated: \
                             the JSON listing does not show its arguments, and they were not \
                             translated from iptables-nft-save"
                        ));
                    }
                    (XtKind::Target, "MARK") => {
                        self.ctx.mark = Tracked::Unknown(format!(
                            "iptables target MARK in `{}` set a mark the listing does not show",
                            rule.text
                        ));
                    }
                    (XtKind::Target, "CONNMARK") => {
                        let why = format!(
                            "iptables target CONNMARK in `{}` set marks the listing does not show",
                            rule.text
                        );
                        self.ctx.mark = Tracked::Unknown(why.clone());
                        if !matches!(self.ctx.ct_mark, Tracked::Absent) {
                            self.ctx.ct_mark = Tracked::Unknown(why);
                        }
                    }
                    (XtKind::Target, _) => {
                        return Step::Unknown(format!(
                            "iptables extension target `{name}` (xt compat) cannot be evaluated"
                        ));
                    }
                },
                Stmt::Unknown { kind } => {
                    return Step::Unknown(format!(
                        "statement `{kind}` is not understood by this model and may change the \
                         verdict"
                    ));
                }
            }
        }
        Step::Next
    }

    /// The mark a `... mark set VALUE` leaves, `None` when reading VALUE breaks the rule.
    fn new_mark(&self, value: &Expr, unsure: Option<&str>) -> Option<Tracked> {
        if let Some(why) = unsure {
            return Some(Tracked::Unknown(format!(
                "a rule that may or may not have matched ({why}) sets the mark"
            )));
        }
        Some(match self.ctx.value(value) {
            Got::One(V::Num(n)) => Tracked::Known(n & u128::from(u32::MAX)),
            Got::Absent => return None,
            Got::Unknown(why) => Tracked::Unknown(why),
            Got::Partial { why, .. } | Got::Either(_, _, why) => Tracked::Unknown(why.into()),
            Got::One(V::Name(_) | V::Unknown) | Got::Tuple(..) => {
                Tracked::Unknown("a mark set from a name or concatenation".into())
            }
        })
    }
}
