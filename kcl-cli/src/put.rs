//! `kcl put`: the sample word putter of the official clients, for Kinesis (AWS or a local
//! emulator). Each word (or line) is one record whose partition key is the word itself; each
//! round goes out as batched PutRecords calls through `kcl_producer::Producer`, and every word
//! is answered: its shard and sequence number on stdout, in input order, or why it failed.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kcl_producer::{FailReason, Failed, Producer, Record, SendError};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::kinesis::{self, CredentialArgs, StreamArgs, count};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "\
Examples:
  kcl put --stream words --endpoint http://127.0.0.1:4567 --word hello --word world --count 1
  kcl put --stream words --file words.txt --period 2
  seq 1 5000 | kcl put --stream numbers --file - --partition-key numbers

Output: one line per record put, in input order: shard id, sequence number, word (tab-separated).";

/// `kcl put`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["word", "file"]))]
pub(crate) struct PutArgs {
    #[command(flatten)]
    pub target: StreamArgs,

    /// A word to put (repeatable); each is one record, its own partition key.
    #[arg(long, value_name = "WORD")]
    pub word: Vec<String>,

    /// Put each line of this file (`-` for stdin) as one record.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Partition key of every record [default: the record's text].
    #[arg(long, value_name = "KEY")]
    pub partition_key: Option<String>,

    /// Put everything again every SECONDS, until interrupted (or --count rounds).
    #[arg(long, value_name = "SECONDS")]
    pub period: Option<f64>,

    /// Number of rounds [default: 1, or unlimited with --period].
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// When a put fails (after its retries), report it and go on with the next word and round
    /// instead of stopping; exit 1 at the end if any failed. Meant for --period loops.
    #[arg(long)]
    pub keep_going: bool,

    /// Attempts per record, the first included: throttled or failed entries, server errors,
    /// timeouts and connection errors are retried with exponential backoff (at most 10 s
    /// between attempts).
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    #[command(flatten)]
    pub access: CredentialArgs,
}

/// The words to put, from `--word` or the lines of `--file` (empty lines skipped).
fn words(args: &PutArgs) -> Result<Vec<String>> {
    let words = match &args.file {
        None => args.word.clone(),
        Some(path) => {
            let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let file = std::fs::File::open(path).map_err(|e| Error::file("open", path, e))?;
                Box::new(std::io::BufReader::new(file))
            };
            let mut lines = Vec::new();
            for line in reader.lines() {
                let line = line.map_err(|e| Error::file("read", path, e))?;
                let line = line.trim_end_matches('\r');
                if !line.is_empty() {
                    lines.push(line.to_string());
                }
            }
            lines
        }
    };
    if words.is_empty() {
        return Err(Error::usage(
            "nothing to put: no words (or only empty lines)",
        ));
    }
    if let Some(word) = words
        .iter()
        .find(|w| args.partition_key.is_none() && w.chars().count() > 256)
    {
        return Err(Error::usage_hint(
            format!(
                "{:?}… is longer than 256 characters, the limit of a partition key",
                word.chars().take(20).collect::<String>()
            ),
            "pass --partition-key KEY",
        ));
    }
    Ok(words)
}

/// Runs `kcl put`.
pub(crate) fn command(args: PutArgs) -> Result<()> {
    let words = words(&args)?;
    let period = match args.period {
        None => None,
        Some(seconds) => Some(kinesis::seconds("--period", seconds)?),
    };
    let rounds = args
        .count
        .unwrap_or(if period.is_some() { u64::MAX } else { 1 });
    if rounds == 0 {
        return Err(Error::usage("--count must be at least 1"));
    }
    args.target.check_endpoint()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    runtime.block_on(put_all(&args, &words, period, rounds))
}

