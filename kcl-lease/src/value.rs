//! DynamoDB attribute values and items, with serde to and from DynamoDB JSON (`{"S":"x"}`,
//! `{"N":"1"}`, base64 for binary), the form the AWS CLI prints and the golden items are kept in.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An item: attribute names to values. Sorted by name, so its JSON form is deterministic.
pub type Item = BTreeMap<String, AttributeValue>;

/// One DynamoDB attribute value.
///
/// Numbers are kept as the decimal text DynamoDB transports (`N`, `NS`), so nothing is lost or
/// reformatted on the way through. Sets keep the order they were read or built in; DynamoDB
/// itself does not order them ([`AttributeValue::same_value`] compares them as sets).
///
/// ```
/// use kcl_lease::AttributeValue as V;
/// let value: V = serde_json::from_str(r#"{"SS":["shardId-1","shardId-0"]}"#).unwrap();
/// assert_eq!(value, V::Ss(vec!["shardId-1".into(), "shardId-0".into()]));
/// assert!(value.same_value(&V::Ss(vec!["shardId-0".into(), "shardId-1".into()])));
/// assert_eq!(serde_json::to_string(&V::B(b"hi".to_vec())).unwrap(), r#"{"B":"aGk="}"#);
/// assert_eq!(serde_json::to_string(&V::n(7)).unwrap(), r#"{"N":"7"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    /// A string (`S`).
    S(String),
    /// A number as decimal text (`N`).
    N(String),
    /// Binary (`B`), base64 in JSON.
    B(Vec<u8>),
    /// A string set (`SS`).
    Ss(Vec<String>),
    /// A number set (`NS`).
    Ns(Vec<String>),
    /// A binary set (`BS`).
    Bs(Vec<Vec<u8>>),
    /// A list (`L`).
    L(Vec<AttributeValue>),
    /// A map (`M`).
    M(BTreeMap<String, AttributeValue>),
    /// A boolean (`BOOL`).
    Bool(bool),
    /// Null (`NULL`, always `true` in JSON).
    Null,
}

impl AttributeValue {
    /// A string value.
    pub fn s(text: impl Into<String>) -> Self {
        AttributeValue::S(text.into())
    }

    /// A number value from anything that prints as a decimal number (integers, mostly).
    pub fn n(number: impl fmt::Display) -> Self {
        AttributeValue::N(number.to_string())
    }

    /// The DynamoDB type name: `S`, `N`, `B`, `SS`, `NS`, `BS`, `L`, `M`, `BOOL` or `NULL`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeValue::S(_) => "S",
            AttributeValue::N(_) => "N",
            AttributeValue::B(_) => "B",
            AttributeValue::Ss(_) => "SS",
            AttributeValue::Ns(_) => "NS",
            AttributeValue::Bs(_) => "BS",
            AttributeValue::L(_) => "L",
            AttributeValue::M(_) => "M",
            AttributeValue::Bool(_) => "BOOL",
            AttributeValue::Null => "NULL",
        }
    }

    /// The text of an `S` value.
    pub fn as_s(&self) -> Option<&str> {
        match self {
            AttributeValue::S(text) => Some(text),
            _ => None,
        }
    }

    /// The text of an `N` value.
    pub fn as_n(&self) -> Option<&str> {
        match self {
            AttributeValue::N(text) => Some(text),
            _ => None,
        }
    }

    /// Equality as DynamoDB judges it in a condition: numbers by value (`"5"` equals `"5.0"`),
    /// sets regardless of order, everything else exactly.
    ///
    /// ```
    /// use kcl_lease::AttributeValue as V;
    /// assert!(V::N("5".into()).same_value(&V::N("5.0".into())));
    /// assert!(!V::N("5".into()).same_value(&V::s("5")));
    /// ```
    pub fn same_value(&self, other: &AttributeValue) -> bool {
        use AttributeValue::*;
        match (self, other) {
            (N(a), N(b)) => numbers_equal(a, b),
            (Ss(a), Ss(b)) => same_set(a, b, |x, y| x == y),
            (Ns(a), Ns(b)) => same_set(a, b, |x, y| numbers_equal(x, y)),
            (Bs(a), Bs(b)) => same_set(a, b, |x, y| x == y),
            (L(a), L(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_value(y)),
            (M(a), M(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.same_value(vb))
            }
            _ => self == other,
        }
    }
}

fn same_set<T>(a: &[T], b: &[T], eq: impl Fn(&T, &T) -> bool) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| eq(x, y)))
}

/// Numeric equality of two decimal texts: exact for integers, by `f64` otherwise, by text when
/// either is not a number.
fn numbers_equal(a: &str, b: &str) -> bool {
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return x == y;
    }
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// An item in DynamoDB JSON, pretty-printed (two-space indent, attributes sorted by name) with
/// a final newline: the form of the golden files.
///
/// ```
/// use kcl_lease::{AttributeValue as V, Item, item_from_json, item_to_json};
/// let item = Item::from([("leaseKey".to_string(), V::s("shardId-0"))]);
/// let json = item_to_json(&item);
/// assert_eq!(json, "{\n  \"leaseKey\": {\n    \"S\": \"shardId-0\"\n  }\n}\n");
/// assert_eq!(item_from_json(&json).unwrap(), item);
/// ```
pub fn item_to_json(item: &Item) -> String {
    let mut text = serde_json::to_string_pretty(item).expect("an item always serializes");
    text.push('\n');
    text
}

