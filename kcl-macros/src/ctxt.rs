//! The one error collector (serde's `Ctxt`): every check reports into it, so several mistakes
//! are shown at once, and the expansion asks it once at the end whether there were any.

use std::cell::RefCell;
use std::fmt::Display;

use quote::ToTokens;

/// Collects the mistakes found in one macro input. It must be [checked](Ctxt::check) before it
/// is dropped: a dropped collector holding unchecked errors is a bug of this crate.
pub(crate) struct Ctxt {
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    /// An empty collector.
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Reports `message` on the tokens of `tokens`.
    pub(crate) fn error_spanned_by(&self, tokens: impl ToTokens, message: impl Display) {
        self.syn_error(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Reports an error built elsewhere (a parse error, for example).
    pub(crate) fn syn_error(&self, error: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("a Ctxt is not used after it was checked")
            .push(error);
    }

    /// Ends the collection: `Err` with every reported mistake combined, in the order reported.
    pub(crate) fn check(self) -> syn::Result<()> {
        let errors = self.errors.borrow_mut().take().unwrap_or_default();
        let mut errors = errors.into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for error in errors {
            combined.combine(error);
        }
        Err(combined)
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("kcl-macros: a Ctxt was dropped without being checked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ctxt;

    #[test]
    fn check_combines_every_error_in_order() {
        let ctxt = Ctxt::new();
        ctxt.error_spanned_by(quote::quote!(a), "first");
        ctxt.error_spanned_by(quote::quote!(b), "second");
        let messages: Vec<String> = ctxt
            .check()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(messages, ["first", "second"]);
    }

    #[test]
    fn check_without_errors_is_ok() {
        assert!(Ctxt::new().check().is_ok());
    }

    #[test]
    #[should_panic(expected = "without being checked")]
    fn an_unchecked_ctxt_panics() {
        let _ctxt = Ctxt::new();
    }
}
