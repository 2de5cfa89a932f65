//! Values and items between this crate's [`AttributeValue`] and the AWS SDK's
//! [`aws_sdk_dynamodb::types::AttributeValue`]. Numbers travel as their decimal text, sets in
//! their order, binary as bytes: nothing is reformatted on the way.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as SdkValue;

use crate::value::{AttributeValue, Item};

/// A value of a type this crate does not know (the SDK's `Unknown`: a newer service type).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("attribute {attribute}: a DynamoDB type this client does not know")]
pub struct UnknownType {
    /// The attribute (the outermost one for a value inside a list or map).
    pub attribute: String,
}

/// The SDK's value for `value`.
///
/// ```
/// use aws_sdk_dynamodb::types::AttributeValue as Sdk;
/// use kcl_lease::AttributeValue as V;
/// use kcl_lease::dynamo::convert::{from_sdk, to_sdk};
/// let value = V::L(vec![V::n(7), V::Ss(vec!["b".into(), "a".into()])]);
/// let sdk = to_sdk(&value);
/// assert_eq!(sdk.as_l().unwrap()[0], Sdk::N("7".into()));
/// assert_eq!(from_sdk(&sdk), Some(value));
/// ```
pub fn to_sdk(value: &AttributeValue) -> SdkValue {
    match value {
        AttributeValue::S(text) => SdkValue::S(text.clone()),
        AttributeValue::N(text) => SdkValue::N(text.clone()),
        AttributeValue::B(bytes) => SdkValue::B(Blob::new(bytes.clone())),
        AttributeValue::Ss(texts) => SdkValue::Ss(texts.clone()),
        AttributeValue::Ns(texts) => SdkValue::Ns(texts.clone()),
        AttributeValue::Bs(blobs) => SdkValue::Bs(blobs.iter().cloned().map(Blob::new).collect()),
        AttributeValue::L(values) => SdkValue::L(values.iter().map(to_sdk).collect()),
        AttributeValue::M(values) => SdkValue::M(
            values
                .iter()
                .map(|(name, value)| (name.clone(), to_sdk(value)))
                .collect(),
        ),
        AttributeValue::Bool(flag) => SdkValue::Bool(*flag),
        AttributeValue::Null => SdkValue::Null(true),
    }
}

/// This crate's value for an SDK value; `None` for a type it does not know.
pub fn from_sdk(value: &SdkValue) -> Option<AttributeValue> {
    Some(match value {
        SdkValue::S(text) => AttributeValue::S(text.clone()),
        SdkValue::N(text) => AttributeValue::N(text.clone()),
        SdkValue::B(blob) => AttributeValue::B(blob.as_ref().to_vec()),
        SdkValue::Ss(texts) => AttributeValue::Ss(texts.clone()),
        SdkValue::Ns(texts) => AttributeValue::Ns(texts.clone()),
        SdkValue::Bs(blobs) => {
            AttributeValue::Bs(blobs.iter().map(|b| b.as_ref().to_vec()).collect())
        }
        SdkValue::L(values) => {
            AttributeValue::L(values.iter().map(from_sdk).collect::<Option<_>>()?)
        }
        SdkValue::M(values) => AttributeValue::M(
            values
                .iter()
                .map(|(name, value)| Some((name.clone(), from_sdk(value)?)))
                .collect::<Option<_>>()?,
        ),
        SdkValue::Bool(flag) => AttributeValue::Bool(*flag),
        SdkValue::Null(_) => AttributeValue::Null,
        _ => return None,
    })
}

/// The SDK's form of an item (or of `ExpressionAttributeValues`).
pub fn item_to_sdk<'a>(
    item: impl IntoIterator<Item = (&'a String, &'a AttributeValue)>,
) -> HashMap<String, SdkValue> {
    item.into_iter()
        .map(|(name, value)| (name.clone(), to_sdk(value)))
        .collect()
}

/// An item from the SDK's form.
///
/// ```
/// use std::collections::HashMap;
/// use aws_sdk_dynamodb::types::AttributeValue as Sdk;
/// use kcl_lease::dynamo::convert::{item_from_sdk, item_to_sdk};
/// let sdk = HashMap::from([("leaseKey".to_string(), Sdk::S("shardId-0".into()))]);
/// let item = item_from_sdk(&sdk).unwrap();
/// assert_eq!(item["leaseKey"].as_s(), Some("shardId-0"));
/// assert_eq!(item_to_sdk(&item), sdk);
/// ```
pub fn item_from_sdk(item: &HashMap<String, SdkValue>) -> Result<Item, UnknownType> {
    item.iter()
        .map(|(name, value)| match from_sdk(value) {
            Some(value) => Ok((name.clone(), value)),
            None => Err(UnknownType {
                attribute: name.clone(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_type_both_ways() {
        let value = AttributeValue::M(BTreeMap::from([
            ("s".to_string(), AttributeValue::s("x")),
            ("n".to_string(), AttributeValue::N("-1.50".into())),
            ("b".to_string(), AttributeValue::B(vec![0, 255])),
            (
                "ss".to_string(),
                AttributeValue::Ss(vec!["b".into(), "a".into()]),
            ),
            (
                "ns".to_string(),
                AttributeValue::Ns(vec!["2".into(), "1".into()]),
            ),
            ("bs".to_string(), AttributeValue::Bs(vec![vec![1], vec![]])),
            (
                "l".to_string(),
                AttributeValue::L(vec![AttributeValue::Null]),
            ),
            ("t".to_string(), AttributeValue::Bool(true)),
        ]));
        assert_eq!(from_sdk(&to_sdk(&value)), Some(value));
        assert_eq!(to_sdk(&AttributeValue::Null), SdkValue::Null(true));
        assert_eq!(from_sdk(&SdkValue::Null(false)), Some(AttributeValue::Null));
    }
}