/// Reads an item from DynamoDB JSON (an object of attribute names to typed values).
pub fn item_from_json(text: &str) -> Result<Item, serde_json::Error> {
    serde_json::from_str(text)
}

impl Serialize for AttributeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        let name = self.type_name();
        match self {
            AttributeValue::S(text) | AttributeValue::N(text) => map.serialize_entry(name, text)?,
            AttributeValue::B(bytes) => map.serialize_entry(name, &STANDARD.encode(bytes))?,
            AttributeValue::Ss(texts) | AttributeValue::Ns(texts) => {
                map.serialize_entry(name, texts)?
            }
            AttributeValue::Bs(blobs) => {
                let encoded: Vec<String> = blobs.iter().map(|b| STANDARD.encode(b)).collect();
                map.serialize_entry(name, &encoded)?
            }
            AttributeValue::L(values) => map.serialize_entry(name, values)?,
            AttributeValue::M(values) => map.serialize_entry(name, values)?,
            AttributeValue::Bool(flag) => map.serialize_entry(name, flag)?,
            AttributeValue::Null => map.serialize_entry(name, &true)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AttributeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ValueVisitor)
    }
}

struct ValueVisitor;

fn base64<E: de::Error>(text: &str) -> Result<Vec<u8>, E> {
    STANDARD
        .decode(text)
        .map_err(|e| E::custom(format!("invalid base64 {text:?}: {e}")))
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = AttributeValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DynamoDB attribute value: an object with one type key (S, N, B, SS, NS, BS, L, M, BOOL, NULL)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeValue, A::Error> {
        let Some(name) = map.next_key::<String>()? else {
            return Err(de::Error::custom("an attribute value needs a type key"));
        };
        let value = match name.as_str() {
            "S" => AttributeValue::S(map.next_value()?),
            "N" => AttributeValue::N(map.next_value()?),
            "B" => AttributeValue::B(base64(&map.next_value::<String>()?)?),
            "SS" => AttributeValue::Ss(map.next_value()?),
            "NS" => AttributeValue::Ns(map.next_value()?),
            "BS" => AttributeValue::Bs(
                map.next_value::<Vec<String>>()?
                    .iter()
                    .map(|text| base64(text))
                    .collect::<Result<_, _>>()?,
            ),
            "L" => AttributeValue::L(map.next_value()?),
            "M" => AttributeValue::M(map.next_value()?),
            "BOOL" => AttributeValue::Bool(map.next_value()?),
            "NULL" => match map.next_value::<bool>()? {
                true => AttributeValue::Null,
                false => return Err(de::Error::custom("NULL must be true")),
            },
            other => {
                return Err(de::Error::custom(format!(
                    "unknown attribute type {other:?}"
                )));
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "an attribute value has one type key, found {name:?} and {extra:?}"
            )));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips() {
        let text = r#"{"b":{"B":"AAE="},"bool":{"BOOL":false},"bs":{"BS":["AA=="]},"l":{"L":[{"N":"1"},{"S":"x"}]},"m":{"M":{"k":{"NULL":true}}},"n":{"N":"-1.5"},"ns":{"NS":["1","2"]},"s":{"S":"x"},"ss":{"SS":["b","a"]}}"#;
        let item: Item = serde_json::from_str(text).unwrap();
        assert_eq!(item["b"], AttributeValue::B(vec![0, 1]));
        assert_eq!(item["ss"], AttributeValue::Ss(vec!["b".into(), "a".into()]));
        assert_eq!(serde_json::to_string(&item).unwrap(), text);
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            r#"{}"#,
            r#"{"X":"1"}"#,
            r#"{"S":"x","N":"1"}"#,
            r#"{"S":1}"#,
            r#"{"B":"not base64!"}"#,
            r#"{"NULL":false}"#,
        ] {
            assert!(
                serde_json::from_str::<AttributeValue>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn dynamo_equality() {
        use AttributeValue as V;
        assert!(V::n(1).same_value(&V::N("1.0".into())));
        assert!(!V::n(1).same_value(&V::n(2)));
        assert!(!V::Ss(vec!["a".into()]).same_value(&V::Ss(vec!["a".into(), "b".into()])));
        assert!(
            V::Ns(vec!["1".into(), "2".into()]).same_value(&V::Ns(vec!["2".into(), "1".into()]))
        );
        assert!(V::L(vec![V::n(1)]).same_value(&V::L(vec![V::N("1.0".into())])));
        assert!(!V::L(vec![V::n(1)]).same_value(&V::L(vec![])));
        assert!(!V::s("a").same_value(&V::s("b")));
    }
}
