//! Whether a host name or address is this machine's loopback: one rule for every place that
//! decides what may travel in clear (`kcl jars fetch` credentials, `kcl put` credentials,
//! `kcl properties --check` endpoints), shared with the native engine through
//! `kcl_properties::endpoint`.

pub(crate) use kcl_properties::endpoint::is_loopback;