/// Where word `index` of `words` stands in round `round` of `rounds`, when there is more than
/// one: " (word 2 of 4, round 1)".
fn position(index: usize, words: usize, round: u64, rounds: u64) -> String {
    let mut parts = Vec::new();
    if words > 1 {
        parts.push(format!("word {} of {words}", index + 1));
    }
    if rounds > 1 {
        parts.push(format!("round {round}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// A word as messages quote it: the first 40 characters of a longer one.
fn shown(word: &str) -> String {
    const LONGEST: usize = 40;
    if word.chars().count() <= LONGEST {
        format!("{word:?}")
    } else {
        format!("{:?}…", word.chars().take(LONGEST).collect::<String>())
    }
}

/// What was not put when the words at `failed` (indices into `words`, in order) of round
/// `round` failed and the command stops there.
fn not_put(words: &[String], failed: &[usize], round: u64, rounds: u64) -> String {
    const LISTED: usize = 10;
    let mut listed: Vec<String> = failed
        .iter()
        .take(LISTED)
        .map(|&index| shown(&words[index]))
        .collect();
    if failed.len() > LISTED {
        listed.push(format!("... ({} more)", failed.len() - LISTED));
    }
    let mut text = match (words.len(), failed.len()) {
        (1, _) => format!("the word of round {round} was not put: {}", listed[0]),
        (all, 1) => format!(
            "1 of the {all} words of round {round} was not put: {}",
            listed[0]
        ),
        (all, left) => format!(
            "{left} of the {all} words of round {round} were not put: {}",
            listed.join(", ")
        ),
    };
    if rounds != u64::MAX && rounds > round {
        let more = rounds - round;
        let (rounds, were) = if more == 1 {
            ("round", "was")
        } else {
            ("rounds", "were")
        };
        text.push_str(&format!("; {more} more {rounds} {were} not started"));
    }
    text
}

/// Why a record was not put, as the end of "put of WORD to stream S failed ...".
fn why(failed: &Failed, max_attempts: u32) -> String {
    let mut text = match &failed.reason {
        FailReason::Attempts { last_error, .. } => format!(
            "(up to {}): {last_error}",
            count(u64::from(max_attempts), "attempt")
        ),
        FailReason::Refused(error) => format!("(refused, not retried): {error}"),
        other => format!(
            "after {}: {other}",
            count(u64::from(failed.attempts), "attempt")
        ),
    };
    if failed.maybe_stored {
        text.push_str(
            " (an attempt had an unknown outcome, so it may be in the stream all the same)",
        );
    }
    text
}

/// What became of one round.
#[derive(Default)]
struct Round {
    /// The words that failed (indices), and what to say about each.
    failed: Vec<(usize, String)>,
    /// Stdout is gone (e.g. `kcl put ... | head` exited).
    stdout_gone: bool,
}

/// Sends every word of round `round` to `producer` and prints each outcome in input order as
/// it comes: the word's line on stdout, or (with --keep-going) its failure on stderr.
async fn put_round(
    producer: &Producer,
    args: &PutArgs,
    words: &[String],
    round: u64,
    rounds: u64,
) -> Round {
    let (tickets, mut answers) = mpsc::unbounded_channel();
    let feed = async move {
        for word in words {
            let key = args.partition_key.as_deref().unwrap_or(word);
            let sent = producer
                .send(Record::new(key, word.clone().into_bytes()))
                .await;
            if tickets.send(sent).is_err() {
                break; // the printer stopped: stdout is gone
            }
        }
        drop(tickets);
        // The round's last call leaves now rather than after the linger.
        producer.flush().await;
    };
    let print = async {
        let mut outcome = Round::default();
        let mut index = 0;
        while let Some(sent) = answers.recv().await {
            let word = &words[index];
            let answer = match sent {
                Ok(ticket) => ticket
                    .await
                    .map_err(|failed| why(&failed, args.max_attempts)),
                Err(SendError::Invalid(_, invalid)) => Err(format!("(not sent): {invalid}")),
                Err(SendError::Closed(_)) => Err("(not sent): the producer is closed".into()),
                Err(SendError::Spool(_, error)) => Err(format!("(not sent): {error}")),
            };
            match answer {
                Ok(delivery) => {
                    if delivery.maybe_duplicated {
                        eprintln!(
                            "kcl put: {}{} may be in the stream twice (an earlier attempt had an unknown outcome)",
                            shown(word),
                            position(index, words.len(), round, rounds)
                        );
                    }
                    let line = format!(
                        "{}\t{}\t{word}\n",
                        delivery.shard_id, delivery.sequence_number
                    );
                    if !crate::fsutil::print_stdout(&line) {
                        outcome.stdout_gone = true;
                        break;
                    }
                }
                Err(why) => {
                    let what = format!(
                        "put of {}{} to stream {} failed {why}",
                        shown(word),
                        position(index, words.len(), round, rounds),
                        args.target.stream,
                    );
                    if args.keep_going {
                        eprintln!("kcl put: {what}; going on (--keep-going)");
                    }
                    outcome.failed.push((index, what));
                }
            }
            index += 1;
        }
        outcome
    };
    let ((), outcome) = tokio::join!(feed, print);
    outcome
}

async fn put_all(
    args: &PutArgs,
    words: &[String],
    period: Option<Duration>,
    rounds: u64,
) -> Result<()> {
    let client =
        kinesis::sdk_client(&args.target, &args.access, "kcl-put", args.max_attempts).await?;
    let mut hint = args.target.hint();
    if rounds > 1 && !args.keep_going {
        hint.push_str("; --keep-going reports a failed put and goes on");
    }
    let settings = |builder: kcl_producer::Builder<_>| {
        builder
            .max_attempts(args.max_attempts)
            .backoff(Duration::from_millis(100), Duration::from_secs(10))
            // A round is flushed as soon as it is all taken: calls leave full, or at its end.
            .linger(Duration::from_millis(500))
    };
    let producer = match kinesis::producer(client, &args.target.stream, "kcl put", settings).await {
        Ok(producer) => producer,
        Err(message) => {
            let all: Vec<usize> = (0..words.len()).collect();
            return Err(Error::failed_hint(
                format!("{message}\n  {}", not_put(words, &all, 1, rounds)),
                hint,
            ));
        }
    };
    let (mut tried, mut failed) = (0u64, 0u64);
    let mut round = 0;
    let result = loop {
        round += 1;
        let outcome = put_round(&producer, args, words, round, rounds).await;
        tried += words.len() as u64;
        if outcome.stdout_gone {
            break Ok(()); // whoever read the output is gone
        }
        if !outcome.failed.is_empty() && !args.keep_going {
            const SHOWN: usize = 10;
            let mut lines: Vec<&str> = outcome
                .failed
                .iter()
                .take(SHOWN)
                .map(|(_, what)| what.as_str())
                .collect();
            let more = outcome.failed.len().saturating_sub(SHOWN);
            let more = format!("... and {more} more");
            if outcome.failed.len() > SHOWN {
                lines.push(&more);
            }
            let indices: Vec<usize> = outcome.failed.iter().map(|(index, _)| *index).collect();
            break Err(Error::failed_hint(
                format!(
                    "{}\n  {}",
                    lines.join("\n  "),
                    not_put(words, &indices, round, rounds)
                ),
                hint,
            ));
        }
        failed += outcome.failed.len() as u64;
        if round >= rounds {
            break if failed > 0 {
                Err(Error::failed_hint(
                    format!("{failed} of {tried} puts failed (each is reported above)"),
                    hint,
                ))
            } else {
                Ok(())
            };
        }
        if let Some(period) = period {
            tokio::time::sleep(period).await;
        }
    };
    // Every record taken has been answered (or stdout is gone and nobody reads the answers).
    let _ = producer.shutdown(Duration::from_secs(1)).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions() {
        assert_eq!(position(0, 1, 1, 1), "");
        assert_eq!(position(1, 4, 1, 3), " (word 2 of 4, round 1)");
        assert_eq!(position(0, 1, 7, u64::MAX), " (round 7)");
    }

    #[test]
    fn what_was_not_put() {
        let words: Vec<String> = (1..=13).map(|n| format!("w{n}")).collect();
        assert_eq!(
            not_put(&words[..1], &[0], 2, 2),
            "the word of round 2 was not put: \"w1\""
        );
        assert_eq!(
            not_put(&words[..3], &[2], 1, 1),
            "1 of the 3 words of round 1 was not put: \"w3\""
        );
        assert_eq!(
            not_put(&words[..3], &[0, 1, 2], 4, 5),
            "3 of the 3 words of round 4 were not put: \"w1\", \"w2\", \"w3\"; 1 more round was not started"
        );
        let all_but_first: Vec<usize> = (1..13).collect();
        let long = not_put(&words, &all_but_first, 1, u64::MAX);
        assert!(
            long.starts_with("12 of the 13 words of round 1 were not put: \"w2\""),
            "{long}"
        );
        assert!(long.ends_with("\"w11\", ... (2 more)"), "{long}");
        assert_eq!(
            not_put(&words[..4], &[1, 3], 1, 1),
            "2 of the 4 words of round 1 were not put: \"w2\", \"w4\""
        );
    }

    #[test]
    fn long_words_are_cut_in_messages() {
        assert_eq!(shown("wörld"), "\"wörld\"");
        let long = "é".repeat(41);
        assert_eq!(shown(&long), format!("{:?}…", "é".repeat(40)));
    }

    #[test]
    fn why_a_put_failed() {
        let failed = |reason, attempts, maybe_stored| Failed {
            record: Record::new("k", "w"),
            reason,
            attempts,
            maybe_stored,
        };
        let attempts = FailReason::Attempts {
            attempts: 2,
            last_error: "InternalFailure: Internal Service Failure".into(),
        };
        assert_eq!(
            why(&failed(attempts, 2, false), 2),
            "(up to 2 attempts): InternalFailure: Internal Service Failure"
        );
        let refused = FailReason::Refused(kcl_producer::api::CallError::Refused {
            code: "ResourceNotFoundException".into(),
            message: "Stream s not found.".into(),
        });
        assert_eq!(
            why(&failed(refused, 1, false), 6),
            "(refused, not retried): ResourceNotFoundException: Stream s not found."
        );
        let unsure = why(&failed(FailReason::InDoubt, 3, true), 6);
        assert!(
            unsure.starts_with("after 3 attempts: a call carrying it was unanswered"),
            "{unsure}"
        );
        assert!(
            unsure.ends_with("may be in the stream all the same)"),
            "{unsure}"
        );
    }
}
