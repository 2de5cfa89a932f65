//! T12 - T14 (docs/protocol.md §7): what records carry (Unicode, binary, mangled keys, large
//! batches and records) and lines that are not messages.

use super::*;

#[test]
fn t12_unicode_and_binary_payloads() {
    let (processor, seen) = record_keeper();
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"AP8KDQAi","partitionKey":"ключ-🔑","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000002000,"subSequenceNumber":0,"action":"record"},{"data":"aMOpbGxvCnfDtnJsZA==","partitionKey":"tab\tkey\u0001","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000002001,"subSequenceNumber":0,"action":"record"},{"data":"","partitionKey":"empty","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000002002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#,
            C_PROCESSED,
        ],
    );
    assert_eq!(
        *seen.borrow(),
        [
            SeenRecord {
                data: vec![0x00, 0xff, 0x0a, 0x0d, 0x00, 0x22],
                key: "ключ-🔑".into(),
                position: Position::new(seq(0), 0),
                arrival: Some(1_700_000_002_000),
            },
            SeenRecord {
                data: "héllo\nwörld".as_bytes().to_vec(),
                key: "tab\tkey\u{1}".into(),
                position: Position::new(seq(1), 0),
                arrival: Some(1_700_000_002_001),
            },
            SeenRecord {
                data: Vec::new(),
                key: "empty".into(),
                position: Position::new(seq(2), 0),
                arrival: Some(1_700_000_002_002),
            },
        ]
    );
}

#[test]
fn t12_word_count_on_unicode_and_binary_payloads() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"AP8KDQAi","partitionKey":"ключ-🔑","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000002000,"subSequenceNumber":0,"action":"record"},{"data":"aMOpbGxvCnfDtnJsZA==","partitionKey":"tab\tkey\u0001","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000002001,"subSequenceNumber":0,"action":"record"},{"data":"","partitionKey":"empty","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000002002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0,"error":null}"#,
            C_PROCESSED,
        ],
    );
    let state = state.borrow();
    // 00 FF ... is not UTF-8 (skipped); "héllo\nwörld" has two words; "" has none.
    assert_eq!((state.records, state.skipped, state.total_words), (2, 1, 2));
}

#[test]
fn t12_partition_key_mangled_by_a_non_utf8_jvm_locale() {
    // JDK <= 17 with a non-UTF-8 locale writes unmappable characters as '?': the key arrives as
    // "ключ-??" (the emoji's UTF-16 surrogate pair became "??"), or with LANG=C as "????-??".
    let (processor, seen) = record_keeper();
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"AP8KDQAi","partitionKey":"ключ-??","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000002000,"subSequenceNumber":0,"action":"record"},{"data":"aMOpbGxvCnfDtnJsZA==","partitionKey":"????-??","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000002001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#,
            C_PROCESSED,
        ],
    );
    let seen = seen.borrow();
    let keys: Vec<&str> = seen.iter().map(|record| record.key.as_str()).collect();
    assert_eq!(keys, ["ключ-??", "????-??"]);
    assert_eq!(seen[0].data, [0x00, 0xff, 0x0a, 0x0d, 0x00, 0x22]);
    assert_eq!(seen[1].data, "héllo\nwörld".as_bytes());
}

