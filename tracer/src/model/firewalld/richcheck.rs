//! firewalld's `Rich_Rule.check()` (`firewall/core/rich.py`): the rich rules it refuses although
//! they read, such as an address without the rule's family, an audit without an action or a
//! reject type of the other family. A zone or policy file holding one is still loaded, without
//! the rule.

use super::richrule::{AddrKind, RichAction, RichElement, RichRule, RuleAddr};

impl RichRule {
    /// firewalld's `Rich_Rule.check()`: the rules it refuses although they read. A zone or
    /// policy file holding one is still loaded, without the rule (a warning in its log).
    pub fn check(&self) -> Result<(), String> {
        let family = self.family.as_deref();
        let addr = |a: &Option<RuleAddr>| {
            a.as_ref()
                .is_some_and(|a| matches!(a.what, AddrKind::Address(_)))
        };
        if family.is_none() && (addr(&self.source) || self.destination.is_some()) {
            return Err("an address needs the rule's family".into());
        }
        if !(-32768..=32767).contains(&self.priority) {
            return Err("priority out of range".into());
        }
        if self.element.is_none() && (!self.log || self.priority == 0) {
            if self.action.is_none() {
                return Err("no element, no action".into());
            }
            if self.source.is_none() && self.destination.is_none() && self.priority == 0 {
                return Err("no element, no source, no destination".into());
            }
        }
        let special = matches!(
            self.element,
            Some(RichElement::IcmpBlock(_) | RichElement::Nat(_))
        );
        if !special && !self.log && !self.audit && self.action.is_none() {
            return Err("no action, no log, no audit".into());
        }
        match &self.element {
            Some(RichElement::Port { proto, .. } | RichElement::SourcePort { proto, .. })
                if !["tcp", "udp", "sctp", "dccp"].contains(&proto.as_str()) =>
            {
                return Err(format!("protocol {proto} has no ports"));
            }
            Some(RichElement::IcmpBlock(_) | RichElement::Nat(_)) if self.action.is_some() => {
                return Err("this element takes no action".into());
            }
            _ => {}
        }
        if self.audit
            && !matches!(
                self.action,
                Some(RichAction::Accept | RichAction::Reject(_) | RichAction::Drop)
            )
        {
            return Err("audit needs accept, reject or drop".into());
        }
        if let Some(RichAction::Reject(Some(t))) = &self.action {
            let ok: &[&str] = match family {
                Some("ipv4") => &[
                    "icmp-host-prohibited",
                    "host-prohib",
                    "icmp-net-unreachable",
                    "net-unreach",
                    "icmp-host-unreachable",
                    "host-unreach",
                    "icmp-port-unreachable",
                    "port-unreach",
                    "icmp-proto-unreachable",
                    "proto-unreach",
                    "icmp-net-prohibited",
                    "net-prohib",
                    "tcp-reset",
                    "tcp-rst",
                    "icmp-admin-prohibited",
                    "admin-prohib",
                ],
                Some("ipv6") => &[
                    "icmp6-adm-prohibited",
                    "adm-prohibited",
                    "icmp6-no-route",
                    "no-route",
                    "icmp6-addr-unreachable",
                    "addr-unreach",
                    "icmp6-port-unreachable",
                    "port-unreach",
                    "tcp-reset",
                ],
                _ => return Err("a reject type needs the rule's family".into()),
            };
            if !ok.contains(&t.as_str()) {
                return Err(format!("reject type {t} is not one of the family's"));
            }
        }
        Ok(())
    }
}
