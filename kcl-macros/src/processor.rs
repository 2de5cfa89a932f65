//! `#[kcl::processor]` on an inherent impl block: the marked methods become the
//! `RecordProcessor` impl; the block itself is emitted unchanged (minus the markers).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ImplItem, ItemImpl};

use crate::hooks::{self, Hook, Marker, HOOK_NAMES};

pub fn expand(mut item: ItemImpl) -> TokenStream {
    let mut errors: Vec<syn::Error> = Vec::new();
    let mut is_trait_impl = false;
    if let Some((path, _)) = &item.trait_ {
        is_trait_impl = true;
        errors.push(syn::Error::new_spanned(
            path,
            "#[kcl::processor] goes on an inherent impl block (`impl MyProcessor { ... }`) whose methods carry #[kcl::on_records] and friends; to implement `kcl::RecordProcessor` yourself, remove the attribute",
        ));
    }
    if !item.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "#[kcl::processor] does not support generic impl blocks: use a concrete type, or implement `kcl::RecordProcessor` by hand",
        ));
    }

    let mut methods = Vec::new();
    let mut records_hook: Option<proc_macro2::Span> = None;
    let mut seen: Vec<Hook> = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let mut hook = None;
        method.attrs.retain(|attr| match hooks::marker(attr) {
            Marker::Hook(found) => {
                if seen.contains(&found) || hook.is_some() {
                    let message = if found == Hook::Records {
                        "a processor has exactly one #[kcl::on_records] method; merge the two or call one from the other".to_owned()
                    } else if hook.is_some() {
                        "a method can be only one hook".to_owned()
                    } else {
                        format!("#[kcl::{}] is already on another method", found.name())
                    };
                    errors.push(syn::Error::new_spanned(attr, message));
                } else {
                    seen.push(found);
                    hook = Some(found);
                    if found == Hook::Records {
                        records_hook = Some(syn::spanned::Spanned::span(attr));
                    }
                }
                false
            }
            Marker::Unknown => {
                errors.push(syn::Error::new_spanned(
                    attr.path(),
                    format!("unknown kcl hook; the hooks are {HOOK_NAMES}"),
                ));
                false
            }
            Marker::Other => true,
        });
        if let Some(hook) = hook {
            methods.push((hook, method.sig.clone()));
        }
    }
    if records_hook.is_none() && !is_trait_impl {
        errors.push(syn::Error::new_spanned(
            &item.self_ty,
            "a #[kcl::processor] needs one method marked #[kcl::on_records], e.g. `#[kcl::on_records] fn handle(&mut self, lines: Vec<String>) -> kcl::Result<()>`",
        ));
    }

    let mut trait_methods = Vec::new();
    for (hook, sig) in &methods {
        if let Err(error) = hooks::check_receiver(sig, *hook) {
            errors.push(error);
            continue;
        }
        let name = &sig.ident;
        match hooks::trait_method(*hook, sig, quote!(self.#name)) {
            Ok(method) => trait_methods.push(method),
            Err(error) => errors.push(error),
        }
    }

    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let processor_impl = if errors.is_empty() {
        quote! {
            impl #impl_generics ::kcl::RecordProcessor for #self_ty #where_clause {
                #(#trait_methods)*
            }
        }
    } else if is_trait_impl {
        quote!()
    } else {
        // Keeps one mistake from cascading into "does not implement RecordProcessor" elsewhere.
        quote! {
            impl #impl_generics ::kcl::RecordProcessor for #self_ty #where_clause {
                fn process_records(&mut self, _: &::kcl::Batch, _: &mut ::kcl::Checkpointer<'_>) -> ::kcl::Result<()> {
                    ::core::unreachable!("this processor did not compile")
                }
            }
        }
    };
    let compile_errors = errors.iter().map(syn::Error::to_compile_error);
    quote! {
        #item
        #processor_impl
        #(#compile_errors)*
    }
}
