//! What the daemon makes of a line the child wrote: the daemon's own rule, named in this one place
//! (review point G2), so a move of that rule changes one path.

use kcl_protocol::daemon::{CheckpointRequest, ChildLine, parse_child_line};
use serde_json::{Value, json};

/// The daemon's reading of one line of the child's stdout (without its `\n`).
pub fn daemon_reads(line: &str) -> ChildLine {
    parse_child_line(line.as_bytes())
}

/// The line as a JSON value if the daemon reads it as a `status` or a `checkpoint` request and
/// it is written in the child's own form (every key present, nothing else, numbers as numbers);
/// otherwise why not.
pub fn child_message(line: &str) -> Result<Value, String> {
    let value: Value =
        serde_json::from_str(line).map_err(|error| format!("not JSON ({error}): {line}"))?;
    let form = match daemon_reads(line) {
        ChildLine::Status {
            response_for: Some(response_for),
        } => json!({"action": "status", "responseFor": response_for}),
        ChildLine::Status { response_for: None } => {
            return Err(format!("a status without responseFor: {line}"));
        }
        ChildLine::Checkpoint(CheckpointRequest {
            sequence_number,
            sub_sequence_number,
            error: None,
        }) => {
            if sub_sequence_number.is_some_and(|n| n < 0) {
                return Err(format!("a negative subSequenceNumber: {line}"));
            }
            json!({
                "action": "checkpoint",
                "sequenceNumber": sequence_number,
                "subSequenceNumber": sub_sequence_number,
            })
        }
        ChildLine::Checkpoint(_) => {
            return Err(format!("a checkpoint request with an error: {line}"));
        }
        ChildLine::Skipped { reason } => {
            return Err(format!("the daemon skips this line ({reason}): {line}"));
        }
        ChildLine::OtherMessage { .. } | ChildLine::Blank => {
            return Err(format!(
                "child line is neither a status nor a checkpoint: {line}"
            ));
        }
    };
    if value != form {
        return Err(format!("not in the child's form {form}: {line}"));
    }
    Ok(value)
}

/// Whether `value` is a message the daemon reads as a `status` or `checkpoint`, in the child's
/// form (see [`child_message`]).
pub fn is_child_message(value: &Value) -> bool {
    child_message(&value.to_string()).is_ok()
}
