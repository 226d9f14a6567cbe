//! Secrets out of the cluster's configuration before it goes in a bundle: the value of every
//! YAML key that names a token, secret, password, key or credential (and the block under
//! it), and the password of any `scheme://user:password@host` URL. Lines are replaced, never
//! removed, so positions in the file stay what they are on the node.

/// What replaces a secret.
pub const REDACTED: &str = "REDACTED";

/// Key names (lower case, `_` and `-` ignored) whose values are secrets.
const SECRET_WORDS: [&str; 8] = [
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "credential",
    "datastoreendpoint",
    "cert",
];

/// The text with secrets replaced, and the keys replaced (`LINE: key`).
pub fn redact(text: &str) -> (String, Vec<String>) {
    let mut out = Vec::new();
    let mut redacted = Vec::new();
    // The indentation of a secret key whose value is the block below it.
    let mut block: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        if let Some(depth) = block {
            if line.trim().is_empty() || indent > depth {
                out.push(if line.trim().is_empty() {
                    line.to_string()
                } else {
                    format!("{}{REDACTED}", &line[..indent])
                });
                continue;
            }
            block = None;
        }
        match secret_key(line) {
            Some((key, value_at)) => {
                redacted.push(format!("{}: {key}", n + 1));
                let value = line[value_at..].trim();
                if value.is_empty() || value.starts_with('|') || value.starts_with('>') {
                    block = Some(indent);
                }
                let value = if value.is_empty() {
                    String::new()
                } else {
                    format!(" {REDACTED}")
                };
                out.push(format!("{}{value}", &line[..value_at]));
            }
            None => out.push(url_password(line)),
        }
    }
    let mut text_out = out.join("\n");
    if text.ends_with('\n') {
        text_out.push('\n');
    }
    (text_out, redacted)
}

/// A line `  key: value` (or `- key: value`) whose key names a secret: the key and where its
/// value starts (just after the colon).
fn secret_key(line: &str) -> Option<(&str, usize)> {
    let trimmed = line.trim_start();
    let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
    let colon = body.find(':')?;
    let key = body[..colon].trim().trim_matches(['"', '\'']);
    if key.is_empty() || key.contains(' ') || key.starts_with('#') {
        return None;
    }
    let norm: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect();
    // A URL-like value after the colon is not a key (`endpoint: https://...` has its colon
    // later).
    SECRET_WORDS
        .iter()
        .any(|w| norm.contains(w))
        .then(|| (key, line.len() - body.len() + colon + 1))
}

/// The line with the password of any `scheme://user:password@host` replaced.
fn url_password(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '/')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority
            .rfind('@')
            .and_then(|a| authority[..a].find(':').map(|c| (c, a)))
        {
            Some((colon, a)) => {
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[a..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_lines_stay() {
        let k3s = "token: K10abc::server:xyz\ncluster-cidr: 10.42.0.0/16\ndatastore-endpoint: postgres://k3s:hunter2@db:5432/k3s\nagent-token-file: /etc/t\nflannel-backend: vxlan\n";
        let (out, keys) = redact(k3s);
        assert_eq!(
            out,
            "token: REDACTED\ncluster-cidr: 10.42.0.0/16\ndatastore-endpoint: REDACTED\nagent-token-file: REDACTED\nflannel-backend: vxlan\n"
        );
        assert_eq!(
            keys,
            ["1: token", "3: datastore-endpoint", "4: agent-token-file"]
        );
        let k0s = "spec:\n  storage:\n    etcd:\n      externalCluster:\n        clientKey: |\n          -----BEGIN KEY-----\n          abc\n        endpoints:\n        - https://u:pw@etcd:2379\n  network:\n    podCIDR: 10.244.0.0/16\n";
        let (out, _) = redact(k0s);
        assert!(!out.contains("abc") && !out.contains("pw@"), "{out}");
        assert!(out.contains("podCIDR: 10.244.0.0/16"), "{out}");
        assert!(out.contains("https://u:REDACTED@etcd:2379"), "{out}");
        assert_eq!(out.lines().count(), k0s.lines().count());
    }
}
