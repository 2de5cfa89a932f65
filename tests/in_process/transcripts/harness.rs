//! The harness itself: its encoders agree with Jackson, and it rejects what it must.

use super::*;

#[test]
fn harness_self_check() {
    assert_eq!(seq(0), SEQ_BASE);
    assert_eq!(
        seq(2),
        "49590338271490256608559692538361571095921575989136588900"
    );
    assert_eq!(
        seq(10_000),
        "49590338271490256608559692538361571095921575989136598898"
    );
    // The encoder agrees with the Jackson output quoted in docs/protocol.md.
    assert_eq!(base64(b"hello"), "aGVsbG8=");
    assert_eq!(base64(&[0x00, 0xff, 0x0a, 0x0d, 0x00, 0x22]), "AP8KDQAi");
    assert_eq!(base64("héllo\nwörld".as_bytes()), "aMOpbGxvCnfDtnJsZA==");
    assert_eq!(base64(b""), "");
    assert_eq!(base64(&vec![7u8; 1 << 20]).len(), 1_398_104);
    assert_ne!(pseudo_random_bytes(1, 64), pseudo_random_bytes(2, 64));
}

#[test]
#[should_panic(expected = "the daemon skips this line")]
fn harness_rejects_a_status_with_an_extra_key() {
    child_messages(b"\n{\"action\":\"status\",\"responseFor\":\"x\",\"ok\":true}\n");
}

#[test]
#[should_panic(expected = "framed")]
fn harness_rejects_unframed_output() {
    child_messages(b"{\"action\":\"status\",\"responseFor\":\"x\"}\n");
}

#[test]
#[should_panic(expected = "neither a status nor a checkpoint")]
fn harness_rejects_other_child_lines() {
    child_messages(b"\n{\"action\":\"initialize\",\"shardId\":\"x\"}\n");
}

#[test]
#[should_panic(expected = "differs from the expected transcript")]
fn harness_reports_a_different_transcript() {
    assert_lines(
        &expect(&[r#"{"action":"status","responseFor":"initialize"}"#]),
        &expect(&[r#"{"action":"status","responseFor":"leaseLost"}"#]),
    );
}

#[test]
#[should_panic(expected = "not in the child's form")]
fn harness_rejects_a_number_written_as_text() {
    // The daemon coerces "2" to 2, but the child writes numbers as numbers.
    child_messages(
        b"\n{\"action\":\"checkpoint\",\"sequenceNumber\":null,\"subSequenceNumber\":\"2\"}\n",
    );
}
