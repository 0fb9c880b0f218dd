//! `stockline`: one binary for every role. Subcommands are thin: they parse
//! arguments and configuration, then call the library crates.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "stockline",
    version,
    about = "Event-sourced omnichannel inventory ledger"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The JSON Schemas of the event types (schemas/).
    Schemas {
        #[command(subcommand)]
        action: SchemasAction,
    },
    /// Check a JSON-lines file of events (or stdin with `-`) without publishing it:
    /// each line is decoded and validated; every bad line is reported with its number.
    CheckEvents {
        /// JSON-lines file, or `-` for stdin.
        input: PathBuf,
    },
}

#[derive(Subcommand)]
enum SchemasAction {
    /// Write the generated schemas into a directory.
    Write {
        #[arg(long, default_value = "schemas")]
        dir: PathBuf,
    },
    /// Fail if the schemas in a directory differ from the generated ones.
    Check {
        #[arg(long, default_value = "schemas")]
        dir: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Schemas { action } => schemas(action),
        Command::CheckEvents { input } => check_events(&input),
    }
}

fn schemas(action: SchemasAction) -> Result<()> {
    let generated = stockline_wire::schema::generate();
    match action {
        SchemasAction::Write { dir } => {
            for (path, text) in &generated {
                let target = dir.join(path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&target, text)
                    .with_context(|| format!("writing {}", target.display()))?;
            }
            println!(
                "wrote {} schema files under {}",
                generated.len(),
                dir.display()
            );
            Ok(())
        }
        SchemasAction::Check { dir } => {
            let stale: Vec<&String> = generated
                .iter()
                .filter(|(path, text)| {
                    std::fs::read_to_string(dir.join(path)).ok().as_deref() != Some(text.as_str())
                })
                .map(|(path, _)| path)
                .collect();
            if stale.is_empty() {
                println!("{} schema files are up to date", generated.len());
                Ok(())
            } else {
                anyhow::bail!(
                    "stale schema files: {stale:?}; run `stockline schemas write --dir {}`",
                    dir.display()
                )
            }
        }
    }
}

fn check_events(input: &PathBuf) -> Result<()> {
    let reader: Box<dyn BufRead> = if input.as_os_str() == "-" {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file =
            std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut out = std::io::stdout().lock();
    let (mut good, mut bad) = (0u64, 0u64);
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line.with_context(|| format!("reading line {line_number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let verdict = stockline_wire::json::event_from_json(line.as_bytes())
            .map_err(|e| format!("at `{}`: {}", e.path, e.message))
            .and_then(|event| {
                event
                    .validate()
                    .map_err(|e| format!("{} ({})", e, e.code()))
            });
        match verdict {
            Ok(()) => good += 1,
            Err(reason) => {
                bad += 1;
                writeln!(out, "line {line_number}: {reason}")?;
            }
        }
    }
    writeln!(out, "{good} valid, {bad} invalid")?;
    if bad > 0 {
        anyhow::bail!("{bad} invalid events");
    }
    Ok(())
}
