//! The `RecordProcessor` method that calls a user's hook method, for the impl-block and the
//! free-function forms alike.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Signature, Type};

use crate::ctxt::Ctxt;
use crate::hooks::{Hook, Takes};
use crate::paths::{
    BATCH, BLOCK_ON, CHECKPOINTER, CLONE, FINISH_BATCH, FOR_EACH_RECORD, FROM_BATCH, FROM_RECORD,
    INTO_RESULT, OK, RESULT,
};
use crate::signature::{self, Arg, Handler};

/// The trait method that calls the user's hook method `callee` (`self.flush`, or a free
/// function's name). Mistakes in `sig` are reported to `ctxt`, all of them; the returned
/// tokens are only meaningful when none was.
pub(crate) fn trait_method(
    ctxt: &Ctxt,
    hook: Hook,
    sig: &Signature,
    callee: TokenStream,
) -> TokenStream {
    let spec = hook.spec();
    let method = format_ident!("{}", spec.trait_method);
    if let Takes::Batch = spec.takes {
        let handler = signature::analyze(ctxt, sig, spec.attribute);
        let body = records_body(&handler, callee);
        return quote! {
            fn #method(
                &mut self,
                __kcl_batch: &#BATCH,
                __kcl_checkpointer: &mut #CHECKPOINTER<'_>,
            ) -> #RESULT<()> {
                #body
            }
        };
    }
    signature::reject_async_without_tokio(ctxt, sig);
    signature::reject_generics(ctxt, sig, spec.attribute);
    let inputs = signature::typed_args(sig);
    let wrong = || {
        ctxt.error_spanned_by(
            &sig.inputs,
            format!("#[kcl::{}] {}", spec.attribute, spec.usage),
        )
    };
    let is_async = sig.asyncness.is_some();
    let output_span = signature::output_span(sig);
    // What the trait method takes, what the hook is given, and how its output is applied.
    match spec.takes {
        Takes::Batch => unreachable!("handled above"),
        Takes::Nothing | Takes::Shared { .. } => {
            let (param, arg) = match spec.takes {
                Takes::Shared { ty, lifetime, .. } => {
                    let lifetime = lifetime.then(|| quote!(<'_>));
                    (quote!(__kcl_arg: &#ty #lifetime), Some(quote!(__kcl_arg)))
                }
                _ => (quote!(), None),
            };
            let optional = matches!(spec.takes, Takes::Shared { optional: true, .. });
            let given = match inputs.as_slice() {
                [] if arg.is_none() || optional => None,
                [Type::Reference(r)] if arg.is_some() && r.mutability.is_none() => arg,
                _ => {
                    wrong();
                    None
                }
            };
            let call = await_if_async(is_async, quote!(#callee(#given)));
            let into_result = INTO_RESULT.at(output_span);
            let check = quote_spanned! {output_span=> #into_result(__kcl_output)};
            quote! {
                fn #method(&mut self, #param) -> #RESULT<()> {
                    let __kcl_output = #call;
                    #check?;
                    #OK(())
                }
            }
        }
        Takes::CheckpointerOrNothing => {
            // `Checkpoint::Now` (or `request_checkpoint`) asks for a checkpoint of what was
            // handled once the hook returns, as in `on_records`.
            let (given, default_checkpoint) = match inputs.as_slice() {
                [] => (None, quote!(__kcl_checkpointer.checkpoint_handled()?;)),
                [ty] if signature::is_checkpointer(ty) => {
                    (Some(quote!(&mut *__kcl_checkpointer)), quote!())
                }
                _ => {
                    wrong();
                    (None, quote!())
                }
            };
            let call = await_if_async(is_async, quote!(#callee(#given)));
            let finish_batch = FINISH_BATCH.at(output_span);
            let check = quote_spanned! {output_span=>
                #finish_batch(&mut *__kcl_checkpointer, __kcl_output)
            };
            quote! {
                fn #method(&mut self, __kcl_checkpointer: &mut #CHECKPOINTER<'_>) -> #RESULT<()> {
                    let __kcl_output = #call;
                    #check?;
                    #default_checkpoint
                    #OK(())
                }
            }
        }
    }
}

/// Wraps a call so an async hook is driven to completion.
fn await_if_async(is_async: bool, call: TokenStream) -> TokenStream {
    if is_async {
        quote!(#BLOCK_ON(#call))
    } else {
        call
    }
}

/// The body of `process_records`: extract, call `callee(args)`, apply the output.
fn records_body(handler: &Handler, callee: TokenStream) -> TokenStream {
    let batch = format_ident!("__kcl_batch");
    let checkpointer = format_ident!("__kcl_checkpointer");
    let per_record = handler.args.iter().any(|a| matches!(a, Arg::Record(_)));
    let mut setup = Vec::new();
    let mut call_args = Vec::new();
    for (index, arg) in handler.args.iter().enumerate() {
        let name = format_ident!("__kcl_arg{}", index);
        match arg {
            Arg::Checkpointer => {
                let inner = if per_record {
                    format_ident!("__kcl_cp")
                } else {
                    checkpointer.clone()
                };
                call_args.push(quote!(&mut *#inner));
            }
            Arg::Batch(ty) | Arg::Meta(ty) => {
                let from_batch = FROM_BATCH.at(ty.span());
                setup.push(quote_spanned! {ty.span()=>
                    let #name = <#ty as #from_batch<'_>>::from_batch(#batch)?;
                });
                if per_record {
                    call_args.push(quote!(#CLONE(&#name)));
                } else {
                    call_args.push(quote!(#name));
                }
            }
            Arg::Record(ty) => {
                let from_record = FROM_RECORD.at(ty.span());
                setup.push(quote_spanned! {ty.span()=>
                    let _ = <#ty as #from_record>::from_record;
                });
                call_args.push(quote!(#name));
            }
        }
    }
    let call = await_if_async(handler.is_async, quote!(#callee(#(#call_args),*)));
    let output_span: Span = handler.output_span;
    let payload = handler.args.iter().enumerate().find_map(|(i, a)| match a {
        Arg::Record(ty) => Some((format_ident!("__kcl_arg{}", i), ty)),
        _ => None,
    });
    match payload {
        Some((payload, ty)) => {
            let into_result = INTO_RESULT.at(output_span);
            let check_output = quote_spanned! {output_span=> #into_result(__kcl_output)};
            quote! {
                #(#setup)*
                #FOR_EACH_RECORD(#batch, #checkpointer, |#payload: #ty, __kcl_cp: &mut #CHECKPOINTER<'_>| {
                    let __kcl_output = #call;
                    #check_output
                })
            }
        }
        None => {
            let finish_batch = FINISH_BATCH.at(output_span);
            let finish = quote_spanned! {output_span=> #finish_batch(#checkpointer, __kcl_output)};
            quote! {
                #(#setup)*
                let __kcl_output = #call;
                #finish
            }
        }
    }
}
