//! The protocol written once (C3): every write to the lease and coordinator tables as data — a
//! [`Condition`] and an [`Update`] — and [`apply`], the one rule book for what such a write does
//! to an item. The in-memory store runs [`apply`]; a DynamoDB store translates the same
//! `Condition`/`Update` into a `ConditionExpression`/`UpdateExpression` (or a `PutItem`), so
//! both stores follow one set of rules.
//!
//! - the lease operations of the Java KCL 3.1.3 (`DynamoDBLeaseRefresher`), each with Java's
//!   condition: [`create_if_not_exists`], [`renew`], [`take`], [`assign`],
//!   [`initiate_graceful_handoff`], [`evict`], [`checkpoint`], [`update_meta`], [`delete`].
//! - [`interpret_renew_failure`]: what a failed renewal means.

mod lease;
mod renew;

pub use lease::{
    Meta, assign, checkpoint, create_if_not_exists, delete, evict, initiate_graceful_handoff,
    renew, take, update_meta,
};
pub use renew::{RenewVerdict, interpret_renew_failure};

use std::fmt;

use crate::value::{AttributeValue, Item};

/// What one attribute must be for a write to happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Present and equal (DynamoDB equality: numbers by value, sets as sets).
    Equals(AttributeValue),
    /// Absent (`attribute_not_exists`).
    Absent,
    /// Present, whatever its value (`attribute_exists`).
    Exists,
}

/// One expectation: an attribute and what it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// The attribute's name.
    pub attribute: String,
    /// What it must be.
    pub expect: Expect,
}

/// The condition of a write: every expectation must hold (an empty condition always holds).
/// On a missing item every attribute is absent.
///
/// ```
/// use kcl_lease::{AttributeValue as V, Condition, Item};
/// let fenced = Condition::default().equals("leaseCounter", V::n(4)).absent("checkpointOwner");
/// let item = Item::from([("leaseCounter".to_string(), V::n(4))]);
/// assert!(fenced.holds(Some(&item)));
/// assert!(!fenced.holds(None));
/// assert!(Condition::default().absent("leaseKey").holds(None));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Condition {
    /// The expectations, all of which must hold.
    pub expectations: Vec<Expectation>,
}

impl Condition {
    fn with(mut self, attribute: &str, expect: Expect) -> Self {
        self.expectations.push(Expectation {
            attribute: attribute.to_owned(),
            expect,
        });
        self
    }

    /// Adds: `attribute` equals `value`.
    pub fn equals(self, attribute: &str, value: AttributeValue) -> Self {
        self.with(attribute, Expect::Equals(value))
    }

    /// Adds: `attribute` is absent.
    pub fn absent(self, attribute: &str) -> Self {
        self.with(attribute, Expect::Absent)
    }

    /// Adds: `attribute` exists.
    pub fn exists(self, attribute: &str) -> Self {
        self.with(attribute, Expect::Exists)
    }

    /// Adds: `attribute` equals the string `value` when `Some`, is absent when `None` (Java's
    /// "value if known, else must not exist" expectation for owners).
    pub fn equals_or_absent(self, attribute: &str, value: Option<&str>) -> Self {
        match value {
            Some(text) => self.equals(attribute, AttributeValue::s(text)),
            None => self.absent(attribute),
        }
    }

    /// Whether the condition holds on `current` (`None`: no item).
    pub fn holds(&self, current: Option<&Item>) -> bool {
        self.expectations.iter().all(|expectation| {
            let value = current.and_then(|item| item.get(&expectation.attribute));
            match (&expectation.expect, value) {
                (Expect::Absent, value) => value.is_none(),
                (Expect::Exists, value) => value.is_some(),
                (Expect::Equals(wanted), Some(value)) => value.same_value(wanted),
                (Expect::Equals(_), None) => false,
            }
        })
    }
}

/// One change of an `UpdateItem` (the legacy `AttributeUpdates` actions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Sets the attribute (`PUT` / `SET`).
    Put(String, AttributeValue),
    /// Adds to a number, starting from 0 when absent (`ADD`).
    Add(String, i64),
    /// Removes the attribute; nothing happens if it is absent (`DELETE` / `REMOVE`).
    Remove(String),
}

