//! The IAM proof of `kcl iam-policy`: what the emulators received, by whom, against the policy.
//!
//! Under [`Emulators::start_recording`](crate::Emulators::start_recording) kinesis-local logs
//! each request's headers (a TRACE line `Logging input headers` with `X-Amz-Target`,
//! `User-Agent` and `Authorization`) and moto_server records each request (headers and body)
//! as a JSON line. [`requests`] reads both into [`Request`]s; [`Caller`] tells the engines from
//! the harness: the Java daemon's AWS SDK for Java says so in its User-Agent, the native engine
//! signs with the dummy key `kcl-local` it uses for emulators on this machine, the harness
//! with `kcl-e2e`. [`Policy::allows`] evaluates a policy document the way IAM does for
//! `Allow` statements without conditions (action and resource patterns with `*` and `?`).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use crate::error::{Error, Result};

/// Who made a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Caller {
    /// The KCL 3.1.3 MultiLangDaemon (AWS SDK for Java).
    Java,
    /// kcl's native engine (dummy key `kcl-local`).
    Native,
    /// The harness itself (creating streams, putting records, reading the lease table).
    Harness,
}

/// One request an emulator received.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    /// Who sent it.
    pub caller: Caller,
    /// `kinesis:GetRecords`, `dynamodb:UpdateItem`.
    pub action: String,
    /// The table (and index) for DynamoDB (`orders-app`, `orders-app/index/X`); `None` for
    /// Kinesis (its log line has no body: the scenario's stream).
    pub table: Option<String>,
}

fn caller(user_agent: &str, authorization: &str) -> Caller {
    if user_agent.contains("aws-sdk-java") {
        Caller::Java
    } else if authorization.contains("Credential=kcl-local/") {
        Caller::Native
    } else {
        Caller::Harness
    }
}

/// The value of `name=` in a kinesis-local header line (`A=1, B=x, y, C=2`), whatever the
/// case of the name (HTTP/2 clients send lowercase ones): up to the next `, Header-Name=`.
fn header_in_line<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let lower = line.to_ascii_lowercase();
    let wanted = format!("{}=", name.to_ascii_lowercase());
    let at = lower
        .match_indices(&wanted)
        .map(|(at, _)| at)
        .find(|&at| at == 0 || matches!(lower.as_bytes()[at - 1], b' ' | b','))?;
    let start = at + wanted.len();
    let rest = &line[start..];
    // The next header starts with ", " and a token of letters, digits and '-' followed by '='.
    let mut end = rest.len();
    let mut search = 0;
    while let Some(at) = rest[search..].find(", ") {
        let candidate = search + at + 2;
        let token: String = rest[candidate..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if !token.is_empty() && rest[candidate + token.len()..].starts_with('=') {
            end = search + at;
            break;
        }
        search = candidate;
    }
    Some(rest[..end].trim())
}

/// The requests in kinesis-local's TRACE log.
pub fn kinesis_requests(log: &Path) -> Result<Vec<Request>> {
    let text = std::fs::read_to_string(log)
        .map_err(|e| Error::io(format!("reading {}", log.display()), e))?;
    let mut found = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.ends_with("Logging input headers"))
    {
        let Some(target) = header_in_line(line, "X-Amz-Target") else {
            continue;
        };
        let operation = target.rsplit('.').next().unwrap_or(target);
        found.push(Request {
            caller: caller(
                header_in_line(line, "User-Agent").unwrap_or(""),
                header_in_line(line, "Authorization").unwrap_or(""),
            ),
            action: format!("kinesis:{operation}"),
            table: None,
        });
    }
    Ok(found)
}

/// A header of a recorded request, whatever its case.
fn header<'a>(headers: &'a Value, name: &str) -> &'a str {
    headers
        .as_object()
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
        })
        .unwrap_or("")
}

/// The requests in moto_server's recording.
pub fn dynamodb_requests(recording: &Path) -> Result<Vec<Request>> {
    let text = std::fs::read_to_string(recording)
        .map_err(|e| Error::io(format!("reading {}", recording.display()), e))?;
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .map_err(|e| Error::msg(format!("{}: {e}", recording.display())))?;
        let headers = &entry["headers"];
        let target = header(headers, "X-Amz-Target");
        let Some(operation) = target.strip_prefix("DynamoDB_20120810.") else {
            continue;
        };
        let body = entry["body"].as_str().unwrap_or("");
        let body = if entry["body_encoded"].as_bool() == Some(true) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| Error::msg(format!("a recorded body: {e}")))?;
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            body.to_owned()
        };
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let table = body["TableName"]
            .as_str()
            .map(|table| match body["IndexName"].as_str() {
                Some(index) => format!("{table}/index/{index}"),
                None => table.to_owned(),
            });
        found.push(Request {
            caller: caller(
                header(headers, "User-Agent"),
                header(headers, "Authorization"),
            ),
            action: format!("dynamodb:{operation}"),
            table,
        });
    }
    Ok(found)
}

