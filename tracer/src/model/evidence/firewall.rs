//! firewalld's configuration from what was pasted: zone and service XML, `firewall-cmd`
//! listings (which also say that firewalld runs, with those zones) and firewalld.conf. What
//! they leave out (the default zone, the services the zones name) is said unknown.

use super::Collected;
use crate::model::{
    capture::Capture,
    firewalld::{self, FALLBACK_ZONE, Runtime},
    view::Unknown,
};

/// firewalld's configuration from zone and service XML, `firewall-cmd` listings and
/// firewalld.conf.
pub(super) fn firewall(c: &mut Capture, k: &Collected) {
    let (listing, conf) = (&k.listing, &k.conf);
    let given = !k.zone_files.is_empty()
        || !k.service_files.is_empty()
        || !listing.zones.is_empty()
        || *conf != (None, None);
    if !given {
        return;
    }
    let mut p = firewalld::read_files(&k.zone_files, &k.service_files);
    c.problems
        .extend(p.problems.iter().map(ToString::to_string));
    for (k, z) in &listing.zones {
        p.zones.entry(k.clone()).or_insert_with(|| z.clone());
    }
    let default = conf.0.clone().or(listing.default_zone.clone());
    if default.is_none() {
        c.unknown.push(Unknown {
            what: "firewalld's default zone".into(),
            why: format!("not in the inputs: taken to be {FALLBACK_ZONE}, firewalld's own default"),
            settle: vec!["firewall-cmd --get-default-zone".into()],
        });
    }
    p.conf.default_zone = default.unwrap_or_else(|| FALLBACK_ZONE.into());
    if let Some(b) = &conf.1 {
        p.conf.backend.clone_from(b);
    }
    let mut missing: Vec<String> = p
        .zones
        .values()
        .flat_map(|z| z.services.iter())
        .filter(|s| !p.services.contains_key(*s))
        .cloned()
        .collect();
    missing.sort();
    missing.dedup();
    if !missing.is_empty() {
        c.unknown.push(Unknown {
            what: format!("the ports of services {}", missing.join(", ")),
            why: "the zones use them and their definitions are not in the inputs: what they open is not known".into(),
            settle: missing.iter().take(4).map(|s| format!("firewall-cmd --info-service={s}")).collect(),
        });
    }
    if !listing.zones.is_empty() {
        // firewall-cmd answered: firewalld runs, with the zones it listed.
        c.runtime = Ok(Some(Runtime {
            state: "RUNNING".into(),
            default_zone: p.conf.default_zone.clone(),
            zones: listing.zones.clone(),
            services: p.services.clone(),
        }));
    }
    c.permanent = Some(p);
}
