//! `kcl iam-policy`: the least-privilege IAM policy of an application, from its properties
//! file. The policy is built from one table of every AWS call a KCL application makes
//! ([`calls::CALLS`]), which tests tie to the code that makes them ([`calls`]); [`policy`]
//! turns the properties into ARNs and picks the calls that apply.

mod args;
pub mod calls;
pub mod policy;

use std::io::Write as _;

pub(crate) use args::IamPolicyArgs;

use crate::error::{Error, Result};
use calls::CALLS;
use policy::{Application, Options, calls_made};

/// Runs `kcl iam-policy`.
pub(crate) fn command(args: IamPolicyArgs) -> Result<()> {
    let options = Options {
        account: args.account.clone(),
        region: args.region.clone(),
        producer: args.producer,
        kms_key: args.kms_key.clone(),
    };
    let mut out = std::io::stdout().lock();
    if args.list_calls {
        let text = serde_json::to_string_pretty(CALLS).expect("the table serializes");
        return writeln!(out, "{text}").map_err(|e| Error::io("writing to stdout", e));
    }
    let Some(path) = &args.properties else {
        return Err(Error::usage_hint(
            "kcl iam-policy needs --properties FILE",
            "kcl iam-policy --properties app.properties",
        ));
    };
    let props = kcl_properties::Properties::load(path)
        .map_err(|e| Error::failed(format!("{}: {e}", path.display())))?;
    let app = Application::from_properties(&props, &options).map_err(|e| {
        Error::failed_hint(
            format!("{}: {e}", path.display()),
            "the policy names the stream and the tables: set applicationName and streamName (or streamArn)",
        )
    })?;
    for (what, value, flag) in [
        ("account", &app.account, "--account ID"),
        ("region", &app.region, "--region or regionName"),
    ] {
        if value == "*" {
            eprintln!(
                "kcl iam-policy: note: the {what} is unknown, so the ARNs match any {what} ({flag} narrows them)"
            );
        }
    }
    if args.explain {
        for call in calls_made(&app, args.engine, args.producer) {
            let action = format!("{}:{}", call.service.prefix(), call.action);
            let target = format!("{:?}", call.target);
            writeln!(out, "{action:<36} {target:<17} {}", call.why)
                .map_err(|e| Error::io("writing to stdout", e))?;
        }
        return Ok(());
    }
    let document = policy::policy(&app, args.engine, &options);
    let text = serde_json::to_string_pretty(&document).expect("a JSON value serializes");
    match &args.output {
        Some(file) => crate::fsutil::write_atomically(file, format!("{text}\n").as_bytes())
            .map_err(|e| Error::io(format!("writing {}", file.display()), e)),
        None => writeln!(out, "{text}").map_err(|e| Error::io("writing to stdout", e)),
    }
}
