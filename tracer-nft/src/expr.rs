//! The typed form of rules: statements and expressions compiled from the JSON listing, with
//! every constant already converted to the type of the field it is compared with (addresses and
//! prefixes to numeric ranges, `established` to its ct state bit, `tcp` to 6) and every chain or
//! set reference resolved to an index into its table. The evaluator runs this form and never
//! looks at JSON or text again.

/// One statement of a rule. The kernel runs them in order and stops at the first false match.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// A comparison; when false the rule ends and the next rule runs.
    Match(Match),
    /// `accept`, `drop`, `continue`, `return`, `jump` or `goto`.
    Verdict(VerdictStmt),
    /// `KEY vmap { ... }` / `KEY vmap @map`: the verdict of the element the key finds; when the
    /// key finds none the rule does not match.
    Vmap {
        /// What is looked up.
        key: Expr,
        /// Where.
        map: SetSource,
    },
    /// `reject ...` (or iptables-nft's `xt target REJECT`): ends evaluation like `drop`, sending
    /// an error back.
    Reject {
        /// The packet family it applies to, when nft added a hidden dependency (`reject with
        /// icmp ...` in an inet table rejects only IPv4; other packets go on to the next rule).
        only: Option<super::Family>,
    },
    /// `meta mark set VALUE`: later `meta mark` matches see the new mark.
    SetMark(Expr),
    /// `ct mark set VALUE`: later `ct mark` matches see the new mark.
    SetCtMark(Expr),
    /// `limit rate ...`, `quota ...` and set updates carrying one: taken as "the packet is within
    /// the rate/quota", so the plain form matches and the `over` form does not.
    Limit {
        /// True for `limit rate over` / `quota over`.
        over: bool,
    },
    /// `dnat`, `snat`, `masquerade`, `redirect`: end the (nat) base chain like accept.
    Nat,
    /// Statements that neither end evaluation nor change later matches: counter, log, notrack,
    /// set updates, ct helper assignment, and iptables-nft's `xt match comment`, watchers and
    /// logging or tracking targets (LOG, NFLOG, CT, NOTRACK, TRACE, AUDIT).
    NoEffect,
    /// An iptables-nft compat extension whose effect depends on its arguments, which the JSON
    /// listing does not show (it shows the name).
    Xt {
        /// Match or target.
        kind: XtKind,
        /// The extension's name, e.g. `conntrack`.
        name: String,
    },
    /// A statement this model does not know; it may end evaluation or change the packet.
    Unknown {
        /// The JSON statement's name.
        kind: String,
    },
}

/// The kind of an `xt` compat statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XtKind {
    /// `-m NAME`: a condition.
    Match,
    /// `-j NAME`: an action.
    Target,
}

/// `LEFT OP RIGHT`.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// What is read from the packet.
    pub left: Expr,
    /// How it is compared.
    pub op: Op,
    /// What it is compared with.
    pub right: Rhs,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==` (implicit in nft text): equal, inside the prefix/range, or a member of the set.
    Eq,
    /// `!=`: the negation of [`Op::Eq`] (the field must still exist in the packet).
    Ne,
    /// `<`.
    Lt,
    /// `>`.
    Gt,
    /// `<=`.
    Le,
    /// `>=`.
    Ge,
    /// JSON `in`, the implicit flag test of nft text (`ct state established,related`):
    /// `(LEFT & RIGHT) != 0`.
    AnyBit,
    /// JSON `!`, nft text `ct state ! established,related`: `(LEFT & RIGHT) == 0`.
    NoBit,
}

/// The right-hand side of a match.
#[derive(Clone, Debug, PartialEq)]
pub enum Rhs {
    /// One value, prefix or range (one pattern per concatenated component).
    Value(Key),
    /// Set membership.
    Set(SetSource),
}

/// An anonymous set written in the rule, or a reference to a named set of the table.
#[derive(Clone, Debug, PartialEq)]
pub enum SetSource {
    /// `{ a, b, c }`.
    Anonymous(Vec<Element>),
    /// `@name`: `index` is the set's position in [`super::Table::sets`].
    Named {
        /// Index into the table's sets.
        index: usize,
        /// The set's name.
        name: String,
    },
}

/// A key: one pattern per concatenated component (a single one without concatenation).
pub type Key = Vec<Pattern>;

/// One component of a value a field is compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// Numbers, addresses and symbolic constants as an inclusive range (a single value has
    /// `lo == hi`; `10.0.0.0/8` is `10.0.0.0..=10.255.255.255`).
    Range {
        /// Lowest value.
        lo: u128,
        /// Highest value.
        hi: u128,
    },
    /// An interface name, compared exactly.
    Name(String),
    /// An interface name wildcard such as `"cali*"`: the part before the `*`.
    NamePrefix(String),
    /// A constant that could not be read as the field's type; comparing with it is unknown.
    Unresolved(String),
}

/// An element of a set or map.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    /// The key.
    pub key: Key,
    /// A map element's data.
    pub data: Option<MapData>,
}

/// The data of a map element.
#[derive(Clone, Debug, PartialEq)]
pub enum MapData {
    /// A verdict (verdict maps).
    Verdict(VerdictStmt),
    /// A value (address, mark, ...).
    Value(Pattern),
}

/// A verdict statement or verdict map data.
#[derive(Clone, Debug, PartialEq)]
pub enum VerdictStmt {
    /// Ends this base chain; the next base chain of the hook still runs.
    Accept,
    /// Ends evaluation: the packet is dropped.
    Drop,
    /// Continues with the next rule.
    Continue,
    /// Back to the rule after the last jump (the policy, in a base chain).
    Return,
    /// Into a chain, coming back after it.
    Jump(ChainRef),
    /// Into a chain, not coming back: its end returns to the last jump.
    Goto(ChainRef),
}

/// A chain named by a jump, goto or verdict map.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainRef {
    /// The chain's name.
    pub name: String,
    /// Its position in [`super::Table::chains`].
    pub index: usize,
}

/// Something read from the packet or its metadata.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `meta KEY` (also `iifname`, `oifname`, `iif`, `oif`).
    Meta(MetaKey),
    /// A header field.
    Payload(Field),
    /// Connection tracking data (`dir` for `ct original ...` / `ct reply ...`).
    Ct {
        /// Which datum.
        key: CtKey,
        /// Which direction's tuple, when given.
        dir: Option<CtDir>,
        /// The address family of tuple addresses (`ct original ip saddr`).
        family: Option<super::Family>,
    },
    /// A FIB (routing) lookup.
    Fib(FibQuery),
    /// `LEFT & MASK`, `LEFT | BITS`, `LEFT ^ BITS`, `LEFT << N`, `LEFT >> N`.
    Binop {
        /// The operator, as nft writes it.
        op: BinOp,
        /// The value operated on.
        left: Box<Expr>,
        /// The constant.
        right: u128,
    },
    /// `a . b . c`.
    Concat(Vec<Expr>),
    /// A constant (the value of `meta mark set 0x1`).
    Const(u128),
    /// An expression this model cannot read from a packet description, with its rendering.
    Unsupported(String),
}

/// A bitwise operator of [`Expr::Binop`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `&`.
    And,
    /// `|`.
    Or,
    /// `^`.
    Xor,
    /// `<<`.
    Shl,
    /// `>>`.
    Shr,
}

/// A `meta` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetaKey {
    /// Transport protocol number (skipping IPv6 extension headers).
    L4proto,
    /// Ethertype.
    Protocol,
    /// `ipv4` or `ipv6`.
    Nfproto,
    /// The packet mark.
    Mark,
    /// Input interface (compared by name here).
    Iif,
    /// Output interface (compared by name here).
    Oif,
    /// Input interface name.
    Iifname,
    /// Output interface name.
    Oifname,
    /// host, broadcast, multicast, other.
    Pkttype,
    /// Any other key (skuid, cgroup, ...): not in a packet description.
    Other(String),
}

/// A transport protocol with ports, as in `tcp dport` (`Th` is the protocol-less `th dport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
    /// `udplite`.
    Udplite,
    /// `sctp`.
    Sctp,
    /// `dccp`.
    Dccp,
    /// `th`: whatever transport header follows.
    Th,
}

