//! What firewalld's file readers refuse ([`Refusal`]: the whole file is rejected) or ignore with
//! a warning ([`Warning`]) in a zone or service file, located at a line and column. The
//! permanent reader reports both as [`ReadProblem`](super::ReadProblem)s.

use roxmltree::TextPos;

use super::check::ValueError;

/// A place in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl From<TextPos> for Position {
    fn from(p: TextPos) -> Self {
        Position {
            line: p.row,
            column: p.col,
        }
    }
}

/// Something found at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub at: Position,
    pub what: T,
}

/// Why firewalld refuses a zone or service file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// roxmltree's message, without the position it ends with.
    #[error("not well-formed XML: {0}")]
    NotXml(String),
    #[error("root element is <{found}>, not <{expected}>")]
    Root {
        found: String,
        expected: &'static str,
    },
    #[error("unexpected element <{0}>")]
    UnexpectedElement(String),
    #[error("missing attribute {attribute} for <{element}>")]
    MissingAttribute {
        attribute: &'static str,
        element: String,
    },
    #[error("<{element}>: unexpected attribute {attribute}")]
    UnexpectedAttribute { element: String, attribute: String },
    #[error("invalid zone target {0:?} (one of default, ACCEPT, DROP, %%REJECT%%)")]
    Target(String),
    #[error("to-addr {0:?} is not a valid address")]
    ToAddress(String),
    /// A service's `<destination>` address that is not of its attribute's family.
    #[error("{address:?} is not a valid {attribute} address")]
    Destination {
        address: String,
        attribute: &'static str,
    },
    #[error("rule priority {0:?} is not an integer")]
    RulePriority(String),
    #[error("rule source has no address, mac or ipset")]
    RuleSourceEmpty,
    #[error("rule destination has no address or ipset")]
    RuleDestinationEmpty,
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// What firewalld ignores with a warning, and what that costs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Warning {
    #[error("a zone source cannot be inverted; firewalld ignores it")]
    InvertedSource,
    #[error("source with both address and ipset; firewalld ignores it")]
    SourceAddressAndIpset,
    #[error("source without address or ipset (a MAC goes in address=); firewalld ignores it")]
    SourceWithoutAddress,
    #[error(
        "invalid rich rule (bad family, two elements, actions, audits or limits, or a rule firewalld's check refuses, such as an address without a family); firewalld ignores it"
    )]
    InvalidRichRule,
    /// An action or `<destination>` outside a rule (firewalld's SAX quirk).
    #[error(
        "<{0}> outside a rule: firewalld ignores it and every element after it up to the end of the next <rule>"
    )]
    OutsideRule(String),
}

/// Why firewalld refuses a policy, ipset or direct file (read without positions).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ObjectError(pub String);

impl From<String> for ObjectError {
    fn from(s: String) -> Self {
        ObjectError(s)
    }
}

impl From<&str> for ObjectError {
    fn from(s: &str) -> Self {
        ObjectError(s.to_string())
    }
}
