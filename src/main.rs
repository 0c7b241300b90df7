//! The `sechub-triage` command: everything is in the library (`sechub_triage::cli`).

fn main() {
    std::process::exit(sechub_triage::cli::main());
}