impl L4 {
    /// The protocols with a number of their own (all but `th`).
    pub(crate) const NUMBERED: [L4; 5] = [L4::Tcp, L4::Udp, L4::Udplite, L4::Sctp, L4::Dccp];

    /// The protocol of a payload expression, as nft names it (`tcp`, ..., `th`).
    pub(crate) fn from_name(name: &str) -> Option<L4> {
        Some(match name {
            "tcp" => L4::Tcp,
            "udp" => L4::Udp,
            "udplite" => L4::Udplite,
            "sctp" => L4::Sctp,
            "dccp" => L4::Dccp,
            "th" => L4::Th,
            _ => return None,
        })
    }

    /// Its IP protocol number; `None` for `th`, which reads whatever protocol follows.
    pub(crate) fn number(self) -> Option<u8> {
        Some(match self {
            L4::Tcp => 6,
            L4::Udp => 17,
            L4::Udplite => 136,
            L4::Sctp => 132,
            L4::Dccp => 33,
            L4::Th => return None,
        })
    }
}

/// A header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// `ip saddr`.
    IpSaddr,
    /// `ip daddr`.
    IpDaddr,
    /// `ip protocol`.
    IpProtocol,
    /// `ip6 saddr`.
    Ip6Saddr,
    /// `ip6 daddr`.
    Ip6Daddr,
    /// `ip6 nexthdr` (taken as the transport protocol: no extension headers).
    Ip6Nexthdr,
    /// `PROTO sport`.
    Sport(L4),
    /// `PROTO dport`.
    Dport(L4),
    /// `icmp type`.
    IcmpType,
    /// `icmpv6 type`.
    Icmpv6Type,
    /// Any other field (`ip ttl`, `tcp flags`, ...): not in a packet description.
    Other {
        /// The header, e.g. `tcp`.
        protocol: String,
        /// The field, e.g. `flags`.
        field: String,
    },
}

/// A `ct` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CtKey {
    /// new, established, related, invalid, untracked (bits).
    State,
    /// expected, seen-reply, assured, confirmed, snat, dnat, dying (bits).
    Status,
    /// The connection's mark.
    Mark,
    /// original or reply.
    Direction,
    /// `ct l3proto`.
    L3proto,
    /// `ct protocol`.
    Protocol,
    /// `ct [dir] ip saddr`.
    Saddr,
    /// `ct [dir] ip daddr`.
    Daddr,
    /// `ct [dir] proto-src`.
    ProtoSrc,
    /// `ct [dir] proto-dst`.
    ProtoDst,
    /// Any other key (zone, helper, label, ...).
    Other(String),
}

/// A conntrack tuple direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtDir {
    /// The direction of the connection's first packet.
    Original,
    /// The answering direction.
    Reply,
}

/// A FIB lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibQuery {
    /// `fib daddr type` (also with `. iif`/`. mark`): the destination's address type.
    DaddrType,
    /// Any other lookup (reverse-path `fib saddr . iif oif`, ...), with its rendering: it needs
    /// the node's routing table.
    Other(String),
}
