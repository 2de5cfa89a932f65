//! The hook attributes and the code that calls a hook method from the trait impl.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Signature, Type};

use crate::args;

/// The hook attributes, by name.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Hook {
    Records,
    Initialize,
    LeaseLost,
    ShardEnded,
    ShutdownRequested,
    Failure,
}

pub const HOOK_NAMES: &str =
    "`on_records`, `on_initialize`, `on_lease_lost`, `on_shard_ended`, `on_shutdown_requested`";

impl Hook {
    pub fn from_name(name: &str) -> Option<Hook> {
        Some(match name {
            "on_records" => Hook::Records,
            "on_initialize" => Hook::Initialize,
            "on_lease_lost" => Hook::LeaseLost,
            "on_shard_ended" => Hook::ShardEnded,
            "on_shutdown_requested" => Hook::ShutdownRequested,
            "on_failure" => Hook::Failure,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Hook::Records => "on_records",
            Hook::Initialize => "on_initialize",
            Hook::LeaseLost => "on_lease_lost",
            Hook::ShardEnded => "on_shard_ended",
            Hook::ShutdownRequested => "on_shutdown_requested",
            Hook::Failure => "on_failure",
        }
    }
}

/// What an attribute on a method means to `#[kcl::processor]`.
pub enum Marker {
    Hook(Hook),
    /// `#[kcl::on_…]` with a name that is no hook.
    Unknown,
    /// Not ours.
    Other,
}

/// Reads `#[kcl::on_records]`, `#[on_records]` (imported), or an unknown `#[kcl::on_…]`.
pub fn marker(attr: &Attribute) -> Marker {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let name = match segments.as_slice() {
        [krate, name] if krate == "kcl" => name,
        [name] => match Hook::from_name(name) {
            Some(hook) => return Marker::Hook(hook),
            None => return Marker::Other,
        },
        _ => return Marker::Other,
    };
    match Hook::from_name(name) {
        Some(hook) => Marker::Hook(hook),
        None if name.starts_with("on_") || name == "processor" => Marker::Unknown,
        None => Marker::Other,
    }
}

/// Checks the receiver of a hook method: `&mut self` or `&self`.
pub fn check_receiver(sig: &Signature, hook: Hook) -> syn::Result<()> {
    match sig.receiver() {
        None => Err(syn::Error::new_spanned(
            &sig.ident,
            format!("a #[kcl::{}] method takes `&mut self`", hook.name()),
        )),
        Some(receiver) => match receiver.kind {
            syn::ReceiverKind::Reference(..) => Ok(()),
            _ => Err(syn::Error::new_spanned(
                receiver,
                "take `&mut self` (or `&self`): the processor lives for the whole lease, a hook cannot consume it",
            )),
        },
    }
}

fn typed_args(sig: &Signature) -> Vec<&Type> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => Some(&*typed.ty),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

fn is_checkpointer(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_some()
        && matches!(&*r.elem, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Checkpointer")))
}

/// The trait method that calls the user's hook method `callee` (e.g. `self.flush`).
pub fn trait_method(hook: Hook, sig: &Signature, callee: TokenStream) -> syn::Result<TokenStream> {
    if hook == Hook::Records {
        let handler = args::analyze(sig, hook.name())?;
        let body = args::records_body(&handler, callee);
        return Ok(quote! {
            fn process_records(
                &mut self,
                __kcl_batch: &::kcl::Batch,
                __kcl_checkpointer: &mut ::kcl::Checkpointer<'_>,
            ) -> ::kcl::Result<()> {
                #body
            }
        });
    }
    if sig.asyncness.is_some() && !cfg!(feature = "tokio") {
        return Err(syn::Error::new_spanned(
            sig.asyncness,
            "async hooks need the `tokio` feature of kcl: `kcl = { version = \"0.1\", features = [\"tokio\"] }`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            "a hook cannot be generic",
        ));
    }
    let inputs = typed_args(sig);
    let wrong = |usage: &str| {
        Err(syn::Error::new_spanned(
            &sig.inputs,
            format!("#[kcl::{}] {usage}", hook.name()),
        ))
    };
    let output_span = match &sig.output {
        syn::ReturnType::Default => sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    let finish = |call: TokenStream| {
        let call = args::await_if_async(sig.asyncness.is_some(), call);
        let check = quote_spanned! {output_span=> ::kcl::HandlerOutput::into_result(__kcl_output)};
        quote! {
            let __kcl_output = #call;
            #check?;
        }
    };
    Ok(match hook {
        Hook::Records => unreachable!("handled above"),
        Hook::Initialize => {
            let call = match inputs.as_slice() {
                [] => finish(quote!(#callee())),
                [Type::Reference(r)] if r.mutability.is_none() => {
                    finish(quote!(#callee(__kcl_shard)))
                }
                _ => {
                    return wrong(
                        "takes `&kcl::Initialize` (shard id and starting position) or nothing",
                    )
                }
            };
            quote! {
                fn initialize(&mut self, __kcl_shard: &::kcl::Initialize) -> ::kcl::Result<()> {
                    #call
                    ::core::result::Result::Ok(())
                }
            }
        }
        Hook::Failure => {
            let call = match inputs.as_slice() {
                [Type::Reference(r)] if r.mutability.is_none() => finish(quote!(#callee(__kcl_failure))),
                _ => return wrong("takes `&kcl::Failure<'_>`: the records that failed on every attempt, the error, the attempts"),
            };
            quote! {
                fn on_failure(&mut self, __kcl_failure: &::kcl::Failure<'_>) -> ::kcl::Result<()> {
                    #call
                    ::core::result::Result::Ok(())
                }
            }
        }
        Hook::LeaseLost => {
            if !inputs.is_empty() {
                return wrong("takes no argument: the lease is gone, nothing can be checkpointed");
            }
            let call = finish(quote!(#callee()));
            quote! {
                fn lease_lost(&mut self) -> ::kcl::Result<()> {
                    #call
                    ::core::result::Result::Ok(())
                }
            }
        }
        Hook::ShardEnded | Hook::ShutdownRequested => {
            // `Checkpoint::Now` (or `request_checkpoint`) asks for a checkpoint of what was
            // handled once the hook returns, as in `on_records`.
            let finish = |call: TokenStream| {
                let call = args::await_if_async(sig.asyncness.is_some(), call);
                let check = quote_spanned! {output_span=>
                    ::kcl::handler::finish_batch(&mut *__kcl_checkpointer, __kcl_output)
                };
                quote! {
                    let __kcl_output = #call;
                    #check?;
                }
            };
            let (call, default_checkpoint) = match inputs.as_slice() {
                [] => (finish(quote!(#callee())), quote!(__kcl_checkpointer.checkpoint_handled()?;)),
                [ty] if is_checkpointer(ty) => (finish(quote!(#callee(&mut *__kcl_checkpointer))), quote!()),
                _ => return wrong("takes `&mut kcl::Checkpointer<'_>` or nothing (then what was handled is checkpointed after it)"),
            };
            let method = if hook == Hook::ShardEnded {
                quote!(shard_ended)
            } else {
                quote!(shutdown_requested)
            };
            quote! {
                fn #method(&mut self, __kcl_checkpointer: &mut ::kcl::Checkpointer<'_>) -> ::kcl::Result<()> {
                    #call
                    #default_checkpoint
                    ::core::result::Result::Ok(())
                }
            }
        }
    })
}
