//! Whether a host name or address is this machine's loopback: one rule for every place that
//! decides what may travel in clear (`kcl jars fetch` credentials, `kcl put` credentials,
//! `kcl properties --check` endpoints).

use std::net::IpAddr;

/// Whether `host` is this machine's loopback: `localhost`, an address in 127.0.0.0/8, `::1`, or
/// an IPv4-mapped 127.x address. Other names (even `*.localhost`) and `0.0.0.0` are not.
pub(crate) fn is_loopback(host: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn loopback_names_and_addresses() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "0.0.0.0",
            "192.0.2.1",
            "a.localhost",
            "localhost.example.com",
            "::",
            "[::2]",
            "",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
