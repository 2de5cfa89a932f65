//! Payloads that make examples/declared_sink fail, as scripts/e2e/stream.py puts them: with
//! `tainted`, 1 in 53 numbers gets the prefix [`POISON`] (fails on every attempt: dead-lettered
//! under the `skip` policy), 1 in 31 the prefix [`FLAKY`] (fails on its first attempt only:
//! retried, then handled). Plain payloads are [`crate::stream::payload`]'s `<prefix>-<n:06>`.

use crate::error::Result;
use crate::ledger::Ledger;
use crate::stream::{Entry, Stream, payload as plain};

/// The prefix of a payload declared_sink fails on every attempt.
pub const POISON: &str = "poison-";
/// The prefix of a payload declared_sink fails on its first attempt only.
pub const FLAKY: &str = "flaky-";

/// The payload of record `n`: `<prefix>-<n:06>`, tainted (when `tainted`) as the Python suite
/// taints it: `n % 53 == 17` poison, else `n % 31 == 5` flaky.
pub fn payload(prefix: &str, n: u64, tainted: bool) -> String {
    let text = plain(prefix, n);
    if tainted && n % 53 == 17 {
        format!("{POISON}{text}")
    } else if tainted && n % 31 == 5 {
        format!("{FLAKY}{text}")
    } else {
        text
    }
}

/// Puts records `start..start + count` (payloads [`payload`], partition keys `pk-<prefix>-<n>`)
/// in batches of 100, into the ledger; the next number.
pub fn put_records(
    stream: &Stream,
    ledger: &Ledger,
    prefix: &str,
    start: u64,
    count: u64,
    tainted: bool,
) -> Result<u64> {
    let end = start + count;
    let mut first = start;
    while first < end {
        let last = end.min(first + 100);
        let entries: Vec<Entry> = (first..last)
            .map(|n| Entry::plain(payload(prefix, n, tainted), format!("pk-{prefix}-{n}")))
            .collect();
        stream.put_entries(&entries, ledger)?;
        first = last;
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_53_poison_one_in_31_flaky_only_when_tainted() {
        assert_eq!(payload("s1d", 17, true), "poison-s1d-000017");
        assert_eq!(payload("s1d", 5, true), "flaky-s1d-000005");
        assert_eq!(payload("s1d", 17, false), "s1d-000017");
        assert_eq!(payload("s1d", 18, true), "s1d-000018");
        let poison = (0..1000).filter(|&n| payload("p", n, true).starts_with(POISON));
        assert_eq!(poison.count(), 19);
    }
}
