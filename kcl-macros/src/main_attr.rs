//! `#[kcl::main]`: turns `fn main() -> P` (P a processor) into the binary's real `main`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Ident, ItemFn, LitInt, ReturnType};

const OPTIONS: &str = "`checkpoint` (`batch`, `manual`, or `every(records = N, seconds = S)`), `on_failure` (`stop`, `skip`, or `exit`), `attempts` (a failed batch's attempts in all, at least 1)";

/// `#[kcl::main(...)]` options.
#[derive(Default)]
pub struct Options {
    strategy: Option<TokenStream>,
    action: Option<TokenStream>,
    attempts: Option<u32>,
}

fn parse_every(input: ParseStream) -> syn::Result<TokenStream> {
    let content;
    syn::parenthesized!(content in input);
    let (mut records, mut seconds) = (None, None);
    while !content.is_empty() {
        let key: Ident = content.parse()?;
        content.parse::<syn::Token![=]>()?;
        let value: LitInt = content.parse()?;
        let number: u64 = value.base10_parse()?;
        if number == 0 {
            return Err(syn::Error::new_spanned(&value, "must be at least 1"));
        }
        match key.to_string().as_str() {
            "records" if records.is_none() => records = Some(number),
            "seconds" if seconds.is_none() => seconds = Some(number),
            "records" | "seconds" => return Err(syn::Error::new_spanned(&key, "given twice")),
            _ => {
                return Err(syn::Error::new_spanned(
                    &key,
                    "unknown `every` setting; use `records = N` and/or `seconds = S`",
                ))
            }
        }
        if !content.is_empty() {
            content.parse::<syn::Token![,]>()?;
        }
    }
    let records = records.map_or(
        quote!(::core::option::Option::None),
        |n| quote!(::core::option::Option::Some(#n)),
    );
    let interval = seconds.map_or(
        quote!(::core::option::Option::None),
        |s| quote!(::core::option::Option::Some(::core::time::Duration::from_secs(#s))),
    );
    Ok(quote!(::kcl::CheckpointStrategy::Every { records: #records, interval: #interval }))
}

impl Options {
    pub fn parse(args: TokenStream) -> syn::Result<Options> {
        let mut options = Options::default();
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("checkpoint") {
                if options.strategy.is_some() {
                    return Err(meta.error("`checkpoint` is given twice"));
                }
                let value = meta.value()?;
                let name: Ident = value.parse()?;
                options.strategy = Some(match name.to_string().as_str() {
                    "batch" => quote!(::kcl::CheckpointStrategy::EveryBatch),
                    "manual" => quote!(::kcl::CheckpointStrategy::Manual),
                    "every" => parse_every(value)?,
                    _ => {
                        return Err(syn::Error::new_spanned(
                            &name,
                            "unknown checkpoint strategy; use `batch`, `manual`, or `every(records = N, seconds = S)`",
                        ))
                    }
                });
                Ok(())
            } else if meta.path.is_ident("on_failure") {
                if options.action.is_some() {
                    return Err(meta.error("`on_failure` is given twice"));
                }
                let name: Ident = meta.value()?.parse()?;
                options.action = Some(match name.to_string().as_str() {
                    "stop" => quote!(::kcl::FailurePolicy::stop()),
                    "skip" => quote!(::kcl::FailurePolicy::skip()),
                    "exit" => quote!(::kcl::FailurePolicy::exit()),
                    _ => {
                        return Err(syn::Error::new_spanned(
                            &name,
                            "unknown failure action; use `stop` (the default: stop checkpointing the shard), `skip` (hand the records to the on_failure hook, go on) or `exit`",
                        ))
                    }
                });
                Ok(())
            } else if meta.path.is_ident("attempts") {
                if options.attempts.is_some() {
                    return Err(meta.error("`attempts` is given twice"));
                }
                let value: LitInt = meta.value()?.parse()?;
                let attempts: u32 = value.base10_parse()?;
                if attempts == 0 {
                    return Err(syn::Error::new_spanned(
                        &value,
                        "at least 1 (the first attempt)",
                    ));
                }
                options.attempts = Some(attempts);
                Ok(())
            } else {
                Err(meta.error(format!(
                    "unknown #[kcl::main] option; valid options: {OPTIONS}"
                )))
            }
        });
        syn::parse::Parser::parse2(parser, args)?;
        Ok(options)
    }

    /// `.failure_policy(...)` when `on_failure` or `attempts` was given.
    fn failure_policy(&self) -> Option<TokenStream> {
        if self.action.is_none() && self.attempts.is_none() {
            return None;
        }
        let action = self
            .action
            .clone()
            .unwrap_or_else(|| quote!(::kcl::FailurePolicy::stop()));
        let attempts = self.attempts.map(|n| quote!(.attempts(#n)));
        Some(quote!(.failure_policy(#action #attempts)))
    }
}

pub fn expand(options: syn::Result<Options>, item: ItemFn) -> TokenStream {
    let mut errors = Vec::new();
    let options = options.unwrap_or_else(|error| {
        errors.push(error);
        Options::default()
    });
    let sig = &item.sig;
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            "#[kcl::main] takes no arguments: the daemon talks to the processor over stdin/stdout; read settings from the environment inside the function",
        ));
    }
    if sig.asyncness.is_some() {
        errors.push(syn::Error::new_spanned(
            sig.asyncness,
            "#[kcl::main] is not async: return the processor from a plain `fn main()` (its hooks may be async with the `tokio` feature)",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            "#[kcl::main] cannot be generic",
        ));
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => Some(ty),
        ReturnType::Default => {
            errors.push(syn::Error::new_spanned(
                &sig.ident,
                "#[kcl::main] returns the processor to run: write `fn main() -> MyProcessor { ... }` or `fn main() -> impl kcl::RecordProcessor { Handle }`",
            ));
            None
        }
    };
    let attrs = &item.attrs;
    let vis = &item.vis;
    let name = &sig.ident;
    let block = &item.block;
    if !errors.is_empty() {
        let errors = errors.iter().map(syn::Error::to_compile_error);
        // Still emit the user's function (as a plain `main`) so its body is checked.
        let body = match output {
            Some(ty) => quote!({ fn __kcl_processor() -> #ty #block let _ = __kcl_processor; }),
            None => quote!(#block),
        };
        return quote! {
            #(#attrs)*
            #vis fn #name() #body
            #(#errors)*
        };
    }
    let ty = output.expect("checked above");
    let strategy = options
        .strategy
        .clone()
        .unwrap_or_else(|| quote!(::kcl::CheckpointStrategy::EveryBatch));
    // Spanned on the return type: "`X` is not a record processor" points there.
    let failure = options.failure_policy();
    let runtime = quote_spanned! {ty.span()=> ::kcl::Runtime::new(__kcl_processor())};
    // The process is prepared (private stdin and stdout, signals) before the user's code runs.
    quote! {
        #(#attrs)*
        #vis fn #name() -> ::std::process::ExitCode {
            fn __kcl_processor() -> #ty #block
            ::kcl::run_main_with(|| #runtime.checkpoint_strategy(#strategy) #failure)
        }
    }
}
