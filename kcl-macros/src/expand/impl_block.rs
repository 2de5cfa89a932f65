//! `#[kcl::processor]` on an inherent impl block: the marked methods become the
//! `RecordProcessor` impl; the block itself is emitted unchanged (minus the markers).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ImplItem, ItemImpl};

use crate::ctxt::Ctxt;
use crate::expand::trait_method::trait_method;
use crate::fallback;
use crate::hooks::{self, Hook, Marker};
use crate::paths::RECORD_PROCESSOR;
use crate::signature;

pub(crate) fn expand(mut item: ItemImpl) -> TokenStream {
    let ctxt = Ctxt::new();
    let is_trait_impl = item.trait_.is_some();
    if let Some((path, _)) = &item.trait_ {
        ctxt.error_spanned_by(
            path,
            "#[kcl::processor] goes on an inherent impl block (`impl MyProcessor { ... }`) whose methods carry #[kcl::on_records] and friends; to implement `kcl::RecordProcessor` yourself, remove the attribute",
        );
    }
    if !item.generics.params.is_empty() {
        ctxt.error_spanned_by(
            &item.generics,
            "#[kcl::processor] does not support generic impl blocks: use a concrete type, or implement `kcl::RecordProcessor` by hand",
        );
    }

    let methods = take_hook_methods(&ctxt, &mut item);
    if !methods.iter().any(|(hook, _)| *hook == Hook::Records) && !is_trait_impl {
        ctxt.error_spanned_by(
            &item.self_ty,
            "a #[kcl::processor] needs one method marked #[kcl::on_records], e.g. `#[kcl::on_records] fn handle(&mut self, lines: Vec<String>) -> kcl::Result<()>`",
        );
    }
    let trait_methods: Vec<TokenStream> = methods
        .iter()
        .map(|(hook, sig)| {
            signature::check_receiver(&ctxt, sig, hook.name());
            let name = &sig.ident;
            trait_method(&ctxt, *hook, sig, quote!(self.#name))
        })
        .collect();

    let self_ty = &item.self_ty;
    let processor_impl = match ctxt.check() {
        Ok(()) => {
            let (impl_generics, _, where_clause) = item.generics.split_for_impl();
            quote! {
                impl #impl_generics #RECORD_PROCESSOR for #self_ty #where_clause {
                    #(#trait_methods)*
                }
            }
        }
        // A trait impl is already the processor (or not meant to be one).
        Err(errors) if is_trait_impl => errors.to_compile_error(),
        Err(errors) => {
            let stub = fallback::processor_impl(self_ty, &item.generics);
            let errors = errors.to_compile_error();
            quote!(#stub #errors)
        }
    };
    quote! {
        #item
        #processor_impl
    }
}

/// Removes the hook markers from the block's methods; returns each marked method's hook and
/// signature. Duplicate and unknown markers are reported.
fn take_hook_methods(ctxt: &Ctxt, item: &mut ItemImpl) -> Vec<(Hook, syn::Signature)> {
    let mut methods: Vec<(Hook, syn::Signature)> = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let mut hook = None;
        method.attrs.retain(|attr| match hooks::marker(attr) {
            Marker::Hook(found) => {
                let taken = methods.iter().any(|(seen, _)| *seen == found);
                if taken || hook.is_some() {
                    let message = if found == Hook::Records {
                        "a processor has exactly one #[kcl::on_records] method; merge the two or call one from the other".to_owned()
                    } else if hook.is_some() {
                        "a method can be only one hook".to_owned()
                    } else {
                        format!("#[kcl::{}] is already on another method", found.name())
                    };
                    ctxt.error_spanned_by(attr, message);
                } else {
                    hook = Some(found);
                }
                false
            }
            Marker::Unknown => {
                ctxt.error_spanned_by(
                    attr.path(),
                    format!("unknown kcl hook; the hooks are {}", hooks::hook_list()),
                );
                false
            }
            Marker::Other => true,
        });
        if let Some(hook) = hook {
            methods.push((hook, method.sig.clone()));
        }
    }
    methods
}
