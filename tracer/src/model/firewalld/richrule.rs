//! A rich rule's text (`firewall-cmd --list-rich-rules`, zone and policy XML read by
//! [`super::rich`]) read back into its parts, as firewalld's own `Rich_Rule._lexer` and
//! `_import_from_string` (`firewall/core/rich.py`) read it: `rule [priority] [family] [source]
//! [destination] [element] [log|nflog] [audit] [action]`, each limit after what it limits. The
//! text is kept as written, so the rule is named (and removed) by the exact string firewalld
//! knows it by.

use std::fmt;

/// An address match of a rule: `source`/`destination`, maybe inverted (`NOT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAddr {
    /// `NOT`.
    pub invert: bool,
    /// What is matched.
    pub what: AddrKind,
}

/// What a source or destination names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrKind {
    /// An address or network as written.
    Address(String),
    /// A MAC address (sources only).
    Mac(String),
    /// An ipset by name.
    Ipset(String),
}

/// The one element of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RichElement {
    /// `service name=...`.
    Service(String),
    /// `port port=... protocol=...`.
    Port { port: String, proto: String },
    /// `protocol value=...`.
    Protocol(String),
    /// `source-port port=... protocol=...`.
    SourcePort { port: String, proto: String },
    /// `icmp-block name=...` (rejects unless an action says otherwise).
    IcmpBlock(String),
    /// `icmp-type name=...`.
    IcmpType(String),
    /// `masquerade`, `forward-port ...`, `tcp-mss-clamp`: NAT and mangle, never a filter verdict.
    Nat(String),
}

/// What a rule does with a packet it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RichAction {
    Accept,
    /// `reject [type=...]`.
    Reject(Option<String>),
    Drop,
    /// `mark set=...`: mangle, no verdict.
    Mark(String),
}

impl RichAction {
    /// Whether the action ends the packet's way through the filter chains refused.
    pub fn refuses(&self) -> bool {
        matches!(self, RichAction::Reject(_) | RichAction::Drop)
    }
}

/// A rich rule read from its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RichRule {
    /// The text as given (firewalld's canonical form when it came from firewalld).
    pub text: String,
    /// `priority=...`, 0 when absent.
    pub priority: i32,
    /// `ipv4` or `ipv6`, when given.
    pub family: Option<String>,
    pub source: Option<RuleAddr>,
    pub destination: Option<RuleAddr>,
    pub element: Option<RichElement>,
    /// A `log` or `nflog` part.
    pub log: bool,
    /// An `audit` part.
    pub audit: bool,
    pub action: Option<RichAction>,
    /// The action has a `limit`: the kernel applies it only within the rate.
    pub limited: bool,
}

/// Why a text is not a rich rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a rich rule ({why}): {text}")]
pub struct RichRuleError {
    pub text: String,
    pub why: String,
}

impl fmt::Display for RichRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits like firewalld's `splitArgs` (shlex): words, with double or single quotes removed.
fn split_args(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unbalanced quotes".into());
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The parts of a rule being read: the element whose attributes follow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Rule,
    Source,
    Destination,
    Element,
    Log,
    Audit,
    Action,
    Limit,
}

/// The element being read, whose attributes follow it, and the rule it goes to.
struct Reader {
    r: RichRule,
    part: Part,
    invert: bool,
    /// The element's or action's name and attributes, finished at the next part.
    pending: Option<(String, Vec<(String, String)>)>,
}

impl Reader {
    fn fail(&self, why: &str) -> RichRuleError {
        RichRuleError {
            text: self.r.text.clone(),
            why: why.to_string(),
        }
    }

