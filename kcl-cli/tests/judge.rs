//! The checkpoint judge that `kcl run` and the test daemon share
//! (`kcl_protocol::LeaseCheckpointer`) against the real thing: the KCL 3.1.3 jar's
//! `ShardRecordProcessorCheckpointer`, driven by a small Java probe. Both get the same generated
//! scenarios (a lease's starting position, the largest record delivered, the end of the shard,
//! checkpoint requests as the MultiLangDaemon turns them into Java calls); every answer and every
//! stored value must be identical. One JVM runs every scenario.

mod common;

use std::fmt::Write as _;
use std::time::Instant;

use common::{JavaProbe, require_program, require_real_jars};
use kcl_protocol::{CheckpointOutcome, ExtendedSequenceNumber, LeaseCheckpointer};

/// Reads scenario lines on stdin and writes one line per checkpoint request to the file named
/// by its argument (the KCL logs through logback, which may write to stdout).
///
/// Lines: `I SEQ SUB` a new lease whose checkpoint is SEQ/SUB (as `InitializeTask` sets it up);
/// `D SEQ SUB` the largest permitted value (as `ProcessTask` raises it before `processRecords`);
/// `E` the end of the shard (as `ShutdownTask` does before `shardEnded`); `C SEQ SUB` a
/// checkpoint request, called like `MultiLangProtocol.checkpoint` does (null sequence:
/// `checkpoint()`; null sub-sequence: `checkpoint(seq)`; else `checkpoint(seq, sub)`). Text is
/// `x` + hex of its UTF-8 bytes, `-` is null.
const PROBE: &str = r#"
import java.io.*;
import java.lang.reflect.Proxy;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import software.amazon.kinesis.checkpoint.ShardRecordProcessorCheckpointer;
import software.amazon.kinesis.leases.ShardInfo;
import software.amazon.kinesis.processor.Checkpointer;
import software.amazon.kinesis.retrieval.kpl.ExtendedSequenceNumber;

public class CheckpointProbe {
  static ExtendedSequenceNumber written;

  static String text(String field) {
    if (field.equals("-")) return null;
    byte[] bytes = new byte[(field.length() - 1) / 2];
    for (int i = 0; i < bytes.length; i++) {
      bytes[i] = (byte) Integer.parseInt(field.substring(1 + 2 * i, 3 + 2 * i), 16);
    }
    return new String(bytes, StandardCharsets.UTF_8);
  }

  static String show(ExtendedSequenceNumber value) {
    StringBuilder out = new StringBuilder("x");
    for (byte b : value.sequenceNumber().getBytes(StandardCharsets.UTF_8)) {
      out.append(String.format("%02x", b & 0xff));
    }
    return out.append('/').append(value.subSequenceNumber()).toString();
  }

  public static void main(String[] args) throws Exception {
    Checkpointer table = (Checkpointer) Proxy.newProxyInstance(
        Checkpointer.class.getClassLoader(), new Class<?>[] {Checkpointer.class},
        (proxy, method, a) -> {
          if (method.getName().equals("setCheckpoint")) {
            written = (ExtendedSequenceNumber) a[1];
            return null;
          }
          throw new UnsupportedOperationException(method.getName());
        });
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    Writer out = new BufferedWriter(new OutputStreamWriter(new FileOutputStream(args[0]), StandardCharsets.UTF_8));
    ShardRecordProcessorCheckpointer checkpointer = null;
    for (String line; (line = in.readLine()) != null; ) {
      String[] f = line.split(" ", -1);
      switch (f[0]) {
        case "I": {
          ExtendedSequenceNumber initial = new ExtendedSequenceNumber(text(f[1]), Long.valueOf(f[2]));
          checkpointer = new ShardRecordProcessorCheckpointer(
              new ShardInfo("shardId-000000000000", "token", Collections.emptyList(), initial), table);
          checkpointer.largestPermittedCheckpointValue(initial);
          checkpointer.setInitialCheckpointValue(initial);
          break;
        }
        case "D":
          checkpointer.largestPermittedCheckpointValue(new ExtendedSequenceNumber(text(f[1]), Long.valueOf(f[2])));
          break;
        case "E":
          checkpointer.sequenceNumberAtShardEnd(checkpointer.largestPermittedCheckpointValue());
          checkpointer.largestPermittedCheckpointValue(ExtendedSequenceNumber.SHARD_END);
          break;
        case "C": {
          String sequence = text(f[1]);
          Long sub = f[2].equals("-") ? null : Long.valueOf(f[2]);
          written = null;
          String outcome;
          try {
            if (sequence == null) checkpointer.checkpoint();
            else if (sub == null) checkpointer.checkpoint(sequence);
            else checkpointer.checkpoint(sequence, sub.longValue());
            outcome = written == null ? "unchanged" : "stored " + show(written);
          } catch (Exception e) {
            outcome = "error " + e.getClass().getSimpleName();
          }
          out.write(outcome + " last " + show(checkpointer.lastCheckpointValue()) + "\n");
          break;
        }
        default:
          throw new IllegalArgumentException("bad line: " + line);
      }
    }
    out.close();
  }
}
"#;

