//! Reading a hook method's signature: what each argument of an `on_records` handler is (the
//! checkpointer, batch metadata, a batch extractor, or one record's payload), and the checks
//! every hook shares (receiver, `async`, generics).
//!
//! Arguments are classified by how their type is *spelled* (the rule table is in the
//! `#[kcl::processor]` documentation, `docs/arguments.md`): a type alias of `Checkpointer` or of
//! `Vec<T>` is not recognised.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, PathArguments, Signature, Type};

use crate::ctxt::Ctxt;

/// One handler argument.
pub(crate) enum Arg {
    /// `&mut kcl::Checkpointer<'_>`.
    Checkpointer,
    /// Taken from the whole batch once (`Vec<T>`, `&Batch`, `&[Record]`, ...).
    Batch(Type),
    /// Batch metadata passed to each call of a per-record handler (`ShardId`, `MillisBehindLatest`).
    Meta(Type),
    /// One record's payload: the handler is called once per record.
    Record(Type),
}

/// How an `on_records` handler is called.
pub(crate) struct Handler {
    pub(crate) args: Vec<Arg>,
    pub(crate) is_async: bool,
    /// The return type's span (for trait errors on it).
    pub(crate) output_span: Span,
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

/// Whether `ty` is a reference to a type whose last path segment is `Checkpointer`.
fn names_checkpointer(reference: &syn::TypeReference) -> bool {
    last_segment_name(&reference.elem).as_deref() == Some("Checkpointer")
}

/// Whether `ty` is `&mut …Checkpointer<…>` (the checkpointer argument of a hook).
pub(crate) fn is_checkpointer(ty: &Type) -> bool {
    matches!(ty, Type::Reference(r) if r.mutability.is_some() && names_checkpointer(r))
}

fn classify(ctxt: &Ctxt, ty: &Type) -> Option<Arg> {
    match ty {
        Type::Reference(reference) => {
            if names_checkpointer(reference) {
                if reference.mutability.is_none() {
                    ctxt.error_spanned_by(
                        ty,
                        "the checkpointer is taken by mutable reference: write `&mut kcl::Checkpointer<'_>`",
                    );
                }
                return Some(Arg::Checkpointer);
            }
            if reference.mutability.is_some() {
                // No batch extractor is a `&mut`: this is a checkpointer the name does not show.
                ctxt.error_spanned_by(
                    ty,
                    "a `&mut` argument can only be the checkpointer, which #[kcl::on_records] recognises by its name: write `&mut kcl::Checkpointer<'_>` (a type alias or a renamed import is not recognised)",
                );
                return None;
            }
            Some(Arg::Batch(ty.clone()))
        }
        Type::ImplTrait(_) => {
            ctxt.error_spanned_by(
                ty,
                "handler arguments need a concrete type, e.g. `Vec<kcl::Json<MyEvent>>` or `String`",
            );
            None
        }
        _ => {
            if let Some(element) = vec_element(ty) {
                return Some(if is_u8(element) {
                    Arg::Record(ty.clone())
                } else {
                    Arg::Batch(ty.clone())
                });
            }
            match last_segment_name(ty).as_deref() {
                Some("ShardId") | Some("MillisBehindLatest") => Some(Arg::Meta(ty.clone())),
                _ => Some(Arg::Record(ty.clone())),
            }
        }
    }
}

/// Reads an `on_records` handler's signature; `attribute` names the attribute for messages.
pub(crate) fn analyze(ctxt: &Ctxt, sig: &Signature, attribute: &str) -> Handler {
    reject_generics(ctxt, sig, attribute);
    reject_async_without_tokio(ctxt, sig);
    let args: Vec<Arg> = typed_args(sig)
        .into_iter()
        .filter_map(|ty| classify(ctxt, ty))
        .collect();
    let records = args.iter().filter(|a| matches!(a, Arg::Record(_))).count();
    let batches = args.iter().filter(|a| matches!(a, Arg::Batch(_))).count();
    let checkpointers = args
        .iter()
        .filter(|a| matches!(a, Arg::Checkpointer))
        .count();
    if records > 1 {
        ctxt.error_spanned_by(
            &sig.inputs,
            "a per-record handler takes one payload argument (use a pair such as `(kcl::Record, kcl::Json<T>)` for more), or take the whole batch as `Vec<T>`",
        );
    }
    if records == 1 && batches > 0 {
        ctxt.error_spanned_by(
            &sig.inputs,
            "a handler takes either one record payload (it is then called once per record) or whole-batch arguments such as `Vec<T>` and `&kcl::Batch`, not both",
        );
    }
    if checkpointers > 1 {
        ctxt.error_spanned_by(&sig.inputs, "take the checkpointer once");
    }
    Handler {
        args,
        is_async: sig.asyncness.is_some(),
        output_span: output_span(sig),
    }
}

/// The types of a method's arguments, the receiver left out.
pub(crate) fn typed_args(sig: &Signature) -> Vec<&Type> {
    sig.inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => Some(&*typed.ty),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Checks the receiver of a hook method: `&mut self` or `&self`.
pub(crate) fn check_receiver(ctxt: &Ctxt, sig: &Signature, attribute: &str) {
    match sig.receiver() {
        None => ctxt.error_spanned_by(
            &sig.ident,
            format!("a #[kcl::{attribute}] method takes `&mut self`"),
        ),
        Some(receiver) if !matches!(receiver.kind, syn::ReceiverKind::Reference(..)) => ctxt
            .error_spanned_by(
                receiver,
                "take `&mut self` (or `&self`): the processor lives for the whole lease, a hook cannot consume it",
            ),
        Some(_) => {}
    }
}

/// `async fn` hooks need the `tokio` feature.
pub(crate) fn reject_async_without_tokio(ctxt: &Ctxt, sig: &Signature) {
    if sig.asyncness.is_some() && !cfg!(feature = "tokio") {
        ctxt.error_spanned_by(
            sig.asyncness,
            "async hooks need the `tokio` feature of kcl: `kcl = { version = \"0.1\", features = [\"tokio\"] }`",
        );
    }
}

/// Hooks and `main` are called with concrete types: no generic parameters or `where` clause.
pub(crate) fn reject_generics(ctxt: &Ctxt, sig: &Signature, attribute: &str) {
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        ctxt.error_spanned_by(
            &sig.generics,
            format!("a #[kcl::{attribute}] function cannot be generic: name the concrete types"),
        );
    }
}

/// Where a trait error about the function's output points: the return type, or the function's
/// name when it returns `()`.
pub(crate) fn output_span(sig: &Signature) -> Span {
    match &sig.output {
        syn::ReturnType::Default => sig.ident.span(),
        syn::ReturnType::Type(_, ty) => ty.span(),
    }
}
