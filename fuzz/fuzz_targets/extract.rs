//! Every payload extractor on arbitrary bytes: never panics, and each result agrees with what
//! the bytes are (UTF-8 or not, JSON or not).
#![no_main]

use kcl_core::{FromRecord, Json, PayloadError, Position, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let record = Record::new(data.to_vec(), "pk", Position::new("495903382714902566081", 3));
    let text = String::from_record(&record);
    assert_eq!(text.is_ok(), std::str::from_utf8(data).is_ok());
    if let Err(error) = &text {
        assert!(error.to_string().contains("495903382714902566081/3"));
    }
    let json = Json::<serde_json::Value>::from_record(&record);
    assert_eq!(json.is_ok(), serde_json::from_slice::<serde_json::Value>(data).is_ok());
    assert_eq!(Vec::<u8>::from_record(&record).unwrap(), data);
    assert_eq!(Record::from_record(&record).unwrap(), record);
    let lenient = Result::<Json<serde_json::Value>, PayloadError>::from_record(&record).unwrap();
    assert_eq!(lenient.is_ok(), json.is_ok());
    let pair = <(Record, Vec<u8>)>::from_record(&record).unwrap();
    assert_eq!(pair.1, data);
});
