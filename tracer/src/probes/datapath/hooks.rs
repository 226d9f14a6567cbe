//! Attaching the loaded programs: ingress (tc or XDP, per `--attach`) and egress (tc) on every
//! target, and the drop probe on `kfree_skb`. tc goes through TCX links where the kernel has
//! them; before 6.6 through netlink filters in tracer's own slot ([`crate::probes::tc`]), after
//! removing what a killed earlier run left there. The clsact qdiscs tracer adds for those
//! filters are removed again when it exits.

use aya::programs::{
    BtfTracePoint, LinkOrder, RawTracePoint, SchedClassifier, Xdp,
    tc::{self, NlOptions, SchedClassifierLinkId, TcAttachOptions, TcAttachType, TcHandle},
    xdp::{XdpLinkId, XdpMode},
};
use log::{info, warn};
use tracer_common::drops::DropHook;

use super::{Datapath, Program, attach_error, chain};
use crate::probes::{
    ProbeError,
    attach::{AttachMode, Hook, ingress_plan},
    features, tc as tc_slots,
};

/// A program attached to an interface, for detaching it when the interface goes.
pub(super) enum Link {
    /// A tc program (by name) and its link.
    Tc(&'static str, SchedClassifierLinkId),
    Xdp(XdpLinkId),
}

/// The interfaces whose clsact qdisc tracer added (or found holding only its leftovers), by
/// index: on drop, each loses its qdisc again if nothing else was attached to it meanwhile.
#[derive(Default)]
pub(super) struct ClsactGuard {
    ifindexes: Vec<u32>,
}

impl Drop for ClsactGuard {
    fn drop(&mut self) {
        for &ifindex in &self.ifindexes {
            if let Err(e) = tc_slots::remove_empty_clsact(ifindex) {
                warn!("interface {ifindex}: removing the clsact qdisc tracer added: {e}");
            }
        }
    }
}

impl Datapath {
    /// Attaches ingress (tc or XDP, per `mode`) and egress (tc) programs to every target, then
    /// the drop probe. Says once what this kernel lacks for the run (see
    /// [`features::Features::notes`]).
    pub fn attach(&mut self, mode: AttachMode) -> Result<(), ProbeError> {
        let features = features::get();
        self.mode = mode;
        for i in 0..self.targets.len() {
            if self.targets[i].is_some() {
                self.attach_slot(i)?;
            }
        }
        // Either hook attaches without tracefs, and its link goes away with the process like
        // the others.
        match self.drop_program {
            Some((name, DropHook::Btf | DropHook::BtfPeek)) => {
                let prog: &mut BtfTracePoint = self.program_by_name(name)?;
                prog.attach()
                    .map(drop)
                    .map_err(|e| ProbeError::DropProbe(chain(&e)))?;
            }
            Some((name, DropHook::Raw)) => {
                let prog: &mut RawTracePoint = self.program_by_name(name)?;
                prog.attach("kfree_skb")
                    .map(drop)
                    .map_err(|e| ProbeError::DropProbe(chain(&e)))?;
            }
            None => {}
        }
        let any = self.targets.iter().any(Option::is_some);
        for note in features.notes(any, self.drop_program.is_some()) {
            warn!("{note}");
        }
        Ok(())
    }

    /// Attaches the programs of slot `i`'s interface, keeping their links.
    pub(super) fn attach_slot(&mut self, i: usize) -> Result<(), ProbeError> {
        let tcx = features::get().tcx;
        let Some(target) = self.targets[i].clone() else {
            return Ok(());
        };
        if !tcx {
            self.prepare_netlink_tc(&target.name, target.index)?;
        }
        let plan = ingress_plan(self.mode, target.is_virtual);
        let mut last_err = None;
        for (n, hook) in plan.iter().enumerate() {
            match self.attach_ingress(&target.name, *hook, tcx) {
                Ok(link) => {
                    self.links[i].push(link);
                    self.hooks[i] = Some(*hook);
                    last_err = None;
                    break;
                }
                Err(e) if n + 1 < plan.len() => {
                    info!("{}: {}; falling back to {}", target.name, e, plan[n + 1]);
                }
                Err(e) => last_err = Some(e),
            }
        }
        if let Some(e) = last_err {
            return Err(e);
        }
        if self.hooks[i] == Some(Hook::XdpGeneric) {
            warn!(
                "{}: generic XDP counts a GSO super-packet (a burst the stack has not split \
                 yet) as one ingress packet; bytes stay exact, packets may not (tc counts \
                 segments)",
                target.name
            );
        }
        let link = self.attach_tc(&target.name, TcAttachType::Egress, tcx)?;
        self.links[i].push(link);
        Ok(())
    }

