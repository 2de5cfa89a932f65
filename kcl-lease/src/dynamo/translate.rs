//! A [`Write`] or [`Delete`] as a DynamoDB request: a `ConditionExpression`, an
//! `UpdateExpression` (`SET` / `ADD` / `REMOVE`) or the item of a `PutItem`, and the
//! `ExpressionAttributeNames` / `ExpressionAttributeValues` they use. Attribute names and values
//! only ever appear as placeholders (`#n0`, `:v0`), numbered in order of first use, so the same
//! write always gives the same request, byte for byte. Pure: no client, no I/O.

use std::collections::{BTreeMap, BTreeSet};

use crate::ops::{Action, Condition, Delete, Expect, Update, Write, has_empty_set};
use crate::value::{AttributeValue, Item};

/// What kind of request carries a translated write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `UpdateItem` with this `UpdateExpression` (`None`: no change, which still creates an
    /// item holding only the key when there is none; moto 5.2.5 answers such a request with
    /// HTTP 500).
    UpdateItem {
        /// The `UpdateExpression`.
        update: Option<String>,
    },
    /// `PutItem` of this item (the key included).
    PutItem {
        /// The whole item.
        item: Item,
    },
    /// `DeleteItem`.
    DeleteItem,
}

/// A write ready for the SDK: the operation, its `ConditionExpression` and the placeholders.
///
/// ```
/// use kcl_lease::dynamo::translate::{Operation, translate_write};
/// use kcl_lease::{Lease, ops};
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let mut lease = Lease::new("shardId-0", E::trim_horizon());
/// lease.lease_counter = 4;
/// let request = translate_write("leaseKey", &ops::take(&lease, "me")).unwrap();
/// assert_eq!(request.condition.as_deref(), Some("#n0 = :v0"));
/// assert_eq!(
///     request.operation,
///     Operation::UpdateItem { update: Some("SET #n0 = :v1, #n1 = :v2 REMOVE #n2".into()) }
/// );
/// assert_eq!(request.names["#n0"], "leaseCounter");
/// assert_eq!(request.values[":v1"].as_n(), Some("5"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translated {
    /// The request and what it changes.
    pub operation: Operation,
    /// The `ConditionExpression` (`None`: unconditional).
    pub condition: Option<String>,
    /// `ExpressionAttributeNames`: placeholder to attribute name (empty: send none).
    pub names: BTreeMap<String, String>,
    /// `ExpressionAttributeValues`: placeholder to value (empty: send none).
    pub values: BTreeMap<String, AttributeValue>,
}

/// A write DynamoDB would refuse (`ValidationException`), found before sending it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid write: {0}")]
pub struct InvalidWrite(pub String);

/// Hands out placeholders: one per attribute name (reused wherever the name appears), one per
/// value.
#[derive(Default)]
struct Placeholders {
    names: BTreeMap<String, String>,
    by_name: BTreeMap<String, String>,
    values: BTreeMap<String, AttributeValue>,
}