/// One step of a scenario (see [`PROBE`]).
#[derive(Clone, Debug)]
enum Step {
    Initial(String, i64),
    Delivered(String, i64),
    ShardEnd,
    Checkpoint(Option<String>, Option<i64>),
}

type Scenario = Vec<Step>;

fn field(text: Option<&str>) -> String {
    match text {
        None => "-".into(),
        Some(text) => text.bytes().fold(String::from("x"), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        }),
    }
}

fn show(value: &ExtendedSequenceNumber) -> String {
    format!(
        "{}/{}",
        field(Some(value.sequence_number())),
        value.sub_sequence_number()
    )
}

fn probe_input(scenario: &Scenario, out: &mut String) {
    for step in scenario {
        match step {
            Step::Initial(s, n) => writeln!(out, "I {} {n}", field(Some(s))),
            Step::Delivered(s, n) => writeln!(out, "D {} {n}", field(Some(s))),
            Step::ShardEnd => writeln!(out, "E"),
            Step::Checkpoint(s, n) => writeln!(
                out,
                "C {} {}",
                field(s.as_deref()),
                n.map_or("-".into(), |n| n.to_string())
            ),
        }
        .unwrap();
    }
}

/// What `LeaseCheckpointer` answers, in the probe's words.
fn judge(scenario: &Scenario) -> Vec<String> {
    let mut lease = None;
    let mut answers = Vec::new();
    for step in scenario {
        match step {
            Step::Initial(s, n) => {
                lease = Some(LeaseCheckpointer::new(ExtendedSequenceNumber::new(
                    s.clone(),
                    *n,
                )))
            }
            Step::Delivered(s, n) => lease
                .as_mut()
                .unwrap()
                .records_delivered(ExtendedSequenceNumber::new(s.clone(), *n)),
            Step::ShardEnd => lease.as_mut().unwrap().shard_ended(),
            Step::Checkpoint(s, n) => {
                let lease = lease.as_mut().unwrap();
                let outcome = match lease.checkpoint(s.as_deref(), *n) {
                    Ok(CheckpointOutcome::Stored(value)) => format!("stored {}", show(&value)),
                    Ok(CheckpointOutcome::Unchanged) => "unchanged".into(),
                    Err(name) => format!("error {name}"),
                };
                answers.push(format!("{outcome} last {}", show(lease.last())));
            }
        }
    }
    answers
}

/// SplitMix64: a seeded generator, so a failure is reproducible with the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// A decimal number of 1 to 60 digits (often 56, the length of real Kinesis sequence numbers).
fn number(rng: &mut Rng) -> String {
    let len = if rng.chance(50) {
        rng.pick(&[1, 1, 2, 3, 18, 19, 20, 39, 56, 56, 56, 60])
    } else {
        1 + rng.below(60)
    };
    let mut text = String::new();
    text.push(char::from(b'1' + rng.below(9) as u8));
    for _ in 1..len {
        text.push(char::from(b'0' + rng.below(10) as u8));
    }
    if len == 1 && rng.chance(20) {
        text = "0".into();
    }
    text
}

/// `digits + delta` for a plain decimal number (`None` below zero).
fn add(digits: &str, delta: i64) -> Option<String> {
    let mut value: Vec<i64> = digits.bytes().rev().map(|b| i64::from(b - b'0')).collect();
    value[0] += delta;
    let mut carry = 0;
    for digit in value.iter_mut() {
        *digit += carry;
        carry = digit.div_euclid(10);
        *digit = digit.rem_euclid(10);
    }
    if carry < 0 {
        return None;
    }
    while carry > 0 {
        value.push(carry % 10);
        carry /= 10;
    }
    while value.len() > 1 && value.last() == Some(&0) {
        value.pop();
    }
    Some(
        value
            .iter()
            .rev()
            .map(|d| char::from(b'0' + *d as u8))
            .collect(),
    )
}

