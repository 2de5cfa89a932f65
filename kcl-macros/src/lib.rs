//! Attribute macros of the `kcl` SDK, re-exported by the `kcl` crate: use them as
//! `#[kcl::processor]`, `#[kcl::on_records]`, `#[kcl::main]`, ...
//!
//! They are thin: each expands to an implementation of `kcl::RecordProcessor` or a `main` of a
//! few lines calling public `kcl` items, and each one's documentation shows that code. Mistakes
//! are reported on your tokens with what to write instead, and your item is still emitted so one
//! mistake does not cascade.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Item, ItemFn};

mod args;
mod free_fn;
mod hooks;
mod main_attr;
mod processor;

fn no_arguments(args: &TokenStream, name: &str) -> Option<proc_macro2::TokenStream> {
    if args.is_empty() {
        return None;
    }
    let args = proc_macro2::TokenStream::from(args.clone());
    Some(
        syn::Error::new_spanned(args, format!("#[kcl::{name}] takes no arguments"))
            .to_compile_error(),
    )
}

/// Makes a processor out of an inherent impl block (on a free function it does what
/// `#[kcl::on_records]` does).
///
/// In the impl block, one method is marked `#[kcl::on_records]`; `#[kcl::on_initialize]`,
/// `#[kcl::on_lease_lost]`, `#[kcl::on_shard_ended]` and `#[kcl::on_shutdown_requested]` are
/// optional. The methods stay ordinary methods.
///
/// ```ignore
/// #[derive(Default)]
/// struct Clicks { seen: u64 }
///
/// #[kcl::processor]
/// impl Clicks {
///     #[kcl::on_records]
///     fn handle(&mut self, clicks: Vec<kcl::Json<Click>>) -> kcl::Result<()> {
///         self.seen += clicks.len() as u64;
///         Ok(())
///     }
///
///     #[kcl::on_shutdown_requested]
///     fn bye(&mut self) {
///         tracing::info!(seen = self.seen, "shutting down");
///     }
/// }
/// ```
///
/// expands to the block as written plus, in substance:
///
/// ```ignore
/// impl kcl::RecordProcessor for Clicks {
///     fn process_records(&mut self, batch: &kcl::Batch, cp: &mut kcl::Checkpointer<'_>) -> kcl::Result<()> {
///         let clicks = <Vec<kcl::Json<Click>> as kcl::FromBatch>::from_batch(batch)?;
///         let output = self.handle(clicks);
///         kcl::handler::finish_batch(cp, output)
///     }
///     fn shutdown_requested(&mut self, cp: &mut kcl::Checkpointer<'_>) -> kcl::Result<()> {
///         kcl::HandlerOutput::into_result(self.bye())?;
///         cp.checkpoint_handled()?; // the hook did not take the checkpointer
///         Ok(())
///     }
/// }
/// ```
///
/// Handler arguments are chosen by type: `Vec<T>` (T: `kcl::Json<U>`, `String`, `Vec<u8>`,
/// `kcl::Record`, `Result<T, kcl::PayloadError>`, `(kcl::Record, T)`), `&kcl::Batch`,
/// `&[kcl::Record]`, `kcl::ShardId`, `kcl::MillisBehindLatest`, `&mut kcl::Checkpointer<'_>`.
/// A single payload argument that is not a `Vec` (`kcl::Json<U>`, `String`, `Vec<u8>`, ...) makes
/// the handler per-record: it is called once per record, through `kcl::handler::for_each_record`.
/// Handlers return `()`, `kcl::Checkpoint`, or `Result` of those.
#[proc_macro_attribute]
pub fn processor(args: TokenStream, input: TokenStream) -> TokenStream {
    let error = no_arguments(&args, "processor");
    let item = parse_macro_input!(input as Item);
    let expanded = match item {
        Item::Impl(item) => processor::expand(item),
        Item::Fn(item) => free_fn::expand(item, "processor"),
        other => {
            let error = syn::Error::new_spanned(
                &other,
                "#[kcl::processor] goes on an inherent impl block (`impl MyProcessor { ... }`) or on a handler function",
            )
            .to_compile_error();
            quote!(#other #error)
        }
    };
    quote!(#expanded #error).into()
}

/// Marks the batch handler. On a free function, the function stays as it is and a unit struct
/// named after it in UpperCamelCase (`handle` -> `Handle`, `count_words` -> `CountWords`) is
/// the processor that calls it:
///
/// ```ignore
/// #[kcl::on_records]
/// fn handle(order: kcl::Json<Order>) -> kcl::Result<()> { /* once per record */ Ok(()) }
///
/// #[kcl::main]
/// fn main() -> impl kcl::RecordProcessor { Handle }
/// ```
///
/// expands to the function as written plus, in substance:
///
/// ```ignore
/// #[derive(Clone, Copy, Debug, Default)]
/// struct Handle;
/// impl kcl::RecordProcessor for Handle {
///     fn process_records(&mut self, batch: &kcl::Batch, cp: &mut kcl::Checkpointer<'_>) -> kcl::Result<()> {
///         kcl::handler::for_each_record(batch, cp, |order: kcl::Json<Order>, _cp| {
///             kcl::HandlerOutput::into_result(handle(order))
///         })
///     }
/// }
/// ```
///
/// Inside a `#[kcl::processor]` impl block it only marks the method.
#[proc_macro_attribute]
pub fn on_records(args: TokenStream, input: TokenStream) -> TokenStream {
    let error = no_arguments(&args, "on_records");
    let item = parse_macro_input!(input as ItemFn);
    let expanded = free_fn::expand(item, "on_records");
    quote!(#expanded #error).into()
}

fn hook_outside_processor(input: TokenStream, name: &str) -> TokenStream {
    let item = proc_macro2::TokenStream::from(input);
    let error = syn::Error::new_spanned(
        &item,
        format!("#[kcl::{name}] marks a method of a #[kcl::processor] impl block; put #[kcl::processor] on the impl block around it"),
    )
    .to_compile_error();
    quote!(#item #error).into()
}

/// Marks the method called on `initialize` (shard id and starting position, no checkpointer),
/// inside a `#[kcl::processor]` impl block. It takes `&kcl::Initialize` or nothing.
#[proc_macro_attribute]
pub fn on_initialize(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, "on_initialize")
}

/// Marks the method called on `leaseLost` (no checkpointer), inside a `#[kcl::processor]` impl
/// block.
#[proc_macro_attribute]
pub fn on_lease_lost(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, "on_lease_lost")
}

/// Marks the method called on `shardEnded`, inside a `#[kcl::processor]` impl block. Without a
/// `&mut kcl::Checkpointer<'_>` argument, the end of the shard is checkpointed after it returns.
#[proc_macro_attribute]
pub fn on_shard_ended(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, "on_shard_ended")
}

/// Marks the method called on `shutdownRequested`, inside a `#[kcl::processor]` impl block.
/// Without a `&mut kcl::Checkpointer<'_>` argument, what was handled is checkpointed after it.
#[proc_macro_attribute]
pub fn on_shutdown_requested(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, "on_shutdown_requested")
}

