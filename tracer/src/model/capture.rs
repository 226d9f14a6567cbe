//! What a diagnosis reads of a node besides the files below its root: the facts of its kernel,
//! firewalld's runtime state over D-Bus, the nftables ruleset with the listings that explain
//! iptables-nft's rules, the legacy iptables tables and k0s's iptables link. [`Capture::live`]
//! reads them on the node; a support bundle stores a capture and gives it back, and evidence
//! pasted from a node makes a partial one. Whatever is not in a capture is unknown: nothing
//! here falls back on the machine that analyses it.

use std::{path::Path, process::Command};

use super::{
    cluster::ClusterConfig,
    firewalld::{self, Permanent, Runtime},
    iptables::{self, LegacyListings},
    nft::SavedRules,
    node::NodeFacts,
    view::{RuleGap, Unknown},
};

/// A listing and where it came from (a command, or a file), for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub text: String,
    pub origin: String,
}

impl Listing {
    pub fn new(text: impl Into<String>, origin: impl Into<String>) -> Self {
        Listing {
            text: text.into(),
            origin: origin.into(),
        }
    }
}

/// The listings that give iptables-nft's `xt` matches their arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedListings {
    /// `iptables-nft-save`.
    pub iptables: Option<String>,
    /// `ip6tables-nft-save`.
    pub ip6tables: Option<String>,
    /// `ipset save`.
    pub ipset: Option<String>,
}

impl SavedListings {
    /// The rules and ipsets they describe, for the evaluator.
    pub fn rules(&self) -> SavedRules {
        let mut saved = SavedRules::default();
        if let Some(t) = &self.iptables {
            saved.add(super::nft::Family::Ip, t);
        }
        if let Some(t) = &self.ip6tables {
            saved.add(super::nft::Family::Ip6, t);
        }
        if let Some(t) = &self.ipset {
            saved.add_ipsets(t);
        }
        saved
    }
}

/// The command the live ruleset comes from.
pub const NFT_LIST: &str = "nft -j list ruleset";

/// Everything a diagnosis reads of a node that is not a file below its root.
#[derive(Clone, Debug)]
pub struct Capture {
    pub facts: NodeFacts,
    /// firewalld's runtime state: `Ok(None)` when it does not run, `Err(why)` when it is
    /// unknown (could not be read, or is not in the evidence).
    pub runtime: Result<Option<Runtime>, String>,
    /// `nft -j list ruleset`, or why there is none.
    pub nft: Result<Listing, String>,
    pub saved: SavedListings,
    /// The legacy iptables tables; `None` when unknown.
    pub legacy: Option<LegacyListings>,
    /// What k0s's bundled iptables links to.
    pub k0s_link: Option<String>,
    /// firewalld's permanent configuration when it comes from evidence (zone and service XML,
    /// `firewall-cmd` listings) rather than from the files below a root.
    pub permanent: Option<Permanent>,
    /// The cluster's configuration when it comes from evidence rather than from a root.
    pub cluster: Option<ClusterConfig>,
    /// What could not be read, one line each (`FILE:LINE: message`).
    pub problems: Vec<String>,
    /// The lines of `problems` about inputs the user named: without them the job is not done.
    pub required_unread: Vec<String>,
    /// Rules of pasted listings that could not be read.
    pub gaps: Vec<RuleGap>,
    /// What else the inputs do not hold (an ipset's members, a service's definition...).
    pub unknown: Vec<Unknown>,
    /// The command managing the iptables tables, when not iptables-nft (see
    /// [`NodeView::iptables_cmd`](super::view::NodeView::iptables_cmd)).
    pub iptables_cmd: Option<String>,
    /// Every part was expected (a capture on the node, a bundle): one that is missing is a
    /// problem, not only unknown.
    pub expect_all: bool,
    /// The ruleset listing is a file the user named (`--ruleset`): when it cannot be read or
    /// parsed, the job is not done either.
    pub ruleset_named: bool,
    /// The legacy listings are the ruleset itself (pasted evidence with no other listing of
    /// their family, loaded as the tables to evaluate): not added to it a second time.
    pub legacy_loaded: bool,
}

impl Capture {
    /// A capture that knows nothing yet: the start of a diagnosis from files.
    pub fn empty(why_runtime: impl Into<String>, why_ruleset: impl Into<String>) -> Self {
        Capture {
            facts: NodeFacts::unknown(),
            runtime: Err(why_runtime.into()),
            nft: Err(why_ruleset.into()),
            saved: SavedListings::default(),
            legacy: None,
            k0s_link: None,
            permanent: None,
            cluster: None,
            problems: Vec::new(),
            required_unread: Vec::new(),
            gaps: Vec::new(),
            unknown: Vec::new(),
            iptables_cmd: None,
            expect_all: false,
            ruleset_named: false,
            legacy_loaded: false,
        }
    }

    /// Reads the node this process runs on (its current network namespace), with the files
    /// below `root` for k0s's iptables link. `thorough` (for a bundle) also lists
    /// iptables-nft's tables when no rule needs them and the ipsets whenever the kernel has
    /// ipsets loaded; a diagnosis reads them only when a rule needs them.
    pub fn live(root: &Path, thorough: bool) -> std::io::Result<Capture> {
        let facts = NodeFacts::read()?;
        let mut problems = Vec::new();
        let runtime = firewalld::read_runtime().map_err(|e| format!("over D-Bus: {e}"));
        let nft = run(NFT_LIST).map(|text| Listing::new(text, NFT_LIST));
        let mut saved = SavedListings::default();
        let uses_xt = nft.as_ref().is_ok_and(|l| l.text.contains("\"xt\""));
        if uses_xt || thorough {
            SavedRules::collect(|argv| {
                let command = argv.join(" ");
                let text = match run(&command) {
                    Ok(t) => t,
                    Err(e) => {
                        log::info!("{e}");
                        return None;
                    }
                };
                match argv[0] {
                    "iptables-nft-save" => saved.iptables = Some(text.clone()),
                    "ip6tables-nft-save" => saved.ip6tables = Some(text.clone()),
                    _ => saved.ipset = Some(text.clone()),
                }
                Some(text)
            });
        }
        let (legacy, legacy_problems) = LegacyListings::read();
        problems.extend(legacy_problems);
        // Asking for ipsets when the kernel has none loaded would load the module; a legacy
        // rule naming a set means it is loaded.
        let legacy_sets = legacy.v4.contains("--match-set") || legacy.v6.contains("--match-set");
        if (thorough || legacy_sets)
            && saved.ipset.is_none()
            && Path::new("/sys/module/ip_set").exists()
        {
            saved.ipset = run("ipset save").map_err(|e| log::info!("{e}")).ok();
        }
        Ok(Capture {
            facts,
            runtime,
            nft,
            saved,
            legacy: Some(legacy),
            k0s_link: iptables::k0s_link(root),
            problems,
            expect_all: true,
            ..Capture::empty("", "")
        })
    }
}

/// Runs a command line (words split on blanks) in the current network namespace: its stdout,
/// or why not.
pub fn run(command: &str) -> Result<String, String> {
    let argv: Vec<&str> = command.split(' ').collect();
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("running `{command}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{command}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