/// What a write does to an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// `UpdateItem`: these changes, in order, to the current item (or to a new item holding
    /// only the key when there is none).
    Actions(Vec<Action>),
    /// `PutItem`: replace the whole item with this one (the key is added if missing).
    PutItem(Item),
}

impl Update {
    /// The attributes this update sets, adds to or removes (for a `PutItem`, the ones it
    /// writes).
    pub fn touched(&self) -> Vec<&str> {
        match self {
            Update::Actions(actions) => actions
                .iter()
                .map(|action| match action {
                    Action::Put(name, _) | Action::Add(name, _) | Action::Remove(name) => {
                        name.as_str()
                    }
                })
                .collect(),
            Update::PutItem(item) => item.keys().map(String::as_str).collect(),
        }
    }
}

/// A write refused by its condition, with the item as it was (`ReturnValuesOnConditionCheckFailure
/// = ALL_OLD`; `None` when there was no item).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionFailed {
    /// The item the condition was checked against.
    pub current: Option<Item>,
}

impl fmt::Display for ConditionFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.current {
            Some(_) => f.write_str("the conditional check failed"),
            None => f.write_str("the conditional check failed: no such item"),
        }
    }
}

impl std::error::Error for ConditionFailed {}

/// Why [`apply`] did not produce an item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The condition did not hold.
    #[error(transparent)]
    ConditionFailed(#[from] ConditionFailed),
    /// DynamoDB would refuse the request (`ValidationException`): an update of the key, two
    /// actions on one attribute, an empty set, an `ADD` to something that is not an integer, a
    /// `PutItem` with another key.
    #[error("invalid update: {0}")]
    Invalid(String),
}

/// A table key: the key attribute's name and the item's key value (every table here has a
/// string hash key and no range key).
pub type Key<'a> = (&'a str, &'a str);

/// What `condition` + `update` do to `current` (`None`: no item), as DynamoDB does it: the
/// condition is checked first; then a `PutItem` replaces the item, and `UpdateItem` actions
/// change the current item, or a new one holding only the key. Returns the item after the
/// write (`ALL_NEW`). As in DynamoDB, some writes are refused whatever the item (and before the
/// condition): an update of the key, two actions on one attribute (overlapping document paths),
/// an empty set. An `ADD` to something that is not an integer is refused when it is applied
/// (DynamoDB itself adds to decimals too; the lease protocol only adds to integers).
///
/// ```
/// use kcl_lease::{Action, AttributeValue as V, Condition, Item, Update, apply};
/// let key = ("leaseKey", "shardId-0");
/// let bump = Update::Actions(vec![Action::Add("leaseCounter".into(), 1)]);
/// let fresh = apply(key, &Condition::default(), &bump, None).unwrap();
/// assert_eq!(fresh["leaseCounter"], V::n(1));
/// assert_eq!(fresh["leaseKey"], V::s("shardId-0"));
/// let stale = Condition::default().equals("leaseCounter", V::n(0));
/// assert!(apply(key, &stale, &bump, Some(&fresh)).is_err());
/// ```
pub fn apply(
    key: Key<'_>,
    condition: &Condition,
    update: &Update,
    current: Option<&Item>,
) -> Result<Item, ApplyError> {
    let (key_name, key_value) = key;
    refused(key, condition, update)?;
    if !condition.holds(current) {
        return Err(ConditionFailed {
            current: current.cloned(),
        }
        .into());
    }
    match update {
        Update::PutItem(item) => {
            let mut item = item.clone();
            item.entry(key_name.to_owned())
                .or_insert_with(|| AttributeValue::s(key_value));
            Ok(item)
        }
        Update::Actions(actions) => {
            let mut item = current.cloned().unwrap_or_else(|| {
                Item::from([(key_name.to_owned(), AttributeValue::s(key_value))])
            });
            for action in actions {
                apply_action(&mut item, action)?;
            }
            Ok(item)
        }
    }
}

