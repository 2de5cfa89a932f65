//! Attribute macros of the `kcl` SDK, re-exported by the `kcl` crate: use them as
//! `#[kcl::processor]`, `#[kcl::on_records]`, `#[kcl::main]`, ...
//!
//! They are thin: each expands to an implementation of `kcl::RecordProcessor` or a `main` of a
//! few lines calling `kcl` functions, and each one's documentation shows that code (compiled, as
//! a doctest). Mistakes are reported on your tokens with what to write instead, several at once
//! where they are independent, and your item is still emitted so one mistake does not cascade.
#![warn(unreachable_pub, missing_docs)]

use proc_macro::TokenStream;
use syn::{Item, ItemFn};

mod ctxt;
mod expand;
mod fallback;
mod hooks;
mod paths;
mod signature;

use hooks::Hook;

/// `#[kcl::{name}]` takes no arguments: the error, if it was given some.
fn no_arguments(args: TokenStream, name: &str) -> Option<proc_macro2::TokenStream> {
    let args = proc_macro2::TokenStream::from(args);
    (!args.is_empty()).then(|| {
        syn::Error::new_spanned(args, format!("#[kcl::{name}] takes no arguments"))
            .to_compile_error()
    })
}

#[doc = include_str!("../docs/processor.md")]
#[doc = include_str!("../docs/arguments.md")]
#[proc_macro_attribute]
pub fn processor(args: TokenStream, input: TokenStream) -> TokenStream {
    let error = no_arguments(args, "processor");
    let expanded = match fallback::parse::<Item>(input.into()) {
        Ok(Item::Impl(item)) => expand::impl_block::expand(item),
        Ok(Item::Fn(item)) => expand::free_fn::expand(item, "processor"),
        Ok(other) => {
            let message = "#[kcl::processor] goes on an inherent impl block (`impl MyProcessor { ... }`) or on a handler function";
            let error = syn::Error::new_spanned(&other, message);
            fallback::unparsed(quote::quote!(#other), &error)
        }
        Err(echoed) => echoed,
    };
    quote::quote!(#expanded #error).into()
}

#[doc = include_str!("../docs/on_records.md")]
#[doc = include_str!("../docs/arguments.md")]
#[proc_macro_attribute]
pub fn on_records(args: TokenStream, input: TokenStream) -> TokenStream {
    let error = no_arguments(args, "on_records");
    let expanded = match fallback::parse::<ItemFn>(input.into()) {
        Ok(item) => expand::free_fn::expand(item, "on_records"),
        Err(echoed) => echoed,
    };
    quote::quote!(#expanded #error).into()
}

/// A hook attribute found outside a `#[kcl::processor]` impl block (which removes them).
fn hook_outside_processor(input: TokenStream, hook: Hook) -> TokenStream {
    let item = proc_macro2::TokenStream::from(input);
    let message = format!(
        "#[kcl::{}] marks a method of a #[kcl::processor] impl block; put #[kcl::processor] on the impl block around it",
        hook.name()
    );
    fallback::unparsed(item.clone(), &syn::Error::new_spanned(&item, message)).into()
}

/// Marks the method called on `initialize` (shard id and starting position, no checkpointer),
/// inside a `#[kcl::processor]` impl block. It takes `&kcl::Initialize` or nothing.
#[proc_macro_attribute]
pub fn on_initialize(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, Hook::Initialize)
}

/// Marks the method called on `leaseLost` (no checkpointer), inside a `#[kcl::processor]` impl
/// block. It takes nothing.
#[proc_macro_attribute]
pub fn on_lease_lost(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, Hook::LeaseLost)
}

/// Marks the method called on `shardEnded`, inside a `#[kcl::processor]` impl block. Without a
/// `&mut kcl::Checkpointer<'_>` argument, the end of the shard is checkpointed after it returns.
#[proc_macro_attribute]
pub fn on_shard_ended(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, Hook::ShardEnded)
}

/// Marks the method called on `shutdownRequested`, inside a `#[kcl::processor]` impl block.
/// Without a `&mut kcl::Checkpointer<'_>` argument, what was handled is checkpointed after it.
#[proc_macro_attribute]
pub fn on_shutdown_requested(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, Hook::ShutdownRequested)
}

/// Marks the method that receives records that failed on every attempt when the failure policy
/// is `skip` (`#[kcl::main(on_failure = skip)]`), inside a `#[kcl::processor]` impl block — a
/// dead-letter sink. It takes `&kcl::Failure<'_>`; returning `Ok` skips the records, an error
/// stops the shard.
#[proc_macro_attribute]
pub fn on_failure(_args: TokenStream, input: TokenStream) -> TokenStream {
    hook_outside_processor(input, Hook::Failure)
}

#[doc = include_str!("../docs/main.md")]
#[proc_macro_attribute]
pub fn main(args: TokenStream, input: TokenStream) -> TokenStream {
    match fallback::parse::<ItemFn>(input.into()) {
        Ok(item) => expand::main::expand(args.into(), item),
        Err(echoed) => echoed,
    }
    .into()
}