    /// Detaches the programs of slot `i`. Where the interface is gone the kernel has
    /// detached them already; this closes what is left of their links.
    pub(super) fn detach_slot(&mut self, i: usize) {
        for link in std::mem::take(&mut self.links[i]) {
            let done = match link {
                Link::Tc(name, id) => self
                    .program_by_name::<SchedClassifier>(name)
                    .and_then(|p| p.detach(id).map_err(|e| attach_error("", Hook::Tc, &e))),
                Link::Xdp(id) => self
                    .program_by_name::<Xdp>(Program::XdpIngress.name())
                    .and_then(|p| {
                        p.detach(id)
                            .map_err(|e| attach_error("", Hook::XdpGeneric, &e))
                    }),
            };
            if let Err(e) = done {
                log::debug!("slot {}: detaching: {e}", i + 1);
            }
        }
        self.hooks[i] = None;
        // A clsact qdisc tracer added (before TCX) goes too; with the device it is gone
        // already, and the error that says so is no news.
        let index = self.targets[i].as_ref().map(|t| t.index);
        if let Some(at) = index.and_then(|x| self.clsact.ifindexes.iter().position(|&c| c == x)) {
            let ifindex = self.clsact.ifindexes.swap_remove(at);
            if let Err(e) = tc_slots::remove_empty_clsact(ifindex) {
                log::debug!("interface {ifindex}: removing the clsact qdisc: {e}");
            }
        }
    }

    /// Before netlink filters go on `iface`: removes what a killed run left in tracer's slots,
    /// refuses to stack a second copy beside a running tracer, and makes sure the interface has
    /// a clsact qdisc (remembering whether tracer added it).
    fn prepare_netlink_tc(&mut self, iface: &str, ifindex: u32) -> Result<(), ProbeError> {
        let netlink_err = |what: &str, e: std::io::Error| ProbeError::Attach {
            iface: iface.to_string(),
            hook: Hook::Tc,
            reason: format!("{what}: {e}"),
        };
        let cleaned = tc_slots::clean(iface, ifindex)
            .map_err(|e| netlink_err("looking for tc filters an earlier run left", e))?;
        if let Some(live) = cleaned.live.first() {
            return Err(ProbeError::Attach {
                iface: iface.to_string(),
                hook: Hook::Tc,
                reason: format!(
                    "another tracer (pid {}) has its tc filters on this interface; one tracer per interface on kernels without TCX",
                    live.holders
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        for f in &cleaned.removed {
            warn!(
                "{iface}: removed the {} tc filter (program id {}) an earlier tracer left behind",
                f.slot.direction, f.prog_id
            );
        }
        match tc::qdisc_add_clsact(iface) {
            Ok(()) => self.clsact.ifindexes.push(ifindex),
            Err(e) if e.to_string().contains("exist") => {
                if cleaned.qdisc_removed {
                    self.clsact.ifindexes.push(ifindex);
                }
            }
            Err(e) => {
                return Err(ProbeError::Attach {
                    iface: iface.to_string(),
                    hook: Hook::Tc,
                    reason: format!("adding the clsact qdisc: {e}"),
                });
            }
        }
        Ok(())
    }

    fn attach_ingress(&mut self, iface: &str, hook: Hook, tcx: bool) -> Result<Link, ProbeError> {
        let xdp_mode = match hook {
            Hook::Tc => return self.attach_tc(iface, TcAttachType::Ingress, tcx),
            Hook::XdpNative => XdpMode::Driver,
            Hook::XdpGeneric => XdpMode::Skb,
        };
        let prog: &mut Xdp = self.program_by_name(Program::XdpIngress.name())?;
        prog.attach(iface, xdp_mode)
            .map(Link::Xdp)
            .map_err(|e| attach_error(iface, hook, &e))
    }

    fn attach_tc(
        &mut self,
        iface: &str,
        kind: TcAttachType,
        tcx: bool,
    ) -> Result<Link, ProbeError> {
        let (slot, order) = match kind {
            // First on ingress to see packets before any other program drops or redirects
            // them; last on egress to see what really leaves. Our programs always return
            // TCX_NEXT (TC_ACT_UNSPEC for netlink filters), so the others still run.
            TcAttachType::Ingress => (tc_slots::INGRESS, LinkOrder::first()),
            _ => (tc_slots::EGRESS, LinkOrder::last()),
        };
        let options = if tcx {
            TcAttachOptions::TcxOrder(order)
        } else {
            TcAttachOptions::Netlink(NlOptions {
                priority: slot.priority,
                handle: TcHandle::from(tc_slots::HANDLE),
                classid: None,
            })
        };
        let name = slot.program.name();
        let prog: &mut SchedClassifier = self.program_by_name(name)?;
        prog.attach_with_options(iface, kind, options)
            .map(|id| Link::Tc(name, id))
            .map_err(|e| attach_error(iface, Hook::Tc, &e))
    }
}
