//! `#[kcl::main]`: turns `fn main() -> P` (P a processor) into the binary's real `main`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitInt, ReturnType};

use crate::ctxt::Ctxt;
use crate::fallback;
use crate::paths::{
    APP_RUN, CHECKPOINT_STRATEGY, DURATION_FROM_SECS, EXIT_CODE, FAILURE_POLICY, NONE, RUNTIME_NEW,
    SOME,
};
use crate::signature;

const OPTIONS: &str = "`checkpoint` (`batch`, `manual`, or `every(records = N, seconds = S)`), `on_failure` (`stop`, `skip`, or `exit`), `attempts` (a failed batch's attempts in all, at least 1)";

/// `#[kcl::main(...)]` options.
#[derive(Default)]
struct Options {
    strategy: Option<TokenStream>,
    action: Option<TokenStream>,
    attempts: Option<u32>,
}

/// `every(records = N, seconds = S)`; mistakes in the settings are reported to `ctxt`.
fn parse_every(ctxt: &Ctxt, input: ParseStream) -> syn::Result<TokenStream> {
    let content;
    syn::parenthesized!(content in input);
    let (mut records, mut seconds) = (None, None);
    while !content.is_empty() {
        let key: Ident = content.parse()?;
        content.parse::<syn::Token![=]>()?;
        let value: LitInt = content.parse()?;
        let number: u64 = value.base10_parse()?;
        if number == 0 {
            ctxt.error_spanned_by(&value, "must be at least 1");
        }
        match key.to_string().as_str() {
            "records" if records.is_none() => records = Some(number),
            "seconds" if seconds.is_none() => seconds = Some(number),
            "records" | "seconds" => ctxt.error_spanned_by(&key, "given twice"),
            _ => ctxt.error_spanned_by(
                &key,
                "unknown `every` setting; use `records = N` and/or `seconds = S`",
            ),
        }
        if !content.is_empty() {
            content.parse::<syn::Token![,]>()?;
        }
    }
    let records = records.map_or(quote!(#NONE), |n| quote!(#SOME(#n)));
    let interval = seconds.map_or(quote!(#NONE), |s| quote!(#SOME(#DURATION_FROM_SECS(#s))));
    Ok(quote!(#CHECKPOINT_STRATEGY::Every { records: #records, interval: #interval }))
}

impl Options {
    /// Reads the attribute's arguments. Every mistake in a value is reported to `ctxt`; a
    /// syntax error ends the reading there.
    fn parse(ctxt: &Ctxt, args: TokenStream) -> Options {
        let mut options = Options::default();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("checkpoint") {
                if options.strategy.is_some() {
                    ctxt.syn_error(meta.error("`checkpoint` is given twice"));
                }
                let value = meta.value()?;
                let name: Ident = value.parse()?;
                let strategy = match name.to_string().as_str() {
                    "batch" => quote!(#CHECKPOINT_STRATEGY::EveryBatch),
                    "manual" => quote!(#CHECKPOINT_STRATEGY::Manual),
                    "every" => parse_every(ctxt, value)?,
                    _ => {
                        ctxt.error_spanned_by(
                            &name,
                            "unknown checkpoint strategy; use `batch`, `manual`, or `every(records = N, seconds = S)`",
                        );
                        // Skip `every`-like settings of the unknown strategy.
                        if value.peek(syn::token::Paren) {
                            value.parse::<proc_macro2::Group>()?;
                        }
                        return Ok(());
                    }
                };
                options.strategy.get_or_insert(strategy);
            } else if meta.path.is_ident("on_failure") {
                if options.action.is_some() {
                    ctxt.syn_error(meta.error("`on_failure` is given twice"));
                }
                let name: Ident = meta.value()?.parse()?;
                let action = match name.to_string().as_str() {
                    "stop" => quote!(#FAILURE_POLICY::stop()),
                    "skip" => quote!(#FAILURE_POLICY::skip()),
                    "exit" => quote!(#FAILURE_POLICY::exit()),
                    _ => {
                        ctxt.error_spanned_by(
                            &name,
                            "unknown failure action; use `stop` (the default: stop checkpointing the shard), `skip` (hand the records to the on_failure hook, go on) or `exit`",
                        );
                        return Ok(());
                    }
                };
                options.action.get_or_insert(action);
            } else if meta.path.is_ident("attempts") {
                if options.attempts.is_some() {
                    ctxt.syn_error(meta.error("`attempts` is given twice"));
                }
                let value: LitInt = meta.value()?.parse()?;
                let attempts: u32 = value.base10_parse()?;
                if attempts == 0 {
                    ctxt.error_spanned_by(&value, "at least 1 (the first attempt)");
                }
                options.attempts.get_or_insert(attempts);
            } else {
                ctxt.syn_error(meta.error(format!(
                    "unknown #[kcl::main] option; valid options: {OPTIONS}"
                )));
                // Skip the unknown option's value, so the options after it are still read.
                if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<syn::Expr>()?;
                } else if meta.input.peek(syn::token::Paren) {
                    meta.input.parse::<proc_macro2::Group>()?;
                }
            }
            Ok(())
        });
        if let Err(error) = syn::parse::Parser::parse2(parser, args) {
            ctxt.syn_error(error);
        }
        options
    }

    /// `.failure_policy(...)` when `on_failure` or `attempts` was given.
    fn failure_policy(&self) -> Option<TokenStream> {
        if self.action.is_none() && self.attempts.is_none() {
            return None;
        }
        let action = self
            .action
            .clone()
            .unwrap_or_else(|| quote!(#FAILURE_POLICY::stop()));
        let attempts = self.attempts.map(|n| quote!(.attempts(#n)));
        Some(quote!(.failure_policy(#action #attempts)))
    }
}

/// Expands `#[kcl::main(args)]` on `item`.
pub(crate) fn expand(args: TokenStream, item: ItemFn) -> TokenStream {
    let ctxt = Ctxt::new();
    let options = Options::parse(&ctxt, args);
    let sig = &item.sig;
    if !sig.inputs.is_empty() {
        ctxt.error_spanned_by(
            &sig.inputs,
            "#[kcl::main] takes no arguments: the daemon talks to the processor over stdin/stdout; read settings from the environment inside the function",
        );
    }
    if sig.asyncness.is_some() {
        ctxt.error_spanned_by(
            sig.asyncness,
            "#[kcl::main] is not async: return the processor from a plain `fn main()` (its hooks may be async with the `tokio` feature)",
        );
    }
    signature::reject_generics(&ctxt, sig, "main");
    let output = match &sig.output {
        ReturnType::Type(_, ty) => Some(&**ty),
        ReturnType::Default => {
            ctxt.error_spanned_by(
                &sig.ident,
                "#[kcl::main] returns the processor to run: write `fn main() -> MyProcessor { ... }` or `fn main() -> impl kcl::RecordProcessor { Handle }`",
            );
            None
        }
    };
    if let Err(errors) = ctxt.check() {
        return fallback::main_fn(&item, output, &errors);
    }
    let ty = output.expect("a missing return type is reported");
    let strategy = options
        .strategy
        .clone()
        .unwrap_or_else(|| quote!(#CHECKPOINT_STRATEGY::EveryBatch));
    // Spanned on the return type: "`X` is not a record processor" points there.
    let runtime_new = RUNTIME_NEW.at(ty.span());
    let runtime = quote_spanned! {ty.span()=> #runtime_new(__kcl_processor())};
    let failure = options.failure_policy();
    let (attrs, vis, name, block) = (&item.attrs, &item.vis, &sig.ident, &item.block);
    // `kcl::app::run` picks the engine from the command line. As a daemon child, the process
    // is prepared (private stdin and stdout, signals) before the user's code runs; on the
    // native engine the user's code runs once per shard, on the shard's thread.
    quote! {
        #(#attrs)*
        #vis fn #name() -> #EXIT_CODE {
            fn __kcl_processor() -> #ty #block
            #APP_RUN(|| #runtime.checkpoint_strategy(#strategy) #failure)
        }
    }
}
