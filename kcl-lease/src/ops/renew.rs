//! What a failed renewal means (Java's `renewLease` after a `ConditionalCheckFailedException`).

use crate::item::{Decoded, Lease, decode};
use crate::value::Item;

/// The verdict on a renewal refused by its condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenewVerdict {
    /// A graceful handoff away from this worker is pending and this worker is still the actual
    /// owner: take the item's `leaseOwner` and `checkpointOwner` into the in-memory lease, run
    /// the shutdown-requested path, and renew again (now without the `checkpointOwner`
    /// condition).
    AdoptHandoff {
        /// The item's `leaseOwner` (the handoff's new owner).
        lease_owner: Option<String>,
        /// The item's `checkpointOwner` (this worker).
        checkpoint_owner: String,
    },
    /// The renewal had landed after all (a retried request that succeeded): the item names this
    /// worker as owner with the counter one above the known one. Keep the lease at `counter`.
    Spurious {
        /// The counter now on the item (known + 1).
        counter: u64,
    },
    /// Someone else holds the lease, or it is gone: stop processing it (`leaseLost`).
    Lost,
}

/// Decides what a failed renewal of `known` (this worker's in-memory lease, the one
/// [`renew`](crate::ops::renew) was built from) means, given the item returned with the failure
/// (`ALL_OLD`), or — when none came back — a fresh read of it; `None` when there is no item.
///
/// As Java 3.1.3: if the in-memory lease knew of no handoff and the item has a
/// `checkpointOwner`, the lease is adopted for the handoff when the item's actual owner
/// (`checkpointOwner`) is the in-memory actual owner; otherwise the renewal counts as done when
/// the item's `leaseOwner` is the in-memory actual owner and its counter is known + 1
/// (a spurious failure); anything else — including an item that does not decode — is lost.
///
/// ```
/// use kcl_lease::{Lease, RenewVerdict, encode, interpret_renew_failure};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let mut mine = Lease::new("shardId-0", E::trim_horizon());
/// mine.lease_owner = Some("me".into());
/// mine.lease_counter = 4;
///
/// let mut handing = mine.clone();
/// handing.lease_owner = Some("other".into());
/// handing.checkpoint_owner = Some("me".into());
/// assert!(matches!(interpret_renew_failure(&mine, Some(&encode(&handing))), RenewVerdict::AdoptHandoff { .. }));
///
/// let mut landed = mine.clone();
/// landed.lease_counter = 5;
/// assert_eq!(interpret_renew_failure(&mine, Some(&encode(&landed))), RenewVerdict::Spurious { counter: 5 });
///
/// let mut taken = mine.clone();
/// taken.lease_owner = Some("other".into());
/// taken.lease_counter = 5;
/// assert_eq!(interpret_renew_failure(&mine, Some(&encode(&taken))), RenewVerdict::Lost);
/// assert_eq!(interpret_renew_failure(&mine, None), RenewVerdict::Lost);
/// ```
pub fn interpret_renew_failure(known: &Lease, current: Option<&Item>) -> RenewVerdict {
    let Some(Ok(Decoded::Lease(current))) = current.map(decode) else {
        return RenewVerdict::Lost;
    };
    let me = known.actual_owner();
    if known.checkpoint_owner.is_none() {
        if let Some(checkpoint_owner) = &current.checkpoint_owner {
            return if me == Some(checkpoint_owner.as_str()) {
                RenewVerdict::AdoptHandoff {
                    lease_owner: current.lease_owner.clone(),
                    checkpoint_owner: checkpoint_owner.clone(),
                }
            } else {
                RenewVerdict::Lost
            };
        }
    }
    let expected_counter = known.lease_counter.checked_add(1);
    if me.is_some()
        && current.lease_owner.as_deref() == me
        && Some(current.lease_counter) == expected_counter
    {
        RenewVerdict::Spurious {
            counter: current.lease_counter,
        }
    } else {
        RenewVerdict::Lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::encode;
    use kcl_protocol::ExtendedSequenceNumber as E;

    fn lease(owner: Option<&str>, checkpoint_owner: Option<&str>, counter: u64) -> Lease {
        let mut lease = Lease::new("shardId-0", E::trim_horizon());
        lease.lease_owner = owner.map(Into::into);
        lease.checkpoint_owner = checkpoint_owner.map(Into::into);
        lease.lease_counter = counter;
        lease
    }

    #[test]
    fn verdicts() {
        let mine = lease(Some("me"), None, 4);
        let verdict = |item: Lease| interpret_renew_failure(&mine, Some(&encode(&item)));
        assert_eq!(
            verdict(lease(Some("b"), Some("me"), 4)),
            RenewVerdict::AdoptHandoff {
                lease_owner: Some("b".into()),
                checkpoint_owner: "me".into()
            }
        );
        // A handoff between two others: lost.
        assert_eq!(verdict(lease(Some("b"), Some("c"), 4)), RenewVerdict::Lost);
        assert_eq!(verdict(lease(Some("me"), None, 6)), RenewVerdict::Lost);
        assert_eq!(verdict(lease(None, None, 5)), RenewVerdict::Lost);
        assert_eq!(
            verdict(lease(Some("me"), None, 5)),
            RenewVerdict::Spurious { counter: 5 }
        );
        // Undecodable: lost.
        let mut junk = encode(&mine);
        junk.remove("checkpoint");
        assert_eq!(
            interpret_renew_failure(&mine, Some(&junk)),
            RenewVerdict::Lost
        );
    }

    #[test]
    fn after_adopting_a_handoff_a_spurious_failure_counts_as_lost_as_in_java() {
        // Java compares the in-memory actual owner (me) with the item's leaseOwner (the new
        // owner): a renewal of an adopted lease that landed but reported failure is given up.
        let adopted = lease(Some("b"), Some("me"), 4);
        let landed = lease(Some("b"), Some("me"), 5);
        assert_eq!(
            interpret_renew_failure(&adopted, Some(&encode(&landed))),
            RenewVerdict::Lost
        );
    }
}