#[test]
fn t12_invalid_utf8_bytes_in_a_partition_key_do_not_crash() {
    let (processor, seen) = record_keeper();
    let mut input = Vec::new();
    input.extend_from_slice(br#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#);
    input.push(b'\n');
    input.extend_from_slice(
        br#"{"action":"processRecords","records":[{"data":"aGk=","partitionKey":"bad-"#,
    );
    input.extend_from_slice(&[0xff, 0xc3, 0x28, 0xe2, 0x82]); // not UTF-8
    input.extend_from_slice(br#"-key","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000002000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":5}"#);
    input.push(b'\n');
    input.extend_from_slice(br#"{"action":"leaseLost"}"#);
    input.push(b'\n');
    let out = run_input(processor, RetryPolicy::immediate(3), &input);
    assert_lines(
        &out,
        &expect(&[
            r#"{"action":"status","responseFor":"initialize"}"#,
            r#"{"action":"status","responseFor":"processRecords"}"#,
            r#"{"action":"status","responseFor":"leaseLost"}"#,
        ]),
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].data, b"hi");
    assert!(
        seen[0].key.starts_with("bad-")
            && seen[0].key.ends_with("-key")
            && seen[0].key.contains('\u{fffd}'),
        "invalid bytes are replaced by U+FFFD: {:?}",
        seen[0].key
    );
    assert_eq!(seen[0].position, Position::new(seq(0), 0));
}

#[test]
fn t13_large_batch_of_10000_records() {
    const RECORDS: u64 = 10_000;
    const SIZE: usize = 1_000;
    let records: Vec<WireRecord> = (1..=RECORDS)
        .map(|n| {
            wire_record(
                &pseudo_random_bytes(n, SIZE),
                format!("pk-{n}"),
                seq(n),
                1_700_000_000_000 + n as i64,
            )
        })
        .collect();
    let batch = process_records_line(records, Some(86_400_000));
    assert!(batch.len() > 13_000_000, "a ~14 MB line: {}", batch.len());
    let last = seq(RECORDS);
    let reply = format!(
        r#"{{"action":"checkpoint","sequenceNumber":"{last}","subSequenceNumber":0,"error":null}}"#
    );

    // Every payload, key and position arrives intact.
    let (mut counter, totals) = shared(ByteCount::default());
    let mismatches = log::<String>();
    let handler_mismatches = mismatches.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        for (index, record) in batch.iter().enumerate() {
            let n = index as u64 + 1;
            if record.data() != pseudo_random_bytes(n, SIZE).as_slice()
                || record.partition_key() != format!("pk-{n}")
                || *record.position() != Position::new(seq(n), 0)
            {
                handler_mismatches.borrow_mut().push(format!("record {n}"));
            }
        }
        counter.process_records(batch, cp)
    });
    let out = transcript(
        processor,
        &[
            r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            &batch,
            &reply,
            r#"{"action":"leaseLost"}"#,
        ],
    );
    let request =
        format!(r#"{{"action":"checkpoint","sequenceNumber":"{last}","subSequenceNumber":0}}"#);
    assert_lines(
        &out,
        &expect(&[
            r#"{"action":"status","responseFor":"initialize"}"#,
            &request,
            r#"{"action":"status","responseFor":"processRecords"}"#,
            r#"{"action":"status","responseFor":"leaseLost"}"#,
        ]),
    );
    assert!(mismatches.borrow().is_empty(), "{:?}", mismatches.borrow());
    let totals = totals.borrow();
    assert_eq!((totals.records, totals.bytes), (10_000, 10_000_000));
}

#[test]
fn t13_one_mib_record() {
    let payload = pseudo_random_bytes(42, 1 << 20);
    let record = wire_record(&payload, "big".into(), seq(0), 1_700_000_000_000);
    assert_eq!(record.data.as_ref().map(String::len), Some(1_398_104));
    let batch = process_records_line(vec![record], Some(0));

    let (processor, seen) = record_keeper();
    let out = transcript(processor, &[&batch]);
    assert_lines(
        &out,
        &expect(&[r#"{"action":"status","responseFor":"processRecords"}"#]),
    );
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].data == payload, "the 1 MiB payload arrived altered");

    let (processor, totals) = shared(ByteCount::default());
    let reply = format!(
        r#"{{"action":"checkpoint","sequenceNumber":"{}","subSequenceNumber":0,"error":null}}"#,
        seq(0)
    );
    let request = format!(
        r#"{{"action":"checkpoint","sequenceNumber":"{}","subSequenceNumber":0}}"#,
        seq(0)
    );
    let out = transcript(processor, &[&batch, &reply]);
    assert_lines(
        &out,
        &expect(&[
            &request,
            r#"{"action":"status","responseFor":"processRecords"}"#,
        ]),
    );
    assert_eq!(totals.borrow().bytes, 1 << 20);
}

#[test]
fn t14_junk_input_lines_are_skipped_without_output() {
    check(
        WordCount::default(),
        &[
            "D> ",
            "D> DEBUG hello",
            r#"D> {"foo":1}"#,
            "D>    \t  ",
            D_INITIALIZE,
            C_INITIALIZED,
            "D> ",
            "D> DEBUG hello",
            r#"D> {"foo":1}"#,
            r#"D> {"action":5}"#,
            "D> [1,2,3]",
            "D> null",
            "D> {not json",
            "D>  ",
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
            "D> DEBUG hello",
            D_LEASE_LOST,
            C_LEASE_LOST,
            "D> ",
            "D> DEBUG bye",
        ],
    );
}

#[test]
fn t14_junk_only_input_produces_no_output() {
    let out = transcript(
        WordCount::default(),
        &["", "DEBUG hello", r#"{"foo":1}"#, "  \t ", "[]"],
    );
    assert_lines(&out, &[]);
}

#[test]
fn crlf_line_endings_give_the_same_output_as_lf() {
    let daemon = [
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        r#"{"action":"processRecords","records":[{"data":"aGVsbG8gd29ybGQ=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        r#"{"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
        r#"{"action":"processRecords","records":[],"millisBehindLatest":null}"#,
        r#"{"action":"shardEnded"}"#,
        r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
    ];
    let expected = expect(&[
        r#"{"action":"status","responseFor":"initialize"}"#,
        r#"{"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
        r#"{"action":"status","responseFor":"processRecords"}"#,
        r#"{"action":"status","responseFor":"processRecords"}"#,
        r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
        r#"{"action":"status","responseFor":"shardEnded"}"#,
    ]);
    let (processor, lf_state) = shared(WordCount::default());
    let lf = transcript(processor, &daemon);
    assert_lines(&lf, &expected);

    let crlf_input: String = daemon.iter().map(|line| format!("{line}\r\n")).collect();
    let (processor, crlf_state) = shared(WordCount::default());
    let crlf = run_input(processor, RetryPolicy::immediate(3), crlf_input.as_bytes());
    assert_lines(&crlf, &expected);
    assert_eq!(crlf, lf);
    assert_eq!(crlf_state.borrow().total_words, 2);
    assert_eq!(lf_state.borrow().total_words, 2);
}

#[test]
fn invalid_utf8_payload_is_skipped_by_word_count_and_the_batch_end_checkpointed() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            // "hello world", bytes FF FE FD (not UTF-8), "one two three"
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8gd29ybGQ=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"//79","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"},{"data":"b25lIHR3byB0aHJlZQ==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0,"error":null}"#,
            C_PROCESSED,
        ],
    );
    let state = state.borrow();
    assert_eq!((state.records, state.skipped, state.total_words), (2, 1, 5));
}
