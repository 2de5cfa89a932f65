//! Where an endpoint URL sends its requests: the host, and whether that host is this machine's
//! loopback. `kcl properties --check` (and so `kcl daemon`), `kcl put` and `kcl produce` share
//! these rules, and the native engine too (`kcl_properties::endpoint`, where they live).

pub(crate) use kcl_properties::endpoint::{is_loopback_url, plain_http_to_other_host};

/// The words that say why such a URL is a risk: "is plain HTTP to HOST, which is not ...".
pub(crate) fn plain_http_words(host: &str) -> String {
    format!("is plain HTTP to {host}, which is not this machine's loopback")
}