/// Marks the method that receives records that failed on every attempt when the failure policy
/// is `skip` (`#[kcl::main(on_failure = skip)]`), inside a `#[kcl::processor]` impl block — a
/// dead-letter sink. It takes `&kcl::Failure<'_>`; returning `Ok` skips the records, an error
/// stops the shard.
#[proc_macro_attribute]
pub fn on_failure(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, "on_failure")
}

/// Generates the binary's `main` from a function returning the processor.
///
/// ```ignore
/// #[kcl::main(checkpoint = every(records = 1000, seconds = 30), on_failure = skip, attempts = 5)]
/// fn main() -> Clicks { Clicks::default() }
/// ```
///
/// expands to:
///
/// ```ignore
/// fn main() -> std::process::ExitCode {
///     fn __kcl_processor() -> Clicks { Clicks::default() }
///     kcl::run_main_with(|| {
///         kcl::Runtime::new(__kcl_processor())
///             .checkpoint_strategy(kcl::CheckpointStrategy::Every {
///                 records: Some(1000),
///                 interval: Some(std::time::Duration::from_secs(30)),
///             })
///             .failure_policy(kcl::FailurePolicy::skip().attempts(5))
///     })
/// }
/// ```
///
/// `run_main_with` prepares the process first (`kcl::prepare`: the daemon's stdin and stdout
/// moved to private descriptors, SIGINT/SIGTERM handled, logging on stderr), so the function's
/// body may print, read stdin or start programs without touching the daemon's pipes.
///
/// Options:
/// - `checkpoint = batch` (the default: after every batch), `checkpoint = manual`,
///   `checkpoint = every(records = N, seconds = S)` (either or both);
/// - `on_failure = stop` (the default), `skip` (failed records go to the `#[kcl::on_failure]`
///   hook) or `exit` (see `kcl::FailureAction`);
/// - `attempts = N`: attempts per failing record, the first included (default 3).
///
/// `.failure_policy(..)` is only generated when `on_failure` or `attempts` is given.
#[proc_macro_attribute]
pub fn main(args: TokenStream, input: TokenStream) -> TokenStream {
    let options = main_attr::Options::parse(args.into());
    let item = parse_macro_input!(input as ItemFn);
    main_attr::expand(options, item).into()
}
