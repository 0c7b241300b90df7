//! `sechub-triage completions SHELL` and `sechub-triage man`: shell
//! completion scripts and the roff man page, both generated from the same
//! clap definitions that parse the command line, so they cannot drift from
//! it.
//!
//! The man page is one page, `sechub-triage(1)`: the top-level synopsis,
//! options and list of subcommands, then one section per subcommand
//! (`.SH "SECHUB-TRIAGE UPDATE"` and so on) holding that subcommand's
//! synopsis, description and options, with its help headings (Decision,
//! Input, AWS, ...) as subsections. One page keeps `man sechub-triage`
//! and a search inside it enough to find any flag.

use std::io::Write;

use clap::Args;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

/// `sechub-triage completions`.
#[derive(Args, Debug)]
pub(crate) struct CompletionsArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// `sechub-triage man`.
#[derive(Args, Debug)]
pub(crate) struct ManArgs {}

/// The binary's name, as completion scripts and the man page call it.
pub(crate) const BIN_NAME: &str = "sechub-triage";

/// The completion script for `shell`.
pub fn completions(shell: Shell, mut cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, BIN_NAME, &mut out);
    out
}

/// The man page (roff), subcommands included.
pub(crate) fn man_page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut cmd = cmd.bin_name(BIN_NAME).disable_help_subcommand(true);
    cmd.build();
    let man = Man::new(cmd.clone()).title("SECHUB-TRIAGE");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    subcommand_list(&mut out, &cmd)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        subcommand_section(&mut out, sub, &[BIN_NAME])?;
    }
    exit_status_section(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(keep_first_preamble(&out))
}

/// Every roff fragment starts with the same two lines defining the
/// apostrophe string; the page needs them once, at the top.
fn keep_first_preamble(page: &[u8]) -> Vec<u8> {
    let page = String::from_utf8_lossy(page);
    let mut seen = (false, false);
    let mut out = String::with_capacity(page.len());
    for line in page.lines() {
        let slot = if line.starts_with(".ie \\n(.g .ds Aq") {
            &mut seen.0
        } else if line.starts_with(".el .ds Aq") {
            &mut seen.1
        } else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        if !*slot {
            *slot = true;
            out.push_str(line);
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// The SUBCOMMANDS list, pointing at the sections below (clap_mangen's own
/// list points at one page per subcommand, which this page replaces).
fn subcommand_list(out: &mut Vec<u8>, cmd: &clap::Command) -> std::io::Result<()> {
    let mut roff = Roff::new();
    roff.control("SH", ["SUBCOMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let full = format!("{BIN_NAME} {}", sub.get_name());
        roff.control("TP", []);
        roff.text([bold(full.clone())]);
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        roff.text([roman(format!(
            "{about} (section {} below)",
            full.to_uppercase()
        ))]);
    }
    roff.to_writer(out)
}

/// One `.SH` section for `sub` (and, recursively, one for each of its own
/// subcommands): its page's sections, demoted to `.SS`, without the
/// title, NAME and VERSION.
fn subcommand_section(
    out: &mut Vec<u8>,
    sub: &clap::Command,
    parents: &[&str],
) -> std::io::Result<()> {
    let mut path = parents.to_vec();
    path.push(sub.get_name());
    let full = path.join(" ");
    let mut heading = Roff::new();
    heading.control("SH", [full.to_uppercase().as_str()]);
    heading.to_writer(out)?;

    let mut page = Vec::new();
    Man::new(sub.clone()).render(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    let mut skipping = false;
    for line in page.lines() {
        if line.starts_with(".TH ") {
            continue;
        }
        if let Some(title) = line.strip_prefix(".SH ") {
            let title = title.trim_matches('"');
            skipping = matches!(title, "NAME" | "VERSION");
            if !skipping {
                writeln!(out, ".SS {}", line[4..].trim())?;
            }
            continue;
        }
        if !skipping {
            writeln!(out, "{line}")?;
        }
    }
    for inner in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
        subcommand_section(out, inner, &path)?;
    }
    Ok(())
}

/// The exit statuses of `crate::cli::exit`, as the README lists them.
fn exit_status_section(out: &mut Vec<u8>) -> std::io::Result<()> {
    use super::exit;
    let rows = [
        (
            exit::SUCCESS,
            "every finding was updated (or the plan may run)",
        ),
        (
            exit::USAGE,
            "usage, configuration or input error, or a plan the guardrails refuse",
        ),
        (
            exit::PARTIAL,
            "the run finished but some findings were not updated",
        ),
        (
            exit::ABORTED,
            "the run was aborted (access denied, credentials); the rest is not_attempted",
        ),
        (
            exit::STOPPED,
            "stopped early (signal or --time-budget): run again with --resume",
        ),
        (exit::LOCKED, "another run holds the results file's lock"),
    ];
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in rows {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(what)]);
    }
    roff.to_writer(out)
}

/// Runs `completions`.
pub(crate) fn run_completions(args: &CompletionsArgs, cmd: clap::Command) -> anyhow::Result<i32> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&completions(args.shell, cmd))?;
    stdout.flush()?;
    Ok(super::exit::SUCCESS)
}

/// Runs `man`.
pub(crate) fn run_man(_args: &ManArgs, cmd: clap::Command) -> anyhow::Result<i32> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&man_page(cmd)?)?;
    stdout.flush()?;
    Ok(super::exit::SUCCESS)
}
