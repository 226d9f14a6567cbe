//! firewalld's runtime state over D-Bus (interface `org.fedoraproject.FirewallD1`, object
//! `/org/fedoraproject/FirewallD1`, firewalld 1.x), read with zbus's blocking API:
//!
//! - `org.freedesktop.DBus.NameHasOwner` (is firewalld on the bus at all),
//! - `org.freedesktop.DBus.Properties.Get(FirewallD1, "state")` (`RUNNING`, `FAILED`, `INIT`),
//! - `FirewallD1.getDefaultZone`, `FirewallD1.zone.getZones`,
//! - `FirewallD1.zone.getZoneSettings2(zone) -> a{sv}` for every zone,
//! - `FirewallD1.getServiceSettings2(service) -> a{sv}` for the services zones use, and the
//!   services those include.
//!
//! `getZoneSettings2` answers with the permanent settings overlaid by the runtime ones (an
//! empty runtime list removes the key), so an absent key means empty. Calls need root (or a
//! polkit grant) on a real system bus.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::time::Duration;

use zbus::blocking::Connection;
use zbus::blocking::connection::Builder;
use zbus::message::Message;
use zbus::zvariant::{OwnedValue, Value};

use super::xml::forward_port_str;
use super::{PortProto, Runtime, Service, Target, Zone};

const NAME: &str = "org.fedoraproject.FirewallD1";
const PATH: &str = "/org/fedoraproject/FirewallD1";
const IFACE: &str = "org.fedoraproject.FirewallD1";
const IFACE_ZONE: &str = "org.fedoraproject.FirewallD1.zone";
/// libdbus's default when `DBUS_SYSTEM_BUS_ADDRESS` is unset.
const DEFAULT_SYSTEM_BUS: &str = "unix:path=/var/run/dbus/system_bus_socket";
/// firewalld answers in milliseconds; a call that takes longer than this means it is stuck.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the runtime state could not be read although a bus or a firewalld seemed to be there.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The bus address is invalid, or connecting or authenticating failed for a reason other
    /// than "nothing listens there".
    #[error("cannot use the system bus at {address}: {source}")]
    BusUnreachable {
        /// The bus address tried.
        address: String,
        /// zbus's error (boxed: it is large, and this path is rare).
        #[source]
        source: Box<zbus::Error>,
    },
    /// The bus or firewalld refused the caller.
    #[error(
        "not allowed to call {method} on {address}: {message} (firewalld's D-Bus API needs root or a polkit grant)"
    )]
    Permission {
        /// The bus address.
        address: String,
        /// The method refused.
        method: String,
        /// The bus's or firewalld's explanation.
        message: String,
    },
    /// firewalld owned its name but went away (or stopped answering) while being read.
    #[error("firewalld stopped answering during {method}: {message}")]
    NotRunning {
        /// The call that got no answer.
        method: String,
        /// What happened.
        message: String,
    },
    /// firewalld is starting or reloading: its state is neither RUNNING nor FAILED.
    #[error("firewalld is not ready (state {state:?}); it is starting or reloading, try again")]
    NotReady {
        /// The `state` property.
        state: String,
    },
    /// firewalld answered a call with an error.
    #[error("firewalld refused {method}: {name}: {message}")]
    Refused {
        /// The call, with its argument.
        method: String,
        /// The D-Bus error name.
        name: String,
        /// firewalld's message (`INVALID_ZONE: ...` and so on).
        message: String,
    },
    /// A reply did not have the expected shape.
    #[error("unexpected reply to {method}: {detail}")]
    UnexpectedReply {
        /// The call.
        method: String,
        /// What was wrong with the reply.
        detail: String,
    },
}

/// Reads firewalld's runtime state over the system bus (DBUS_SYSTEM_BUS_ADDRESS or the
/// default). Ok(None) when no firewalld runs (bus absent or name not owned); Err when it runs
/// but answers oddly.
pub fn read_runtime() -> Result<Option<Runtime>, RuntimeError> {
    let address = std::env::var("DBUS_SYSTEM_BUS_ADDRESS")
        .ok()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| DEFAULT_SYSTEM_BUS.to_string());
    read_runtime_at(&address)
}

