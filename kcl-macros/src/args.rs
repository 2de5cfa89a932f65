//! What a handler's arguments are: the checkpointer, batch-level extractors, or one record
//! payload (which makes the handler per-record).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, PathArguments, Signature, Type};

/// One handler argument.
pub enum Arg {
    /// `&mut kcl::Checkpointer<'_>`.
    Checkpointer,
    /// Taken from the whole batch once (`Vec<T>`, `&Batch`, `&[Record]`, `ShardId`, ...).
    Batch(Type),
    /// Batch metadata passed to each call of a per-record handler (`ShardId`, `MillisBehindLatest`).
    Meta(Type),
    /// One record's payload: the handler is called once per record.
    Record(Type),
}

/// How the handler is called.
pub struct Handler {
    pub args: Vec<Arg>,
    pub is_async: bool,
    /// The return type's span (for trait errors on it).
    pub output_span: proc_macro2::Span,
}

fn last_segment_name(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

fn vec_element(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    if segment.ident != "Vec" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &segment.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(element) => Some(element),
        _ => None,
    }
}

fn is_u8(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("u8"))
}

fn classify(ty: &Type) -> syn::Result<Arg> {
    match ty {
        Type::Reference(reference) => {
            let names_checkpointer =
                last_segment_name(&reference.elem).as_deref() == Some("Checkpointer");
            if names_checkpointer {
                if reference.mutability.is_none() {
                    return Err(syn::Error::new_spanned(
                        ty,
                        "the checkpointer is taken by mutable reference: write `&mut kcl::Checkpointer<'_>`",
                    ));
                }
                return Ok(Arg::Checkpointer);
            }
            Ok(Arg::Batch(ty.clone()))
        }
        Type::ImplTrait(_) => Err(syn::Error::new_spanned(
            ty,
            "handler arguments need a concrete type, e.g. `Vec<kcl::Json<MyEvent>>` or `String`",
        )),
        _ => {
            if let Some(element) = vec_element(ty) {
                return Ok(if is_u8(element) {
                    Arg::Record(ty.clone())
                } else {
                    Arg::Batch(ty.clone())
                });
            }
            match last_segment_name(ty).as_deref() {
                Some("ShardId") | Some("MillisBehindLatest") => Ok(Arg::Meta(ty.clone())),
                _ => Ok(Arg::Record(ty.clone())),
            }
        }
    }
}

/// Reads a handler's signature. `hook` names the attribute for messages.
pub fn analyze(sig: &Signature, hook: &str) -> syn::Result<Handler> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |error: syn::Error| match &mut errors {
        Some(all) => all.combine(error),
        None => errors = Some(error),
    };
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        push(syn::Error::new_spanned(
            &sig.generics,
            format!("a #[kcl::{hook}] handler cannot be generic: name the concrete payload types"),
        ));
    }
    if sig.asyncness.is_some() && !cfg!(feature = "tokio") {
        push(syn::Error::new_spanned(
            sig.asyncness,
            "async hooks need the `tokio` feature of kcl: `kcl = { version = \"0.1\", features = [\"tokio\"] }`",
        ));
    }
    let mut args = Vec::new();
    for input in &sig.inputs {
        if let FnArg::Typed(typed) = input {
            match classify(&typed.ty) {
                Ok(arg) => args.push(arg),
                Err(error) => push(error),
            }
        }
    }
    let records = args.iter().filter(|a| matches!(a, Arg::Record(_))).count();
    let batches = args.iter().filter(|a| matches!(a, Arg::Batch(_))).count();
    let checkpointers = args
        .iter()
        .filter(|a| matches!(a, Arg::Checkpointer))
        .count();
    if records > 1 {
        push(syn::Error::new_spanned(
            &sig.inputs,
            "a per-record handler takes one payload argument (use a pair such as `(kcl::Record, kcl::Json<T>)` for more), or take the whole batch as `Vec<T>`",
        ));
    }
    if records == 1 && batches > 0 {
        push(syn::Error::new_spanned(
            &sig.inputs,
            "a handler takes either one record payload (it is then called once per record) or whole-batch arguments such as `Vec<T>` and `&kcl::Batch`, not both",
        ));
    }
    if checkpointers > 1 {
        push(syn::Error::new_spanned(
            &sig.inputs,
            "take the checkpointer once",
        ));
    }
    let output_span = match &sig.output {
        syn::ReturnType::Default => sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    };
    match errors {
        Some(error) => Err(error),
        None => Ok(Handler {
            args,
            is_async: sig.asyncness.is_some(),
            output_span,
        }),
    }
}

/// Wraps a call so an async handler is driven to completion.
pub fn await_if_async(is_async: bool, call: TokenStream) -> TokenStream {
    if is_async {
        quote!(::kcl::handler::block_on(#call))
    } else {
        call
    }
}

/// The body of `process_records`: extract, call `callee(args)`, apply the output.
/// `batch` and `checkpointer` are the identifiers of the trait method's parameters.
pub fn records_body(handler: &Handler, callee: TokenStream) -> TokenStream {
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
                setup.push(quote_spanned! {ty.span()=>
                    let #name = <#ty as ::kcl::FromBatch<'_>>::from_batch(#batch)?;
                });
                if per_record {
                    call_args.push(quote!(::core::clone::Clone::clone(&#name)));
                } else {
                    call_args.push(quote!(#name));
                }
            }
            Arg::Record(ty) => {
                setup.push(quote_spanned! {ty.span()=>
                    let _ = <#ty as ::kcl::FromRecord>::from_record;
                });
                call_args.push(quote!(#name));
            }
        }
    }
    let call = await_if_async(handler.is_async, quote!(#callee(#(#call_args),*)));
    let output_span = handler.output_span;
    if per_record {
        let (index, ty) = handler
            .args
            .iter()
            .enumerate()
            .find_map(|(i, a)| match a {
                Arg::Record(ty) => Some((i, ty)),
                _ => None,
            })
            .expect("per-record handlers have a payload");
        let payload = format_ident!("__kcl_arg{}", index);
        let check_output = quote_spanned! {output_span=>
            ::kcl::HandlerOutput::into_result(__kcl_output)
        };
        quote! {
            #(#setup)*
            ::kcl::handler::for_each_record(#batch, #checkpointer, |#payload: #ty, __kcl_cp: &mut ::kcl::Checkpointer<'_>| {
                let __kcl_output = #call;
                #check_output
            })
        }
    } else {
        let finish = quote_spanned! {output_span=>
            ::kcl::handler::finish_batch(#checkpointer, __kcl_output)
        };
        quote! {
            #(#setup)*
            let __kcl_output = #call;
            #finish
        }
    }
}
