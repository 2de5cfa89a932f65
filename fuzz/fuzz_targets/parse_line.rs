//! The line decoder on arbitrary bytes: never panics, and every message it accepts serializes
//! (in the Java daemon's form) to a line that decodes to the same message again.
#![no_main]

use kcl_core::message::{parse_line, ParsedLine};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    if let ParsedLine::Message(message) = parse_line(line) {
        let json = message.to_json();
        let ParsedLine::Message(again) = parse_line(json.as_bytes()) else {
            panic!("the daemon form of {message:?} does not decode: {json}");
        };
        assert_eq!(again.action(), message.action());
        assert_eq!(again.to_json(), json, "to_json is not stable for {message:?}");
    }
});