/// [`read_runtime`] on the bus at `address` (`unix:path=/run/...`), for a firewalld on a
/// private bus such as a lab node's.
pub fn read_runtime_at(address: &str) -> Result<Option<Runtime>, RuntimeError> {
    let Some(bus) = Bus::connect(address)? else {
        return Ok(None);
    };
    let owned: bool = bus
        .call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            &(NAME,),
            NAME,
        )
        .and_then(|m| body_of(&m, "NameHasOwner"))?;
    if !owned {
        return Ok(None);
    }
    let state: OwnedValue = bus
        .call(
            NAME,
            PATH,
            "org.freedesktop.DBus.Properties",
            "Get",
            &(IFACE, "state"),
            "state",
        )
        .and_then(|m| body_of(&m, "Get(state)"))?;
    let state = str_of(&state).ok_or_else(|| unexpected("Get(state)", "state is not a string"))?;
    if state != "RUNNING" && state != "FAILED" {
        return Err(RuntimeError::NotReady { state });
    }

    let default_zone: String = bus
        .call(NAME, PATH, IFACE, "getDefaultZone", &(), "")
        .and_then(|m| body_of(&m, "getDefaultZone"))?;
    let names: Vec<String> = bus
        .call(NAME, PATH, IFACE_ZONE, "getZones", &(), "")
        .and_then(|m| body_of(&m, "getZones"))?;

    let mut zones = BTreeMap::new();
    for name in names {
        let what = format!("getZoneSettings2({name})");
        let settings: HashMap<String, OwnedValue> = bus
            .call(NAME, PATH, IFACE_ZONE, "getZoneSettings2", &(&name,), &name)
            .and_then(|m| body_of(&m, &what))?;
        zones.insert(name.clone(), zone_of(&name, &settings, &what)?);
    }

    let mut services = BTreeMap::new();
    let mut todo: Vec<String> = zones
        .values()
        .flat_map(|z: &Zone| z.services.iter().cloned())
        .collect();
    while let Some(name) = todo.pop() {
        if services.contains_key(&name) {
            continue;
        }
        let what = format!("getServiceSettings2({name})");
        let reply = bus.call(NAME, PATH, IFACE, "getServiceSettings2", &(&name,), &name);
        let settings: HashMap<String, OwnedValue> = match reply {
            Ok(m) => body_of(&m, &what)?,
            // An include naming a service that does not exist: nothing to show for it.
            Err(RuntimeError::Refused { .. }) => continue,
            Err(e) => return Err(e),
        };
        let s = service_of(&name, &settings, &what)?;
        todo.extend(s.includes.iter().cloned());
        services.insert(name, s);
    }

    Ok(Some(Runtime {
        state,
        default_zone,
        zones,
        services,
    }))
}

/// A connection with the address kept for messages.
struct Bus {
    conn: Connection,
    address: String,
}

impl Bus {
    /// `None` when nothing listens at `address` (no socket, or connection refused).
    fn connect(address: &str) -> Result<Option<Bus>, RuntimeError> {
        let built = Builder::address(address).and_then(|b| b.method_timeout(CALL_TIMEOUT).build());
        match built {
            Ok(conn) => Ok(Some(Bus {
                conn,
                address: address.to_string(),
            })),
            Err(e) => match io_kind(&e) {
                Some(ErrorKind::NotFound | ErrorKind::ConnectionRefused) => Ok(None),
                Some(ErrorKind::PermissionDenied) => Err(RuntimeError::Permission {
                    address: address.to_string(),
                    method: "connect".to_string(),
                    message: e.to_string(),
                }),
                // dbus-daemon hangs up during authentication on a user its policy does not let
                // connect (seen as uid 65534 on a lab bus whose policy names only root).
                Some(
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof,
                ) => Err(RuntimeError::Permission {
                    address: address.to_string(),
                    method: "connect".to_string(),
                    message: format!(
                        "the bus hung up while authenticating ({e}); its policy probably does not let this user connect"
                    ),
                }),
                _ => Err(RuntimeError::BusUnreachable {
                    address: address.to_string(),
                    source: Box::new(e),
                }),
            },
        }
    }

    fn call<B>(
        &self,
        dest: &str,
        path: &str,
        iface: &str,
        method: &str,
        body: &B,
        arg: &str,
    ) -> Result<Message, RuntimeError>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let what = format!("{method}({arg})");
        self.conn
            .call_method(Some(dest), path, Some(iface), method, body)
            .map_err(|e| self.classify(&what, &e))
    }

    fn classify(&self, method: &str, e: &zbus::Error) -> RuntimeError {
        if let zbus::Error::MethodError(name, detail, _) = e {
            let message = detail.clone().unwrap_or_default();
            return match name.as_str() {
                "org.freedesktop.DBus.Error.AccessDenied"
                | "org.fedoraproject.FirewallD1.NotAuthorizedException" => {
                    RuntimeError::Permission {
                        address: self.address.clone(),
                        method: method.to_string(),
                        message,
                    }
                }
                "org.freedesktop.DBus.Error.ServiceUnknown"
                | "org.freedesktop.DBus.Error.NameHasNoOwner"
                | "org.freedesktop.DBus.Error.NoReply" => RuntimeError::NotRunning {
                    method: method.to_string(),
                    message,
                },
                other => RuntimeError::Refused {
                    method: method.to_string(),
                    name: other.to_string(),
                    message,
                },
            };
        }
        RuntimeError::NotRunning {
            method: method.to_string(),
            message: e.to_string(),
        }
    }
}

/// The body of the reply `m` to `method`.
fn body_of<T>(m: &Message, method: &str) -> Result<T, RuntimeError>
where
    T: for<'d> serde::Deserialize<'d> + zbus::zvariant::Type,
{
    m.body()
        .deserialize::<T>()
        .map_err(|e| unexpected(method, &e.to_string()))
}