    /// Ends the pending element or action.
    fn finish(&mut self) -> Result<(), RichRuleError> {
        let Some((name, attrs)) = self.pending.take() else {
            return Ok(());
        };
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(a, _)| a == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let action = match name.as_str() {
            "accept" => Some(RichAction::Accept),
            "drop" => Some(RichAction::Drop),
            "reject" => {
                let t = get("type");
                Some(RichAction::Reject((!t.is_empty()).then_some(t)))
            }
            "mark" => Some(RichAction::Mark(get("set"))),
            _ => None,
        };
        if action.is_some() {
            self.r.action = action;
            return Ok(());
        }
        let element = match name.as_str() {
            "service" => RichElement::Service(get("name")),
            "port" => RichElement::Port {
                port: get("port"),
                proto: get("protocol"),
            },
            "source-port" => RichElement::SourcePort {
                port: get("port"),
                proto: get("protocol"),
            },
            "protocol" => RichElement::Protocol(get("value")),
            "icmp-block" => RichElement::IcmpBlock(get("name")),
            "icmp-type" => RichElement::IcmpType(get("name")),
            other => RichElement::Nat(other.to_string()),
        };
        if self.r.element.is_some() {
            return Err(self.fail("more than one element"));
        }
        self.r.element = Some(element);
        Ok(())
    }

    /// `key=value` of the current part.
    fn attribute(&mut self, k: &str, v: &str) -> Result<(), RichRuleError> {
        match (self.part, k) {
            (Part::Rule, "priority") => {
                self.r.priority = v.trim().parse().map_err(|_| self.fail("bad priority"))?;
            }
            (Part::Rule, "family") => self.r.family = Some(v.to_string()),
            (Part::Source | Part::Destination, _) => {
                let what = match k {
                    "address" => AddrKind::Address(v.to_string()),
                    "mac" if self.part == Part::Source => AddrKind::Mac(v.to_string()),
                    "ipset" => AddrKind::Ipset(v.to_string()),
                    "invert" => {
                        self.invert =
                            v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("yes");
                        return Ok(());
                    }
                    _ => return Err(self.fail(&format!("bad attribute {k}"))),
                };
                let addr = RuleAddr {
                    invert: self.invert,
                    what,
                };
                if self.part == Part::Source {
                    self.r.source = Some(addr);
                } else {
                    self.r.destination = Some(addr);
                }
            }
            (Part::Element | Part::Action, _) => {
                if let Some((_, attrs)) = self.pending.as_mut() {
                    attrs.push((k.to_string(), v.to_string()));
                }
            }
            (Part::Limit | Part::Log | Part::Audit, _) => {}
            (Part::Rule, _) => return Err(self.fail(&format!("bad attribute {k}"))),
        }
        Ok(())
    }

    /// A word that starts a part.
    fn word(&mut self, w: &str) -> Result<(), RichRuleError> {
        if matches!(w, "NOT" | "not") {
            self.invert = true;
            return Ok(());
        }
        if w == "limit" {
            if self.part == Part::Action {
                self.r.limited = true;
            }
            self.part = Part::Limit;
            return Ok(());
        }
        self.finish()?;
        self.part = match w {
            "source" | "destination" => {
                self.invert = false;
                if w == "source" {
                    Part::Source
                } else {
                    Part::Destination
                }
            }
            "service" | "port" | "protocol" | "source-port" | "icmp-block" | "icmp-type"
            | "masquerade" | "forward-port" | "tcp-mss-clamp" => {
                self.pending = Some((w.to_string(), Vec::new()));
                Part::Element
            }
            "log" | "nflog" => {
                self.r.log = true;
                Part::Log
            }
            "audit" => {
                self.r.audit = true;
                Part::Audit
            }
            "accept" | "drop" | "reject" | "mark" => {
                if self.r.action.is_some() {
                    return Err(self.fail("more than one action"));
                }
                self.pending = Some((w.to_string(), Vec::new()));
                Part::Action
            }
            other => return Err(self.fail(&format!("unknown word {other:?}"))),
        };
        Ok(())
    }
}

