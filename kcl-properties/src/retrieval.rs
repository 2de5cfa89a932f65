//! How the daemon retrieves records with a file: polling (`GetRecords`) or enhanced fan-out
//! (`SubscribeToShard`). The KCL 3.1.3 rule (`multilang/config/RetrievalMode.java`):
//! `retrievalMode = POLLING` or `FANOUT` decides; without it (or with `DEFAULT`) the daemon
//! polls exactly when a polling property's value applies (`decideForDefault` with
//! `PollingConfigBean.anyPropertiesSet`: `maxRecords = 0` is ignored, so it does not count),
//! else it uses fan-out. The `kcl properties --check` warnings and the native engine (which
//! polls only) both use [`retrieval`].
//!
//! ```
//! use kcl_properties::{Properties, Retrieval, retrieval};
//! let decide = |text: &str| retrieval(&Properties::parse(text.as_bytes())).unwrap();
//! assert_eq!(decide("retrievalMode = POLLING\n").retrieval, Retrieval::Polling);
//! assert_eq!(decide("").retrieval, Retrieval::FanOut);
//! let polled = decide("retrievalMode = DEFAULT\nmaxRecords = 500\n");
//! assert_eq!(polled.retrieval, Retrieval::Polling);
//! assert_eq!(polled.polling_keys, ["maxRecords"]);
//! assert!(!polled.explicit);
//! assert_eq!(decide("maxRecords = 0\n").retrieval, Retrieval::FanOut); // 0 does not apply
//! ```

use crate::keys::{Group, KEYS};
use crate::properties::{Properties, ValueError};
use crate::value::Reading;

/// How records are retrieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retrieval {
    /// `GetRecords` polling.
    Polling,
    /// Enhanced fan-out (`SubscribeToShard` over HTTP/2).
    FanOut,
}

/// What [`retrieval`] decided, and from what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrievalChoice {
    /// The retrieval the daemon uses.
    pub retrieval: Retrieval,
    /// Whether `retrievalMode` named it (`POLLING` or `FANOUT`), rather than `DEFAULT` or
    /// nothing deciding by the polling keys.
    pub explicit: bool,
    /// The polling keys whose values apply, in the key table's order.
    pub polling_keys: Vec<&'static str>,
}

/// The daemon's retrieval with `props` (see the [module](self) documentation). Fails when
/// `retrievalMode` or a polling key holds a value the daemon refuses.
pub fn retrieval(props: &Properties) -> Result<RetrievalChoice, ValueError> {
    let mode = props.choice("retrievalMode")?;
    let mut polling_keys = Vec::new();
    for key in KEYS.iter().filter(|key| key.group == Group::Polling) {
        if props.read(key.name)?.and_then(Reading::applied).is_some() {
            polling_keys.push(key.name);
        }
    }
    let (retrieval, explicit) = match mode {
        Some("POLLING") => (Retrieval::Polling, true),
        Some("FANOUT") => (Retrieval::FanOut, true),
        _ if polling_keys.is_empty() => (Retrieval::FanOut, false),
        _ => (Retrieval::Polling, false),
    };
    Ok(RetrievalChoice {
        retrieval,
        explicit,
        polling_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(text: &str) -> Result<RetrievalChoice, ValueError> {
        retrieval(&Properties::parse(text.as_bytes()))
    }

    #[test]
    fn the_mode_decides_else_the_polling_keys_that_apply() {
        let fanout = decide("retrievalMode = fanout\nmaxRecords = 5\n").unwrap();
        assert_eq!(
            (fanout.retrieval, fanout.explicit),
            (Retrieval::FanOut, true)
        );
        assert_eq!(fanout.polling_keys, ["maxRecords"]);
        for polling_key in [
            "maxRecords = 5",
            "idleTimeBetweenReadsInMillis = 250",
            "retryGetRecordsInSeconds = 3",
            "maxGetRecordsThreadPool = 2",
            "millisBehindLatestThresholdForReducedTps = 10",
        ] {
            let text = format!("retrievalMode = DEFAULT\n{polling_key}\n");
            assert_eq!(
                decide(&text).unwrap().retrieval,
                Retrieval::Polling,
                "{text}"
            );
        }
        // A value the daemon ignores does not count; a fan-out key does not make it poll.
        assert_eq!(
            decide("idleTimeBetweenReadsInMillis = 0\nconsumerArn = x\n")
                .unwrap()
                .retrieval,
            Retrieval::FanOut
        );
        // The daemon does not trim enums: " POLLING" is refused.
        assert!(decide("retrievalMode =  POLLING \n").is_err());
    }
}