fn io_kind(e: &zbus::Error) -> Option<ErrorKind> {
    match e {
        zbus::Error::InputOutput(io) | zbus::Error::Connection(io, _) => Some(io.kind()),
        // The bus rejected our credentials.
        zbus::Error::Handshake(_) => Some(ErrorKind::PermissionDenied),
        _ => None,
    }
}

fn unexpected(method: &str, detail: &str) -> RuntimeError {
    RuntimeError::UnexpectedReply {
        method: method.to_string(),
        detail: detail.to_string(),
    }
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

fn strs_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => a.iter().map(str_of).collect(),
        _ => None,
    }
}

/// `a{ss}`: a dict of strings.
fn dict_of(v: &Value) -> Option<BTreeMap<String, String>> {
    match v {
        Value::Dict(d) => d
            .iter()
            .map(|(k, v)| Some((str_of(k)?, str_of(v)?)))
            .collect(),
        _ => None,
    }
}

/// `a(ss)` or `a(ssss)`: arrays of string tuples.
fn tuples_of(v: &Value, n: usize) -> Option<Vec<Vec<String>>> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|item| match item {
                Value::Structure(s) if s.fields().len() == n => {
                    s.fields().iter().map(str_of).collect()
                }
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Typed access to an `a{sv}` settings dict; absent keys are empty.
struct Settings<'a> {
    map: &'a HashMap<String, OwnedValue>,
    method: &'a str,
}

impl Settings<'_> {
    fn get<T>(
        &self,
        key: &str,
        conv: impl Fn(&Value) -> Option<T>,
        kind: &str,
    ) -> Result<Option<T>, RuntimeError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => conv(v).map(Some).ok_or_else(|| {
                unexpected(
                    self.method,
                    &format!("{key} is {}, not {kind}", v.value_signature()),
                )
            }),
        }
    }

    fn strs(&self, key: &str) -> Result<Vec<String>, RuntimeError> {
        Ok(self.get(key, strs_of, "as")?.unwrap_or_default())
    }

    fn ports(&self, key: &str) -> Result<Vec<PortProto>, RuntimeError> {
        Ok(self
            .get(key, |v| tuples_of(v, 2), "a(ss)")?
            .unwrap_or_default()
            .into_iter()
            .map(|t| PortProto::new(t[0].clone(), t[1].clone()))
            .collect())
    }

    fn flag(&self, key: &str) -> Result<bool, RuntimeError> {
        let b = |v: &Value| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        };
        Ok(self.get(key, b, "b")?.unwrap_or(false))
    }
}

fn zone_of(
    name: &str,
    map: &HashMap<String, OwnedValue>,
    method: &str,
) -> Result<Zone, RuntimeError> {
    let s = Settings { map, method };
    let target = match s.get("target", str_of, "s")? {
        None => Target::Default,
        Some(t) => Target::parse(&t)
            .ok_or_else(|| unexpected(method, &format!("unknown zone target {t:?}")))?,
    };
    let forward_ports = s
        .get("forward_ports", |v| tuples_of(v, 4), "a(ssss)")?
        .unwrap_or_default()
        .into_iter()
        .map(|t| forward_port_str(&t[0], &t[1], &t[2], &t[3]))
        .collect();
    Ok(Zone {
        name: name.to_string(),
        target,
        interfaces: s.strs("interfaces")?,
        sources: s.strs("sources")?,
        services: s.strs("services")?,
        ports: s.ports("ports")?,
        protocols: s.strs("protocols")?,
        masquerade: s.flag("masquerade")?,
        forward: s.flag("forward")?,
        rich_rules: s.strs("rules_str")?,
        icmp_blocks: s.strs("icmp_blocks")?,
        icmp_block_inversion: s.flag("icmp_block_inversion")?,
        source_ports: s.ports("source_ports")?,
        forward_ports,
        file: None,
    })
}

fn service_of(
    name: &str,
    map: &HashMap<String, OwnedValue>,
    method: &str,
) -> Result<Service, RuntimeError> {
    let s = Settings { map, method };
    Ok(Service {
        name: name.to_string(),
        ports: s.ports("ports")?,
        protocols: s.strs("protocols")?,
        source_ports: s.ports("source_ports")?,
        includes: s.strs("includes")?,
        destinations: s.get("destination", dict_of, "a{ss}")?.unwrap_or_default(),
        file: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_bus_means_no_firewalld() {
        let r = read_runtime_at("unix:path=/nonexistent/hbfwd-bus.sock");
        assert!(matches!(r, Ok(None)), "{r:?}");
    }

    #[test]
    fn a_bad_address_is_an_error() {
        let e = read_runtime_at("nonsense").expect_err("not an address");
        assert!(matches!(e, RuntimeError::BusUnreachable { .. }), "{e:?}");
        assert!(e.to_string().contains("nonsense"), "{e}");
    }
}