impl Placeholders {
    fn name(&mut self, attribute: &str) -> String {
        if let Some(placeholder) = self.by_name.get(attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.by_name.len());
        self.by_name
            .insert(attribute.to_owned(), placeholder.clone());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn finish(self, operation: Operation, condition: Option<String>) -> Translated {
        Translated {
            operation,
            condition,
            names: self.names,
            values: self.values,
        }
    }
}

/// The `ConditionExpression` of `condition`: its expectations in order, joined by `AND`
/// (`#n = :v`, `attribute_not_exists(#n)`, `attribute_exists(#n)`); `None` when it has none.
fn condition_expression(condition: &Condition, places: &mut Placeholders) -> Option<String> {
    let clauses: Vec<String> = condition
        .expectations
        .iter()
        .map(|expectation| {
            let name = places.name(&expectation.attribute);
            match &expectation.expect {
                Expect::Equals(value) => format!("{name} = {}", places.value(value.clone())),
                Expect::Absent => format!("attribute_not_exists({name})"),
                Expect::Exists => format!("attribute_exists({name})"),
            }
        })
        .collect();
    (!clauses.is_empty()).then(|| clauses.join(" AND "))
}

/// The `UpdateExpression` of `actions`: `SET`, then `REMOVE`, then `ADD`, each clause's
/// actions in their order. DynamoDB applies an expression's actions as one change, so
/// `key_attribute` and an attribute named by two actions are refused (`apply` judges them the
/// same way).
fn update_expression(
    key_attribute: &str,
    actions: &[Action],
    places: &mut Placeholders,
) -> Result<Option<String>, InvalidWrite> {
    let mut seen = BTreeSet::new();
    let (mut set, mut remove, mut add) = (Vec::new(), Vec::new(), Vec::new());
    for action in actions {
        let attribute = match action {
            Action::Put(name, _) | Action::Add(name, _) | Action::Remove(name) => name,
        };
        if attribute == key_attribute {
            return Err(InvalidWrite(format!(
                "{attribute} is the key and cannot be updated"
            )));
        }
        if !seen.insert(attribute.as_str()) {
            return Err(InvalidWrite(format!(
                "two actions on {attribute} (overlapping document paths)"
            )));
        }
        let name = places.name(attribute);
        match action {
            Action::Put(_, value) => set.push(format!("{name} = {}", places.value(value.clone()))),
            Action::Remove(_) => remove.push(name),
            Action::Add(_, delta) => {
                add.push(format!("{name} {}", places.value(AttributeValue::n(delta))))
            }
        }
    }
    let clauses: Vec<String> = [("SET", set), ("REMOVE", remove), ("ADD", add)]
        .into_iter()
        .filter(|(_, parts)| !parts.is_empty())
        .map(|(verb, parts)| format!("{verb} {}", parts.join(", ")))
        .collect();
    Ok((!clauses.is_empty()).then(|| clauses.join(" ")))
}

/// DynamoDB refuses an empty set anywhere in a request (moto only once the condition holds):
/// refused here, as [`apply`](crate::apply) refuses it, whatever the table holds.
fn refuse_empty_sets(write: &Write) -> Result<(), InvalidWrite> {
    let compared = write
        .condition
        .expectations
        .iter()
        .filter_map(|expectation| match &expectation.expect {
            Expect::Equals(value) => Some((&expectation.attribute, value)),
            _ => None,
        });
    let written: Vec<(&String, &AttributeValue)> = match &write.update {
        Update::Actions(actions) => actions
            .iter()
            .filter_map(|action| match action {
                Action::Put(name, value) => Some((name, value)),
                _ => None,
            })
            .collect(),
        Update::PutItem(item) => item.iter().collect(),
    };
    match compared
        .chain(written)
        .find(|(_, value)| has_empty_set(value))
    {
        Some((name, _)) => Err(InvalidWrite(format!("{name}: an empty set"))),
        None => Ok(()),
    }
}

/// Translates a write to the item `write.key` of a table whose hash key is `key_attribute`:
/// `UpdateItem` for [`Update::Actions`], `PutItem` (the key added when the item lacks it) for
/// [`Update::PutItem`]. Refused, as [`apply`](crate::apply) refuses them: an update of the key,
/// two actions on one attribute, an empty set, a `PutItem` carrying another key. The condition's placeholders come first, so a condition reads the same
/// in every kind of request.
pub fn translate_write(key_attribute: &str, write: &Write) -> Result<Translated, InvalidWrite> {
    refuse_empty_sets(write)?;
    let mut places = Placeholders::default();
    let condition = condition_expression(&write.condition, &mut places);
    let operation = match &write.update {
        Update::Actions(actions) => Operation::UpdateItem {
            update: update_expression(key_attribute, actions, &mut places)?,
        },
        Update::PutItem(item) => {
            let mut item = item.clone();
            match item.get(key_attribute) {
                None => {
                    item.insert(key_attribute.to_owned(), AttributeValue::s(&write.key));
                }
                Some(AttributeValue::S(key)) if *key == write.key => {}
                Some(other) => {
                    return Err(InvalidWrite(format!(
                        "PutItem for {key_attribute} {:?} carries {key_attribute} {other:?}",
                        write.key
                    )));
                }
            }
            Operation::PutItem { item }
        }
    };
    Ok(places.finish(operation, condition))
}

/// Translates a conditional delete.
///
/// ```
/// use kcl_lease::dynamo::translate::{Operation, translate_delete};
/// use kcl_lease::{Condition, Delete};
/// let delete = Delete { key: "w1".into(), condition: Condition::default().absent("lut") };
/// let request = translate_delete(&delete);
/// assert_eq!(request.operation, Operation::DeleteItem);
/// assert_eq!(request.condition.as_deref(), Some("attribute_not_exists(#n0)"));
/// assert!(request.values.is_empty());
/// ```
pub fn translate_delete(delete: &Delete) -> Translated {
    let mut places = Placeholders::default();
    let condition = condition_expression(&delete.condition, &mut places);
    places.finish(Operation::DeleteItem, condition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Expectation;
    use crate::value::AttributeValue as V;
    use proptest::prelude::*;

    /// Reads a translation back into expectations and actions (the grammar the translation
    /// writes, nothing more), using every placeholder exactly once per use.
    struct Reader<'a> {
        translated: &'a Translated,
        names_used: BTreeSet<&'a str>,
        values_used: BTreeMap<&'a str, usize>,
    }

    impl<'a> Reader<'a> {
        fn new(translated: &'a Translated) -> Self {
            Reader {
                translated,
                names_used: BTreeSet::new(),
                values_used: BTreeMap::new(),
            }
        }

        fn name(&mut self, placeholder: &'a str) -> String {
            assert!(placeholder.starts_with("#n"), "{placeholder} is not a name");
            self.names_used.insert(placeholder);
            self.translated.names[placeholder].clone()
        }

        fn value(&mut self, placeholder: &'a str) -> AttributeValue {
            assert!(
                placeholder.starts_with(":v"),
                "{placeholder} is not a value"
            );
            *self.values_used.entry(placeholder).or_default() += 1;
            self.translated.values[placeholder].clone()
        }

        fn condition(&mut self) -> Condition {
            let Some(text) = self.translated.condition.as_deref() else {
                return Condition::default();
            };
            let expectations = text
                .split(" AND ")
                .map(|clause| {
                    let (attribute, expect) = if let Some(inner) = clause
                        .strip_prefix("attribute_not_exists(")
                        .and_then(|rest| rest.strip_suffix(')'))
                    {
                        (self.name(inner), Expect::Absent)
                    } else if let Some(inner) = clause
                        .strip_prefix("attribute_exists(")
                        .and_then(|rest| rest.strip_suffix(')'))
                    {
                        (self.name(inner), Expect::Exists)
                    } else {
                        let (name, value) = clause.split_once(" = ").expect("a comparison");
                        (self.name(name), Expect::Equals(self.value(value)))
                    };
                    Expectation { attribute, expect }
                })
                .collect();
            Condition { expectations }
        }

        /// The actions, grouped SET, REMOVE, ADD.
        fn actions(&mut self, text: &'a str) -> Vec<Action> {
            let mut actions = Vec::new();
            let mut verb = "";
            for word in text.split(' ') {
                let word = word.trim_end_matches(',');
                match word {
                    "SET" | "REMOVE" | "ADD" => verb = word,
                    "=" => {}
                    _ if word.starts_with("#n") => {
                        let name = self.name(word);
                        match verb {
                            "REMOVE" => actions.push(Action::Remove(name)),
                            _ => actions.push(Action::Put(name, V::Null)),
                        }
                    }
                    _ => {
                        let value = self.value(word);
                        let Some(Action::Put(name, _)) = actions.pop() else {
                            panic!("a value without a name in {text}")
                        };
                        actions.push(match verb {
                            "SET" => Action::Put(name, value),
                            "ADD" => Action::Add(name, value.as_n().unwrap().parse().unwrap()),
                            _ => panic!("a value in {verb}"),
                        });
                    }
                }
            }
            actions
        }

        /// Every placeholder was used, each value exactly once.
        fn all_used(&self) {
            let names: BTreeSet<&str> = self.translated.names.keys().map(String::as_str).collect();
            assert_eq!(names, self.names_used);
            let values: BTreeSet<&str> =
                self.translated.values.keys().map(String::as_str).collect();
            assert_eq!(values, self.values_used.keys().copied().collect());
            assert!(self.values_used.values().all(|uses| *uses == 1));
        }
    }

    /// Sorts actions as the translation groups them (SET, REMOVE, ADD; stable within a group).
    fn grouped(actions: &[Action]) -> Vec<Action> {
        let rank = |action: &Action| match action {
            Action::Put(..) => 0,
            Action::Remove(_) => 1,
            Action::Add(..) => 2,
        };
        let mut sorted = actions.to_vec();
        sorted.sort_by_key(rank);
        sorted
    }

    fn value() -> impl Strategy<Value = AttributeValue> {
        let leaf = prop_oneof![
            "[a-z0-9 ]{0,6}".prop_map(V::S),
            any::<i64>().prop_map(V::n),
            proptest::collection::vec(any::<u8>(), 0..4).prop_map(V::B),
            proptest::collection::btree_set("[a-z]{1,3}", 1..3)
                .prop_map(|set| V::Ss(set.into_iter().collect())),
            any::<bool>().prop_map(V::Bool),
            Just(V::Null),
        ];
        leaf.prop_recursive(2, 6, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(V::L),
                proptest::collection::btree_map("[a-z]{1,2}", inner, 0..3).prop_map(V::M),
            ]
        })
    }

    /// Attribute names from a small pool (so conditions and actions share names), some with
    /// characters that would need escaping if inlined.
    fn attribute() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("leaseCounter".to_owned()),
            Just("leaseOwner".to_owned()),
            Just("checkpointOwner".to_owned()),
            Just("key".to_owned()),
            Just("a.b".to_owned()),
            Just("size".to_owned()),
            "[a-z]{1,8}",
        ]
    }

    fn condition() -> impl Strategy<Value = Condition> {
        let expect = prop_oneof![
            value().prop_map(Expect::Equals),
            Just(Expect::Absent),
            Just(Expect::Exists),
        ];
        proptest::collection::vec((attribute(), expect), 0..5).prop_map(|list| Condition {
            expectations: list
                .into_iter()
                .map(|(attribute, expect)| Expectation { attribute, expect })
                .collect(),
        })
    }

    /// Actions on distinct attributes (what DynamoDB accepts), never on the key.
    fn actions() -> impl Strategy<Value = Vec<Action>> {
        proptest::collection::btree_map(
            attribute().prop_filter("not the key", |a| a != "leaseKey"),
            prop_oneof![
                value().prop_map(Some),
                Just(None),
                any::<i32>().prop_map(|n| Some(V::n(n)))
            ],
            0..6,
        )
        .prop_flat_map(|map| {
            let list: Vec<(String, Option<AttributeValue>)> = map.into_iter().collect();
            let len = list.len();
            (Just(list), proptest::collection::vec(0..3u8, len))
        })
        .prop_map(|(list, kinds)| {
            list.into_iter()
                .zip(kinds)
                .map(|((name, value), kind)| match (kind, value) {
                    (0, Some(value)) => Action::Put(name, value),
                    (1, _) | (_, None) => Action::Remove(name),
                    (_, Some(value)) => {
                        Action::Add(name, value.as_n().map_or(1, |n| n.len() as i64))
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn updates_round_trip(condition in condition(), actions in actions()) {
            let write = Write {
                key: "shardId-0".into(),
                condition: condition.clone(),
                update: Update::Actions(actions.clone()),
            };
            let translated = translate_write("leaseKey", &write).unwrap();
            prop_assert_eq!(&translate_write("leaseKey", &write).unwrap(), &translated);
            let mut reader = Reader::new(&translated);
            prop_assert_eq!(reader.condition(), condition);
            let Operation::UpdateItem { update } = &translated.operation else {
                panic!("not an UpdateItem")
            };
            let read = update.as_deref().map(|text| reader.actions(text)).unwrap_or_default();
            prop_assert_eq!(read, grouped(&actions));
            reader.all_used();
            // Nothing of a name or a value is inlined.
            for text in translated.condition.iter().chain(update) {
                for name in translated.names.values() {
                    prop_assert!(!text.split([' ', '(', ')', ',']).any(|w| w == name), "{name} inlined in {text}");
                }
            }
        }

        #[test]
        fn puts_and_deletes_round_trip(condition in condition(), item in proptest::collection::btree_map(attribute(), value(), 0..4)) {
            let write = Write {
                key: "w1".into(),
                condition: condition.clone(),
                update: Update::PutItem(item.clone().into_iter().filter(|(k, _)| k != "wid").collect()),
            };
            let translated = translate_write("wid", &write).unwrap();
            let mut reader = Reader::new(&translated);
            prop_assert_eq!(reader.condition(), condition.clone());
            reader.all_used();
            let Operation::PutItem { item: put } = &translated.operation else {
                panic!("not a PutItem")
            };
            prop_assert_eq!(put["wid"].as_s(), Some("w1"));
            prop_assert_eq!(put.len(), item.keys().filter(|k| *k != "wid").count() + 1);

            let delete = translate_delete(&Delete { key: "w1".into(), condition: condition.clone() });
            let mut reader = Reader::new(&delete);
            prop_assert_eq!(reader.condition(), condition);
            reader.all_used();
        }
    }

    #[test]
    fn a_checkpoint_byte_for_byte() {
        let write = Write {
            key: "shardId-0".into(),
            condition: Condition::default().equals("leaseCounter", V::n(7)),
            update: Update::Actions(vec![
                Action::Put("leaseCounter".into(), V::n(8)),
                Action::Remove("pendingCheckpoint".into()),
                Action::Add("ownerSwitchesSinceCheckpoint".into(), 1),
                Action::Put("checkpoint".into(), V::s("42")),
            ]),
        };
        let translated = translate_write("leaseKey", &write).unwrap();
        assert_eq!(translated.condition.as_deref(), Some("#n0 = :v0"));
        assert_eq!(
            translated.operation,
            Operation::UpdateItem {
                update: Some("SET #n0 = :v1, #n3 = :v3 REMOVE #n1 ADD #n2 :v2".into())
            }
        );
        let names: Vec<(&str, &str)> = translated
            .names
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("#n0", "leaseCounter"),
                ("#n1", "pendingCheckpoint"),
                ("#n2", "ownerSwitchesSinceCheckpoint"),
                ("#n3", "checkpoint")
            ]
        );
        assert_eq!(translated.values[":v2"], V::n(1));
    }

    #[test]
    fn refusals() {
        let bad = |actions: Vec<Action>| Write {
            key: "k".into(),
            condition: Condition::default(),
            update: Update::Actions(actions),
        };
        assert!(
            translate_write("leaseKey", &bad(vec![Action::Remove("leaseKey".into())])).is_err()
        );
        assert!(
            translate_write(
                "leaseKey",
                &bad(vec![Action::Add("a".into(), 1), Action::Remove("a".into())])
            )
            .is_err()
        );
        let other_key = Write {
            key: "k".into(),
            condition: Condition::default(),
            update: Update::PutItem(Item::from([("leaseKey".to_string(), V::s("j"))])),
        };
        assert!(translate_write("leaseKey", &other_key).is_err());
        let empty_set = Write {
            key: "k".into(),
            condition: Condition::default().equals("s", V::Ss(vec![])),
            update: Update::Actions(vec![Action::Remove("s".into())]),
        };
        assert!(translate_write("leaseKey", &empty_set).is_err());
        let empty = translate_write("leaseKey", &bad(vec![])).unwrap();
        assert_eq!(empty.operation, Operation::UpdateItem { update: None });
        assert_eq!(empty.condition, None);
        assert!(empty.names.is_empty() && empty.values.is_empty());
    }
}
