//! What is emitted when the input has a mistake: the user's item (so its body is still checked
//! and its uses still resolve) plus the errors, and nothing that would add errors of its own
//! (thiserror's `fallback.rs`, tokio's "emit the item back").

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{Generics, ItemFn, Type};

use crate::paths::{BATCH, CHECKPOINTER, RECORD_PROCESSOR, RESULT, UNREACHABLE};

/// A stub `RecordProcessor` impl for `self_ty`, so one mistake in a processor does not cascade
/// into "`X` is not a record processor" where the processor is used.
pub(crate) fn processor_impl(self_ty: &impl ToTokens, generics: &Generics) -> TokenStream {
    let (impl_generics, _, where_clause) = generics.split_for_impl();
    quote! {
        impl #impl_generics #RECORD_PROCESSOR for #self_ty #where_clause {
            fn process_records(&mut self, _: &#BATCH, _: &mut #CHECKPOINTER<'_>) -> #RESULT<()> {
                #UNREACHABLE!("this processor did not compile")
            }
        }
    }
}

/// The input as it was written, followed by `error`: for input that does not even parse as
/// the item the attribute expects.
pub(crate) fn unparsed(input: TokenStream, error: &syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#input #error)
}

/// Parses the attribute's input as `T`; on failure, the input is emitted back with the error.
pub(crate) fn parse<T: syn::parse::Parse>(input: TokenStream) -> Result<T, TokenStream> {
    syn::parse2(input.clone()).map_err(|error| unparsed(input, &error))
}

/// `#[kcl::main]`'s function as a plain `main`, followed by `errors`: its body is still checked
/// (as the body of a function returning `output`, when there is one).
pub(crate) fn main_fn(item: &ItemFn, output: Option<&Type>, errors: &syn::Error) -> TokenStream {
    let (attrs, vis, name, block) = (&item.attrs, &item.vis, &item.sig.ident, &item.block);
    let body = match output {
        Some(ty) => quote!({ fn __kcl_processor() -> #ty #block let _ = __kcl_processor; }),
        None => quote!(#block),
    };
    let errors = errors.to_compile_error();
    quote! {
        #(#attrs)*
        #vis fn #name() #body
        #errors
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn input_that_does_not_parse_is_emitted_back_with_the_error() {
        let input = quote::quote!(
            struct Handle;
        );
        let echoed = super::parse::<syn::ItemFn>(input).unwrap_err().to_string();
        assert!(echoed.starts_with("struct Handle ;"), "{echoed}");
        assert!(echoed.contains("compile_error"), "{echoed}");
        assert!(echoed.contains("expected `fn`"), "{echoed}");
    }
}