impl RichRule {
    /// Reads `text`.
    pub fn parse(text: &str) -> Result<RichRule, RichRuleError> {
        let fail = |why: &str| RichRuleError {
            text: text.to_string(),
            why: why.to_string(),
        };
        let words = split_args(text).map_err(|w| fail(&w))?;
        if words.first().map(String::as_str) != Some("rule") {
            return Err(fail("it does not start with `rule`"));
        }
        let mut reader = Reader {
            r: RichRule {
                text: text.to_string(),
                priority: 0,
                family: None,
                source: None,
                destination: None,
                element: None,
                log: false,
                audit: false,
                action: None,
                limited: false,
            },
            part: Part::Rule,
            invert: false,
            pending: None,
        };
        for w in &words[1..] {
            match w.split_once('=') {
                Some((k, v)) => reader.attribute(k, v)?,
                None => reader.word(w)?,
            }
        }
        reader.finish()?;
        let r = reader.r;
        let no_verdict_needed = matches!(
            r.element,
            Some(RichElement::IcmpBlock(_) | RichElement::Nat(_))
        );
        if r.action.is_none() && !no_verdict_needed && !r.log && !r.audit {
            return Err(fail("no action"));
        }
        Ok(r)
    }

    /// What the rule's filter rules do to a packet they match: `None` for a rule that gives
    /// no verdict (log or audit only, mark, NAT elements).
    pub fn verdict(&self) -> Option<RichAction> {
        match (&self.element, &self.action) {
            (Some(RichElement::Nat(_)), _) | (_, Some(RichAction::Mark(_))) => None,
            (Some(RichElement::IcmpBlock(_)), None) => Some(RichAction::Reject(None)),
            (_, a) => a.clone(),
        }
    }

    /// The chain stage the rule's verdict goes to, as `_rich_rule_chain_suffix`: `pre` for a
    /// negative priority, `post` for a positive one, else `deny` for what refuses (and
    /// icmp-blocks) and `allow` for what accepts.
    pub fn stage(&self) -> &'static str {
        if self.priority < 0 {
            "pre"
        } else if self.priority > 0 {
            "post"
        } else if matches!(self.element, Some(RichElement::IcmpBlock(_)))
            || self.action.as_ref().is_some_and(RichAction::refuses)
        {
            "deny"
        } else {
            "allow"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_texts_read_back() {
        let r = RichRule::parse(
            r#"rule priority="-5" family="ipv4" source NOT address="10.0.0.0/8" destination ipset="x" port port="179" protocol="tcp" log prefix="a b" level="info" limit value="3/m" reject type="icmp-host-prohibited" limit value="2/s""#,
        )
        .unwrap();
        assert_eq!(r.priority, -5);
        assert_eq!(r.family.as_deref(), Some("ipv4"));
        assert_eq!(
            r.source,
            Some(RuleAddr {
                invert: true,
                what: AddrKind::Address("10.0.0.0/8".into())
            })
        );
        assert_eq!(
            r.destination,
            Some(RuleAddr {
                invert: false,
                what: AddrKind::Ipset("x".into())
            })
        );
        assert_eq!(
            r.element,
            Some(RichElement::Port {
                port: "179".into(),
                proto: "tcp".into()
            })
        );
        assert!(r.log && r.limited);
        assert_eq!(
            r.action,
            Some(RichAction::Reject(Some("icmp-host-prohibited".into())))
        );
        assert_eq!(r.stage(), "pre");

        let b = RichRule::parse(r#"rule icmp-block name="echo-request""#).unwrap();
        assert_eq!(b.verdict(), Some(RichAction::Reject(None)));
        assert_eq!(b.stage(), "deny");
        let m =
            RichRule::parse(r#"rule family="ipv4" source address="1.2.3.4" mark set=0x1"#).unwrap();
        assert_eq!(m.verdict(), None);
        assert!(RichRule::parse("rule accept drop").is_err());
        assert!(RichRule::parse("accept").is_err());
    }
}
