//! Reading a Prometheus server's HTTP API: instant queries, the loaded rules and the active
//! alerts, over plain HTTP/1.0 (one request per connection, no chunked bodies), so that
//! `tracer cluster` needs no HTTP stack of its own. `https://` is refused with a way round
//! it (a port-forward) rather than half-supported.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use serde::Deserialize;

/// How long one request may take, connecting included.
const TIMEOUT: Duration = Duration::from_secs(15);
/// The most of an answer read: a cluster's pairs are far below this.
const MAX_BODY: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error(
        "{0:?} is not a Prometheus URL: give http://HOST[:PORT][/PREFIX] (e.g. http://prometheus.monitoring:9090)"
    )]
    BadUrl(String),
    #[error(
        "{0} is HTTPS, which tracer cluster does not speak: reach Prometheus over plain HTTP, e.g. through `kubectl -n monitoring port-forward svc/prometheus 9090` and --prometheus http://127.0.0.1:9090"
    )]
    Https(String),
    #[error(
        "cannot reach Prometheus at {url} (is the URL right, and is Prometheus reachable from here?)"
    )]
    Unreachable { url: String, source: std::io::Error },
    #[error("Prometheus at {url} answered {path} with HTTP {status}: {body}")]
    Status {
        url: String,
        path: String,
        status: u16,
        body: String,
    },
    #[error("Prometheus at {url} answered {path} with an error: {error}")]
    Api {
        url: String,
        path: String,
        error: String,
    },
    #[error("{url}{path} did not answer like the Prometheus API: {detail}")]
    Garbled {
        url: String,
        path: String,
        detail: String,
    },
}

/// A Prometheus server, by its base URL.
#[derive(Clone, Debug)]
pub struct Prometheus {
    /// As given, without a trailing slash: for messages.
    pub url: String,
    host: String,
    port: u16,
    prefix: String,
}

/// One sample of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// An active alert, as `/api/v1/alerts` lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `pending` or `firing`.
    pub state: String,
    /// The expression's value when the alert was last evaluated.
    #[serde(default)]
    pub value: String,
}

/// The API's envelope: `{"status": "success", "data": ...}` or `{"status": "error", ...}`.
#[derive(Deserialize)]
struct Envelope<T> {
    status: String,
    data: Option<T>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Vector {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSample>,
}

#[derive(Deserialize)]
struct RawSample {
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct Alerts {
    alerts: Vec<Alert>,
}

#[derive(Deserialize)]
struct Rules {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    name: String,
}

impl Prometheus {
    pub fn new(url: &str) -> Result<Prometheus, PromError> {
        let trimmed = url.trim_end_matches('/');
        if trimmed.starts_with("https://") {
            return Err(PromError::Https(url.to_string()));
        }
        let rest = trimmed
            .strip_prefix("http://")
            .ok_or_else(|| PromError::BadUrl(url.to_string()))?;
        let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal's colons are inside its brackets.
            Some((h, p)) if !p.contains(']') => (
                h,
                p.parse().map_err(|_| PromError::BadUrl(url.to_string()))?,
            ),
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || prefix.contains(['?', '#']) {
            return Err(PromError::BadUrl(url.to_string()));
        }
        Ok(Prometheus {
            url: trimmed.to_string(),
            host: host.to_string(),
            port,
            prefix: prefix.to_string(),
        })
    }

    /// An instant query's samples, now.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>, PromError> {
        let path = format!("/api/v1/query?query={}", encode(promql));
        let v: Vector = self.api(&path)?;
        if v.result_type != "vector" {
            return Err(self.garbled(&path, format!("a {} result, not a vector", v.result_type)));
        }
        v.result
            .into_iter()
            .map(|s| {
                let value =
                    s.value.1.parse().map_err(|_| {
                        self.garbled(&path, format!("sample value {:?}", s.value.1))
                    })?;
                Ok(Sample {
                    labels: s.metric,
                    value,
                })
            })
            .collect()
    }

    /// The alerts that are pending or firing.
    pub fn alerts(&self) -> Result<Vec<Alert>, PromError> {
        Ok(self.api::<Alerts>("/api/v1/alerts")?.alerts)
    }

    /// The names of every loaded rule: recording rules' series and alerts.
    pub fn rule_names(&self) -> Result<Vec<String>, PromError> {
        let rules: Rules = self.api("/api/v1/rules")?;
        Ok(rules
            .groups
            .into_iter()
            .flat_map(|g| g.rules.into_iter().map(|r| r.name))
            .collect())
    }

    fn garbled(&self, path: &str, detail: String) -> PromError {
        PromError::Garbled {
            url: self.url.clone(),
            path: path.to_string(),
            detail,
        }
    }

    fn api<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, PromError> {
        let (status, body) = self.get(path)?;
        let envelope: Envelope<T> = match serde_json::from_str(&body) {
            Ok(e) => e,
            Err(_) if status != 200 => {
                return Err(PromError::Status {
                    url: self.url.clone(),
                    path: path.to_string(),
                    status,
                    body: body.chars().take(300).collect(),
                });
            }
            Err(e) => return Err(self.garbled(path, e.to_string())),
        };
        match (envelope.status.as_str(), envelope.data) {
            ("success", Some(data)) => Ok(data),
            _ => Err(PromError::Api {
                url: self.url.clone(),
                path: path.to_string(),
                error: envelope
                    .error
                    .unwrap_or_else(|| format!("status {}", envelope.status)),
            }),
        }
    }

    /// One GET: the status code and the body.
    fn get(&self, path: &str) -> Result<(u16, String), PromError> {
        let unreachable = |source| PromError::Unreachable {
            url: self.url.clone(),
            source,
        };
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(unreachable)?
            .next()
            .ok_or_else(|| unreachable(std::io::ErrorKind::NotFound.into()))?;
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(unreachable)?;
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let request = format!(
            "GET {}{path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: tracer/{}\r\n\r\n",
            self.prefix,
            env!("CARGO_PKG_VERSION")
        );
        stream.write_all(request.as_bytes()).map_err(unreachable)?;
        let mut answer = Vec::new();
        stream
            .take(MAX_BODY)
            .read_to_end(&mut answer)
            .map_err(unreachable)?;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| self.garbled(path, "no HTTP header".to_string()))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.garbled(path, format!("status line {:?}", head.lines().next())))?;
        Ok((status, body.to_string()))
    }
}

/// Percent-encodes a query parameter's value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_or_say_what_is_expected() {
        let p = Prometheus::new("http://prom.monitoring:9091/prefix/").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.prefix.as_str()),
            ("prom.monitoring", 9091, "/prefix")
        );
        let p = Prometheus::new("http://[::1]:9090").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 9090));
        assert_eq!(Prometheus::new("http://localhost").unwrap().port, 80);
        assert!(matches!(
            Prometheus::new("https://x:9090"),
            Err(PromError::Https(_))
        ));
        for bad in ["prom:9090", "http://", "http://h:port", "http://h/x?y"] {
            assert!(
                matches!(Prometheus::new(bad), Err(PromError::BadUrl(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn queries_are_encoded() {
        assert_eq!(
            encode("sum by (a) (x{b=\"c\"})"),
            "sum%20by%20%28a%29%20%28x%7Bb%3D%22c%22%7D%29"
        );
    }
}
