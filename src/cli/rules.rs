//! `vhdprep rules [--format text|json|markdown]`: the rule catalogue `check` evaluates.

use super::{print_json, CliError, EXIT_OK};
use clap::{Args, ValueEnum};
use vhdprep::check::catalogue;

#[derive(Clone, Copy, ValueEnum)]
pub enum RulesFormat {
    Text,
    Json,
    Markdown,
}

#[derive(Args)]
pub struct RulesArgs {
    /// Output format (markdown is docs/rules.md).
    #[arg(long, value_enum, default_value = "text")]
    format: RulesFormat,
}

pub fn run(args: RulesArgs) -> Result<i32, CliError> {
    match args.format {
        RulesFormat::Json => print_json(&catalogue::all().collect::<Vec<_>>())?,
        RulesFormat::Markdown => out!("{}", catalogue::markdown()),
        RulesFormat::Text => {
            for r in catalogue::all() {
                outln!(
                    "{:<10} {:<8} {}{}",
                    r.id,
                    r.severity,
                    r.title,
                    if r.marketplace_only {
                        " (--marketplace)"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    Ok(EXIT_OK)
}