/// A policy document (`kcl iam-policy`'s output).
#[derive(Clone, Debug)]
pub struct Policy {
    /// (actions, resources) of each `Allow` statement.
    statements: Vec<(Vec<String>, Vec<String>)>,
}

/// `pattern` (IAM's `*` and `?`, case-sensitive) matches `text`.
pub fn matches(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

impl Policy {
    /// Reads a policy document. Statements other than `Allow` are refused (the proof would not
    /// model them).
    pub fn parse(text: &str) -> Result<Policy> {
        let document: Value =
            serde_json::from_str(text).map_err(|e| Error::msg(format!("the policy: {e}")))?;
        let list = |value: &Value| -> Vec<String> {
            match value {
                Value::String(one) => vec![one.clone()],
                Value::Array(many) => many
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            }
        };
        let mut statements = Vec::new();
        for statement in document["Statement"].as_array().into_iter().flatten() {
            if statement["Effect"] != "Allow" {
                return Err(Error::msg(format!(
                    "a statement that is not Allow: {statement}"
                )));
            }
            statements.push((list(&statement["Action"]), list(&statement["Resource"])));
        }
        Ok(Policy { statements })
    }

    /// Whether a statement allows `action` on `resource`.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.statements.iter().any(|(actions, resources)| {
            actions
                .iter()
                .any(|a| matches(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && resources.iter().any(|r| matches(r, resource))
        })
    }

    /// Every action the policy names.
    pub fn actions(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .statements
            .iter()
            .flat_map(|(actions, _)| actions.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The ARN IAM checks for `request`, with the names of a scenario: `arn:aws:dynamodb:REGION:
/// ACCOUNT:table/<table>` for DynamoDB, the stream's ARN for Kinesis.
pub fn resource(request: &Request, region: &str, account: &str, stream: &str) -> String {
    match &request.table {
        Some(table) => format!("arn:aws:dynamodb:{region}:{account}:table/{table}"),
        None => format!("arn:aws:kinesis:{region}:{account}:stream/{stream}"),
    }
}

/// How often each (action, table) was called, by one caller.
pub fn counted(requests: &[Request], who: Caller) -> BTreeMap<(String, Option<String>), usize> {
    let mut counts = BTreeMap::new();
    for request in requests.iter().filter(|r| r.caller == who) {
        *counts
            .entry((request.action.clone(), request.table.clone()))
            .or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinesis_header_lines_are_split_at_the_next_header() {
        let line = "[trace] kinesis.mock.KinesisMockRoutes 2026-12-02T04:50:46Z X-Amz-Date=20261202T000000Z, \
                    Authorization=AWS4-HMAC-SHA256 Credential=kcl-local/20261202/us-east-1/kinesis/aws4_request, \
                    SignedHeaders=host, Signature=abc, contextId=d6, X-Amz-Target=Kinesis_20131202.ListShards, \
                    User-Agent=aws-sdk-rust/1.3 os/linux, Host=127.0.0.1:1 Logging input headers";
        assert_eq!(
            header_in_line(line, "X-Amz-Target"),
            Some("Kinesis_20131202.ListShards")
        );
        // The Authorization value's own `, SignedHeaders=` reads as a header: the credential,
        // all the caller check needs, is before it.
        assert_eq!(
            header_in_line(line, "Authorization"),
            Some("AWS4-HMAC-SHA256 Credential=kcl-local/20261202/us-east-1/kinesis/aws4_request")
        );
        assert_eq!(
            header_in_line(line, "User-Agent"),
            Some("aws-sdk-rust/1.3 os/linux")
        );
        let auth = header_in_line(line, "Authorization").unwrap();
        assert_eq!(caller("aws-sdk-rust/1.3", auth), Caller::Native);
        assert_eq!(
            caller("aws-sdk-java/2.33.0 ua/2.1", "Credential=kcl-e2e/"),
            Caller::Java
        );
        assert_eq!(
            caller("aws-sdk-rust/1.3", "Credential=kcl-e2e/"),
            Caller::Harness
        );
    }

    #[test]
    fn the_policy_allows_by_action_and_resource_pattern() {
        let policy = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Sid":"A","Effect":"Allow","Action":["dynamodb:GetItem"],"Resource":["arn:aws:dynamodb:r:*:table/app"]},
                {"Sid":"B","Effect":"Allow","Action":"dynamodb:Query","Resource":"arn:aws:dynamodb:r:*:table/app/index/*"}]}"#,
        )
        .unwrap();
        assert!(policy.allows("dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/app"));
        assert!(policy.allows("DynamoDB:getitem", "arn:aws:dynamodb:r:1:table/app"));
        assert!(!policy.allows("dynamodb:GetItem", "arn:aws:dynamodb:r:1:table/app-other"));
        assert!(!policy.allows("dynamodb:PutItem", "arn:aws:dynamodb:r:1:table/app"));
        assert!(policy.allows("dynamodb:Query", "arn:aws:dynamodb:r:1:table/app/index/X"));
        assert!(!policy.allows("dynamodb:Query", "arn:aws:dynamodb:r:1:table/app"));
        assert!(
            Policy::parse(r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#)
                .is_err()
        );
    }
}