/// What DynamoDB refuses whatever the item holds (before the condition is looked at): an
/// update of the key, two actions on one attribute (overlapping document paths), an empty set
/// (written or compared with), a `PutItem` carrying another key.
fn refused(
    (key_name, key_value): Key<'_>,
    condition: &Condition,
    update: &Update,
) -> Result<(), ApplyError> {
    let invalid = |why: String| Err(ApplyError::Invalid(why));
    for expectation in &condition.expectations {
        // (No let chains: the crate builds on Rust 1.85.)
        if matches!(&expectation.expect, Expect::Equals(value) if has_empty_set(value)) {
            return invalid(format!(
                "{} compared with an empty set",
                expectation.attribute
            ));
        }
    }
    match update {
        Update::PutItem(item) => {
            match item.get(key_name) {
                None => {}
                Some(AttributeValue::S(value)) if value == key_value => {}
                Some(other) => {
                    return invalid(format!(
                        "PutItem for {key_name} {key_value:?} carries {key_name} {other:?}"
                    ));
                }
            }
            if let Some((name, _)) = item.iter().find(|(_, value)| has_empty_set(value)) {
                return invalid(format!("{name} holds an empty set"));
            }
        }
        Update::Actions(actions) => {
            let mut named = std::collections::BTreeSet::new();
            for action in actions {
                let (Action::Put(name, _) | Action::Add(name, _) | Action::Remove(name)) = action;
                if name == key_name {
                    return invalid(format!("{name} is the key and cannot be updated"));
                }
                if !named.insert(name) {
                    return invalid(format!(
                        "two actions on {name} (overlapping document paths)"
                    ));
                }
                if matches!(action, Action::Put(_, value) if has_empty_set(value)) {
                    return invalid(format!("{name} would hold an empty set"));
                }
            }
        }
    }
    Ok(())
}

/// An empty `SS`, `NS` or `BS`, at the top or inside a list or map (DynamoDB refuses them).
pub(crate) fn has_empty_set(value: &AttributeValue) -> bool {
    match value {
        AttributeValue::Ss(set) | AttributeValue::Ns(set) => set.is_empty(),
        AttributeValue::Bs(set) => set.is_empty(),
        AttributeValue::L(values) => values.iter().any(has_empty_set),
        AttributeValue::M(values) => values.values().any(has_empty_set),
        _ => false,
    }
}

fn apply_action(item: &mut Item, action: &Action) -> Result<(), ApplyError> {
    match action {
        Action::Put(name, value) => {
            item.insert(name.clone(), value.clone());
        }
        Action::Remove(name) => {
            item.remove(name);
        }
        Action::Add(name, delta) => {
            let sum = match item.get(name) {
                None => i128::from(*delta),
                Some(AttributeValue::N(text)) => text
                    .parse::<i128>()
                    .ok()
                    .and_then(|n| n.checked_add(i128::from(*delta)))
                    .ok_or_else(|| {
                        ApplyError::Invalid(format!("ADD to {name} = {text}: not an integer"))
                    })?,
                Some(other) => {
                    return Err(ApplyError::Invalid(format!(
                        "ADD to {name}: it is {}, not N",
                        other.type_name()
                    )));
                }
            };
            item.insert(name.clone(), AttributeValue::n(sum));
        }
    }
    Ok(())
}

/// A delete: the item as it was (`ALL_OLD`; `None` when there was none), or the condition's
/// failure. Deleting a missing item with a condition that holds is not an error, as in
/// DynamoDB.
pub fn apply_delete(
    condition: &Condition,
    current: Option<&Item>,
) -> Result<Option<Item>, ConditionFailed> {
    if condition.holds(current) {
        Ok(current.cloned())
    } else {
        Err(ConditionFailed {
            current: current.cloned(),
        })
    }
}

/// A conditional write to one item, ready for a store: the item's key, the condition and the
/// update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The item's key value (the key attribute's name comes from the table).
    pub key: String,
    /// What must hold.
    pub condition: Condition,
    /// What changes.
    pub update: Update,
}

