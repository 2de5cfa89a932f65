//! The plain-function style: a handler function taking one `kcl::Json<T>` is called once per
//! record; `#[kcl::main]` turns a function returning it into the binary.
//!
//! `#[kcl::on_records]` keeps `handle` as it is and adds `Handle`, the processor that calls it.
//! The runtime checkpoints after every batch (the default strategy), only up to the last record
//! the handler finished: if it fails on a record, the records before it stay handled and the
//! shard stops there, losing nothing.

use kcl::{Json, ShardId};
use serde::Deserialize;

/// One click, as producers put it on the stream.
#[derive(Debug, Deserialize)]
pub struct Click {
    /// Who clicked.
    pub user: String,
    /// What was clicked.
    pub url: String,
}

/// Called once per record. A record that is not a `Click` fails here (strict `Json<T>`): use
/// `Result<Json<Click>, kcl::PayloadError>` as the argument type to get the error as a value.
#[kcl::on_records]
pub fn handle(click: Json<Click>, shard: ShardId) -> kcl::Result<()> {
    let Json(click) = click;
    if click.url.is_empty() {
        return Err(kcl::Error::msg(format!(
            "click by {} has no url",
            click.user
        )));
    }
    tracing::info!(%shard, user = %click.user, url = %click.url, "click");
    Ok(())
}

#[kcl::main(checkpoint = every(records = 1000, seconds = 30))]
fn main() -> impl kcl::RecordProcessor {
    Handle
}