fn is_plain_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Sub-sequence numbers: mostly small, sometimes at the limits of a Java `long`.
fn sub_near(rng: &mut Rng, around: i64) -> Option<i64> {
    match rng.below(10) {
        0 => None,
        1..=4 => Some(around),
        5 => Some(around.saturating_add(1)),
        6 => Some(around.saturating_sub(1)),
        7 => Some(rng.pick(&[-1, i64::MIN, i64::MAX, 0])),
        _ => Some(rng.below(4) as i64),
    }
}

/// The same number written with the digits of another script (Java's `Character.isDigit`
/// accepts every Unicode decimal digit of the Basic Multilingual Plane), or with one of them.
fn other_digits(rng: &mut Rng, digits: &str) -> String {
    // Arabic-Indic, Devanagari, Thai, fullwidth, Mongolian, and two outside the BMP
    // (MATHEMATICAL BOLD DIGIT ZERO, OSMANYA DIGIT ZERO), which Java sees as surrogates.
    let zero = rng.pick(&[0x660u32, 0x966, 0xE50, 0xFF10, 0x1810, 0x1D7CE, 0x104A0]);
    let only_one = rng.chance(50).then(|| rng.below(digits.len()));
    digits
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            if only_one.is_none_or(|at| at == i) {
                char::from_u32(zero + u32::from(b - b'0')).unwrap()
            } else {
                char::from(b)
            }
        })
        .collect()
}