/// A conditional delete of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    /// The item's key value.
    pub key: String,
    /// What must hold (often nothing).
    pub condition: Condition,
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttributeValue as V;

    const KEY: Key<'static> = ("leaseKey", "k");

    fn actions(list: Vec<Action>) -> Update {
        Update::Actions(list)
    }

    #[test]
    fn updates_apply_in_order() {
        let item = Item::from([
            ("leaseKey".to_string(), V::s("k")),
            ("leaseCounter".to_string(), V::n(9)),
            ("checkpointOwner".to_string(), V::s("a")),
        ]);
        let after = apply(
            KEY,
            &Condition::default(),
            &actions(vec![
                Action::Add("leaseCounter".into(), 1),
                Action::Remove("checkpointOwner".into()),
                Action::Remove("neverThere".into()),
                Action::Put("leaseOwner".into(), V::s("b")),
                Action::Add("ownerSwitchesSinceCheckpoint".into(), 1),
            ]),
            Some(&item),
        )
        .unwrap();
        assert_eq!(after["leaseCounter"], V::n(10));
        assert_eq!(after["ownerSwitchesSinceCheckpoint"], V::n(1));
        assert_eq!(after["leaseOwner"], V::s("b"));
        assert!(!after.contains_key("checkpointOwner"));
    }

    #[test]
    fn invalid_updates_are_refused() {
        let item = Item::from([("leaseOwner".to_string(), V::s("x"))]);
        for update in [
            actions(vec![Action::Put("leaseKey".into(), V::s("other"))]),
            actions(vec![Action::Add("leaseOwner".into(), 1)]),
            actions(vec![
                Action::Put("leaseOwner".into(), V::s("a")),
                Action::Remove("leaseOwner".into()),
            ]),
            Update::PutItem(Item::from([("leaseKey".to_string(), V::s("other"))])),
        ] {
            assert!(matches!(
                apply(KEY, &Condition::default(), &update, Some(&item)),
                Err(ApplyError::Invalid(_))
            ));
        }
        // Refused before the condition is looked at, as DynamoDB validates first.
        let never = Condition::default().exists("nothing");
        for update in [
            actions(vec![Action::Put("s".into(), V::Ss(vec![]))]),
            actions(vec![Action::Remove("a".into()), Action::Add("a".into(), 1)]),
            Update::PutItem(Item::from([(
                "m".to_string(),
                V::M([("x".to_string(), V::Ns(vec![]))].into()),
            )])),
        ] {
            assert!(matches!(
                apply(KEY, &never, &update, Some(&item)),
                Err(ApplyError::Invalid(_))
            ));
        }
        let half = Item::from([("n".to_string(), V::N("1.5".into()))]);
        assert!(
            apply(
                KEY,
                &Condition::default(),
                &actions(vec![Action::Add("n".into(), 1)]),
                Some(&half)
            )
            .is_err()
        );
    }

    #[test]
    fn put_item_replaces_and_carries_the_key() {
        let old = Item::from([("stale".to_string(), V::s("x"))]);
        let new = apply(
            KEY,
            &Condition::default(),
            &Update::PutItem(Item::from([("a".to_string(), V::n(1))])),
            Some(&old),
        )
        .unwrap();
        assert_eq!(new.keys().collect::<Vec<_>>(), ["a", "leaseKey"]);
    }

    #[test]
    fn failed_conditions_return_the_old_item() {
        let item = Item::from([("leaseCounter".to_string(), V::n(3))]);
        let wrong = Condition::default().equals("leaseCounter", V::n(2));
        let Err(ApplyError::ConditionFailed(failed)) =
            apply(KEY, &wrong, &actions(vec![]), Some(&item))
        else {
            panic!("the condition held")
        };
        assert_eq!(failed.current, Some(item.clone()));
        assert!(apply_delete(&wrong, Some(&item)).is_err());
        assert_eq!(
            apply_delete(&Condition::default(), Some(&item)),
            Ok(Some(item))
        );
        assert_eq!(apply_delete(&Condition::default(), None), Ok(None));
        assert!(
            Condition::default()
                .exists("x")
                .holds(Some(&Item::from([("x".to_string(), V::Null)])))
        );
        assert!(!Condition::default().exists("x").holds(None));
    }
}
