//! Where an endpoint URL (`kinesisEndpoint`, `dynamoDBEndpoint`, a `--endpoint` flag) sends
//! its requests: the host, and whether that host is this machine's loopback. One rule for
//! every place that decides what may travel in clear or which credentials sign a request: the
//! `kcl` tool (`kcl properties --check`, `kcl put`, `kcl produce`, `kcl jars fetch`) and the
//! native engine (dummy credentials for an emulator on this machine).
//!
//! ```
//! use kcl_properties::endpoint::{host, is_loopback_url, plain_http_to_other_host};
//! assert_eq!(host("http://user@[::1]:4566/x"), Some("::1"));
//! assert!(is_loopback_url("http://localhost:4567"));
//! assert_eq!(plain_http_to_other_host("http://10.0.0.5:8000"), Some("10.0.0.5"));
//! ```

use std::net::IpAddr;

/// Whether `host` is this machine's loopback: `localhost`, an address in 127.0.0.0/8, `::1`, or
/// an IPv4-mapped 127.x address (brackets and a trailing dot allowed). Other names (even
/// `*.localhost`) and `0.0.0.0` are not.
///
/// ```
/// assert!(kcl_properties::endpoint::is_loopback("127.0.0.1"));
/// assert!(!kcl_properties::endpoint::is_loopback("a.localhost"));
/// ```
pub fn is_loopback(host: &str) -> bool {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// The rest of `url` after `scheme` (compared without regard to case), if it starts with it.
fn after_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
    let head = url.get(..scheme.len())?;
    head.eq_ignore_ascii_case(scheme)
        .then(|| &url[scheme.len()..])
}

/// The host of an `http://` or `https://` URL, without user info, port or IPv6 brackets; `None`
/// for another scheme or an empty host.
///
/// ```
/// assert_eq!(kcl_properties::endpoint::host("HTTPS://kinesis.eu-west-1.amazonaws.com"), Some("kinesis.eu-west-1.amazonaws.com"));
/// ```
pub fn host(url: &str) -> Option<&str> {
    let url = url.trim();
    let rest = after_scheme(url, "http://").or_else(|| after_scheme(url, "https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']')?.0,
        None => host_port.split(':').next().unwrap_or_default(),
    };
    (!host.is_empty()).then_some(host)
}

/// Whether `url` (http or https) goes to this machine's loopback.
///
/// ```
/// assert!(!kcl_properties::endpoint::is_loopback_url("http://0.0.0.0:4567"));
/// ```
pub fn is_loopback_url(url: &str) -> bool {
    host(url).is_some_and(is_loopback)
}

/// For a plain `http://` URL to a host that is not loopback, that host: requests, their
/// signatures and any session token would cross a network in clear.
///
/// ```
/// assert_eq!(kcl_properties::endpoint::plain_http_to_other_host("https://kinesis.internal"), None);
/// ```
pub fn plain_http_to_other_host(url: &str) -> Option<&str> {
    after_scheme(url.trim(), "http://")?;
    host(url).filter(|host| !is_loopback(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_loopback() {
        for (url, expected) in [
            ("http://127.0.0.1:4566", Some("127.0.0.1")),
            ("http://a:b@host.example:1/p?q#f", Some("host.example")),
            ("http://[::ffff:127.0.0.2]:9", Some("::ffff:127.0.0.2")),
            ("http://host?x=@evil", Some("host")),
            (" https://h ", Some("h")),
            ("http://", None),
            ("http://[::1", None),
            ("localhost:4566", None),
            ("ftp://example.com", None),
            ("http://user@[::1]:4566/x", Some("::1")),
        ] {
            assert_eq!(host(url), expected, "{url}");
        }
        for loopback in [
            "localhost",
            "LOCALHOST.",
            "127.0.0.1",
            "127.9.8.7",
            "::1",
            "[::1]",
            "::ffff:127.0.0.2",
        ] {
            assert!(is_loopback(loopback), "{loopback}");
        }
        for other in [
            "0.0.0.0",
            "::",
            "[::2]",
            "",
            "10.0.0.1",
            "evil.localhost",
            "localhost.example.com",
            "128.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_loopback(other), "{other}");
        }
    }

    #[test]
    fn plain_http_only_to_other_hosts() {
        assert_eq!(
            plain_http_to_other_host("http://kinesis.internal:4567"),
            Some("kinesis.internal")
        );
        assert_eq!(
            plain_http_to_other_host("HTTP://10.0.0.5"),
            Some("10.0.0.5")
        );
        assert_eq!(
            plain_http_to_other_host("http://user@127.0.0.1.evil.example"),
            Some("127.0.0.1.evil.example")
        );
        for quiet in [
            "http://127.0.0.1:4566",
            "http://localhost",
            "http://[::1]:1",
            "https://kinesis.internal",
            "kinesis.internal",
        ] {
            assert_eq!(plain_http_to_other_host(quiet), None, "{quiet}");
        }
        assert!(is_loopback_url("https://localhost:4567"));
        assert!(!is_loopback_url("http://0.0.0.0:4567"));
    }
}