/// A checkpoint request near `reference` (a value of the scenario), or a malformed one.
fn request(rng: &mut Rng, reference: &(String, i64)) -> Step {
    let (text, sub) = reference;
    if rng.chance(15) {
        return Step::Checkpoint(None, rng.pick(&[None, Some(0), Some(-5), Some(7)]));
    }
    let sequence = match rng.below(20) {
        0..=5 => text.clone(),
        6..=10 if is_plain_number(text) => {
            let delta = rng.pick(&[1, -1, 1, -1, 2, -2, 10, -10, 1000, -1000]);
            add(text, delta).unwrap_or_else(|| text.clone())
        }
        11 if is_plain_number(text) => format!("{}{text}", "0".repeat(1 + rng.below(3))),
        12 if is_plain_number(text) => other_digits(rng, text),
        13 => rng
            .pick(&["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "SHARD_END"])
            .to_string(),
        14 => rng
            .pick(&[
                "",
                "abc",
                "trim_horizon",
                "SHARD_END ",
                "NaN",
                "1e5",
                "0x1F",
                "١٢a",
            ])
            .to_string(),
        15 if is_plain_number(text) => rng.pick(&[
            format!("-{text}"),
            format!("+{text}"),
            format!("{text}.5"),
            format!(" {text}"),
            format!("{text} "),
            format!("{text}\u{0}"),
        ]),
        _ => number(rng),
    };
    Step::Checkpoint(Some(sequence), sub_near(rng, *sub))
}

/// A lease: where it starts, batches delivered with checkpoint requests after each, maybe the
/// end of the shard with more requests.
fn scenario(rng: &mut Rng) -> Scenario {
    let base = number(rng);
    let initial_sub = if rng.chance(80) {
        0
    } else {
        rng.below(3) as i64
    };
    let initial = match rng.below(16) {
        0..=2 => "TRIM_HORIZON".to_string(),
        3..=5 => "LATEST".to_string(),
        6..=8 => "AT_TIMESTAMP".to_string(),
        9 => "SHARD_END".to_string(), // a finished shard (the test daemon can be given one)
        10..=12 => add(&base, -(1 + rng.below(100) as i64)).unwrap_or_else(|| base.clone()),
        _ => base.clone(),
    };
    let mut steps = vec![Step::Initial(initial.clone(), initial_sub)];
    let mut values = vec![(initial, initial_sub), (base.clone(), 0)];
    let mut largest = base;
    for _ in 0..1 + rng.below(4) {
        let delivered_sub = if rng.chance(70) {
            0
        } else {
            rng.below(5) as i64
        };
        largest = match rng.below(8) {
            0 => largest,
            1 => add(&largest, -1).unwrap_or(largest),
            2 => number(rng),
            3 => format!("{largest}{}", rng.below(1000)),
            _ => add(&largest, 1 + rng.below(50) as i64).unwrap(),
        };
        steps.push(Step::Delivered(largest.clone(), delivered_sub));
        values.push((largest.clone(), delivered_sub));
        for _ in 0..1 + rng.below(4) {
            let reference = rng.pick(&values);
            let step = request(rng, &reference);
            if let Step::Checkpoint(Some(text), sub) = &step {
                values.push((text.clone(), sub.unwrap_or(0)));
            }
            steps.push(step);
        }
    }
    if rng.chance(50) {
        steps.push(Step::ShardEnd);
        values.push(("SHARD_END".into(), 0));
        for _ in 0..1 + rng.below(4) {
            let reference = if rng.chance(50) {
                values[values.len() - 2].clone()
            } else {
                rng.pick(&values)
            };
            steps.push(request(rng, &reference));
        }
    }
    steps
}

/// Every character of the Basic Multilingual Plane (and a few beyond) as a digit: "1" + c is
/// accepted below a delivered "19" only where Java's `Character.isDigit(c)`; "15" next is below
/// it only where c's digit value is above 5.
fn every_character() -> Vec<Scenario> {
    (0..=0xFFFFu32)
        .chain([0x1D7CE, 0x1D7D7, 0x104A0, 0x1E950, 0x10FFFF])
        .filter_map(char::from_u32)
        .map(|c| {
            vec![
                Step::Initial("TRIM_HORIZON".into(), 0),
                Step::Delivered("19".into(), 0),
                Step::Checkpoint(Some(format!("1{c}")), None),
                Step::Checkpoint(Some("15".into()), Some(0)),
            ]
        })
        .collect()
}

/// An answer with its hex-encoded values written as text again.
fn readable(answer: &str) -> String {
    answer
        .split(' ')
        .map(
            |word| match word.strip_prefix('x').and_then(|w| w.split_once('/')) {
                Some((hex, sub)) => {
                    let bytes: Vec<u8> = (0..hex.len() / 2)
                        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                        .collect();
                    format!("{:?}/{sub}", String::from_utf8_lossy(&bytes))
                }
                None => word.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// The scenario up to its first differing answer, and both answers.
fn describe(scenario: &Scenario, ours: &[String], theirs: &[&str]) -> String {
    let differs = (0..ours.len())
        .find(|&i| theirs.get(i).is_none_or(|t| *t != ours[i]))
        .unwrap_or(0);
    let mut out = String::new();
    let mut requests = 0;
    for step in scenario {
        let _ = writeln!(out, "  {step:?}");
        if let Step::Checkpoint(..) = step {
            if requests == differs {
                let _ = writeln!(
                    out,
                    "    LeaseCheckpointer: {}\n    KCL 3.1.3 jar:     {}",
                    readable(&ours[differs]),
                    readable(theirs.get(differs).copied().unwrap_or("(nothing)"))
                );
                break;
            }
            requests += 1;
        }
    }
    out
}

#[test]
#[ignore = "needs java, javac and the KCL 3.1.3 jars (KCL_TEST_JARS_DIR, .e2e-cache or PyPI): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn lease_checkpointer_answers_like_the_kcl_jar() {
    let jars = require_real_jars();
    require_program("javac", "-version");
    require_program("java", "-version");
    let probe = JavaProbe::compile("CheckpointProbe", PROBE, &jars);

    let seed = std::env::var("KCL_JUDGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4B43_4C31_2E33);
    let mut rng = Rng(seed);
    let generated: Vec<Scenario> = (0..1500).map(|_| scenario(&mut rng)).collect();
    let sweep = every_character();
    let scenarios: Vec<&Scenario> = generated.iter().chain(&sweep).collect();
    let mut input = String::new();
    for scenario in &scenarios {
        probe_input(scenario, &mut input);
    }

    let started = Instant::now();
    let kcl = probe.run(input);
    let java_time = started.elapsed();
    let mut kcl = kcl.lines();

    let started = Instant::now();
    let mut cases = 0;
    let mut divergent = Vec::new();
    for scenario in &scenarios {
        let ours = judge(scenario);
        let theirs: Vec<&str> = kcl.by_ref().take(ours.len()).collect();
        cases += ours.len();
        if ours != theirs {
            divergent.push(describe(scenario, &ours, &theirs));
        }
    }
    assert_eq!(kcl.next(), None, "the probe answered more requests");
    eprintln!(
        "{cases} checkpoint requests in {} scenarios (seed {seed}, {} of them generated, {} in the character sweep): the jar took {:.2?} (JVM start included), LeaseCheckpointer {:.2?}",
        scenarios.len(),
        generated.len(),
        sweep.len(),
        java_time,
        started.elapsed()
    );
    assert!(cases > 5000, "{cases} cases");
    assert!(
        divergent.is_empty(),
        "{} of {} scenarios diverge from the KCL 3.1.3 jar (seed {seed}); the first ones:\n{}",
        divergent.len(),
        scenarios.len(),
        divergent[..divergent.len().min(6)].join("\n")
    );
}
