fn main() {
    std::process::exit(sechub_triage::cli::main());
}
