//! The V2 flags of `sechub-triage emulator` (flattened into its arguments):
//! seeding the OCSF store and configuring the V2 operations.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context as _;

use super::config::{ConflictScope, DisabledError, ResultIdentifiers, V2Config};
use super::seed::load_ocsf_seed_file;
use super::state::OcsfKey;
use super::synth::OCSF_SAMPLE_CSV_COLUMNS;
use crate::emulator::cli::EmulatorArgs;
use crate::emulator::config::{Bucket, DuplicatePolicy};
use crate::emulator::state::EmulatorState;
use crate::emulator::synth::SyntheticSpec;

/// `--v2-conflict-scope` choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ConflictScopeArg {
    /// Per entry: `ConflictException` in `UnprocessedFindings`.
    #[default]
    PerFinding,
    /// The whole request: HTTP 409 `ConflictException`.
    WholeRequest,
}

/// `--v2-result-identifiers` choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ResultIdentifiersArg {
    /// The identifier form the request used.
    #[default]
    AsRequested,
    /// Both forms for findings that exist.
    Both,
}

/// `--v2-disabled-error` choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DisabledErrorArg {
    /// HTTP 403 `AccessDeniedException`.
    #[default]
    AccessDenied,
    /// HTTP 400 `ValidationException`.
    Validation,
}

/// `--v2-duplicates` choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum V2DuplicatesArg {
    /// First occurrence processed, later ones `ValidationException`.
    #[default]
    FirstProcessed,
    /// Every occurrence `ValidationException`.
    AllRejected,
}

/// V2 (new Security Hub, OCSF) flags.
#[derive(Clone, Debug, clap::Args)]
pub struct V2Args {
    /// Seed the OCSF store from a file: `aws securityhub get-findings-v2`
    /// output ({"Findings": [...]}), a JSON array, or OCSF JSON Lines (the
    /// V2 export's OCSF_JSON). Repeatable.
    #[arg(long = "seed-ocsf", value_name = "PATH")]
    pub(crate) seed_ocsf: Vec<PathBuf>,
    /// Add N synthetic OCSF findings (the OCSF form of the findings
    /// `--synthetic N` makes with the same seed, Regions and accounts).
    #[arg(long, value_name = "N")]
    pub(crate) synthetic_ocsf: Option<usize>,
    /// Write the synthetic OCSF findings' identifiers as CSV
    /// (cloud.account.uid, finding_info.uid, metadata.product.uid, metadata.uid).
    #[arg(long, value_name = "PATH", requires = "synthetic_ocsf")]
    pub(crate) ocsf_keys_out: Option<PathBuf>,
    /// The new Security Hub is enabled nowhere.
    #[arg(long)]
    pub(crate) no_v2: bool,
    /// Regions where the new Security Hub is not enabled.
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    pub(crate) v2_disabled_regions: Vec<String>,
    /// `BatchUpdateFindingsV2` rate (default 10/s).
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) batch_update_v2_rate: Option<f64>,
    /// `BatchUpdateFindingsV2` burst (default 30).
    #[arg(long, value_name = "N")]
    pub(crate) batch_update_v2_burst: Option<u32>,
    /// `GetFindingsV2` rate (default 10/s).
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) get_findings_v2_rate: Option<f64>,
    /// `GetFindingsV2` burst (default 30).
    #[arg(long, value_name = "N")]
    pub(crate) get_findings_v2_burst: Option<u32>,
    /// `DescribeSecurityHubV2` rate (default 10/s).
    #[arg(long, value_name = "PER_SECOND")]
    pub(crate) describe_hub_v2_rate: Option<f64>,
    /// `DescribeSecurityHubV2` burst (default 30).
    #[arg(long, value_name = "N")]
    pub(crate) describe_hub_v2_burst: Option<u32>,
    /// Per-request probability of HTTP 409 `ConflictException` on
    /// `BatchUpdateFindingsV2`.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub(crate) v2_request_conflict: f64,
    /// Per-finding probability that a `BatchUpdateFindingsV2` entry is in
    /// neither result list (and not applied).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub(crate) v2_omit_result: f64,
    /// Per-finding probability of an unprocessed entry whose `ErrorCode` the
    /// model does not know.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub(crate) v2_unknown_error_code: f64,
    /// Per-finding probability of an unprocessed entry without `ErrorCode`.
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub(crate) v2_missing_error_code: f64,
    /// How real conflicts are reported.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) v2_conflict_scope: ConflictScopeArg,
    /// Which identifier forms result entries carry.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) v2_result_identifiers: ResultIdentifiersArg,
    /// The error of the V2 operations where V2 is not enabled.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) v2_disabled_error: DisabledErrorArg,
    /// Duplicated identifiers in one `BatchUpdateFindingsV2`.
    #[arg(long, value_enum, default_value_t)]
    pub(crate) v2_duplicates: V2DuplicatesArg,
    /// Most findings per `BatchUpdateFindingsV2`.
    #[arg(long, default_value_t = 100)]
    pub(crate) v2_max_identifiers: usize,
    /// An empty identifier list gets empty results instead of a 400.
    #[arg(long)]
    pub(crate) v2_allow_empty_identifiers: bool,
    /// A `BatchUpdateFindingsV2` setting no field is a 400.
    #[arg(long)]
    pub(crate) v2_reject_no_update_fields: bool,
}

impl V2Args {
    /// The V2 configuration these flags describe (validated with the rest).
    pub(crate) fn to_config(&self) -> V2Config {
        let mut c = V2Config {
            enabled: !self.no_v2,
            disabled_regions: self.v2_disabled_regions.iter().cloned().collect(),
            ..V2Config::default()
        };
        let set = |b: &mut Bucket, rate: Option<f64>, burst: Option<u32>| {
            if let Some(r) = rate {
                b.rate = r;
            }
            if let Some(n) = burst {
                b.burst = n;
            }
        };
        set(
            &mut c.throttle.batch_update_v2,
            self.batch_update_v2_rate,
            self.batch_update_v2_burst,
        );
        set(
            &mut c.throttle.get_findings_v2,
            self.get_findings_v2_rate,
            self.get_findings_v2_burst,
        );
        set(
            &mut c.throttle.describe_hub_v2,
            self.describe_hub_v2_rate,
            self.describe_hub_v2_burst,
        );
        c.faults.request_conflict = self.v2_request_conflict;
        c.faults.omit_result = self.v2_omit_result;
        c.faults.unknown_error_code = self.v2_unknown_error_code;
        c.faults.missing_error_code = self.v2_missing_error_code;
        let s = &mut c.semantics;
        s.conflict_scope = match self.v2_conflict_scope {
            ConflictScopeArg::PerFinding => ConflictScope::PerFinding,
            ConflictScopeArg::WholeRequest => ConflictScope::WholeRequest,
        };
        s.result_identifiers = match self.v2_result_identifiers {
            ResultIdentifiersArg::AsRequested => ResultIdentifiers::AsRequested,
            ResultIdentifiersArg::Both => ResultIdentifiers::Both,
        };
        s.disabled_error = match self.v2_disabled_error {
            DisabledErrorArg::AccessDenied => DisabledError::AccessDeniedException,
            DisabledErrorArg::Validation => DisabledError::ValidationException,
        };
        s.duplicates = match self.v2_duplicates {
            V2DuplicatesArg::FirstProcessed => DuplicatePolicy::FirstProcessed,
            V2DuplicatesArg::AllRejected => DuplicatePolicy::AllRejected,
        };
        s.max_identifiers = self.v2_max_identifiers;
        s.allow_empty_identifiers = self.v2_allow_empty_identifiers;
        s.reject_no_update_fields = self.v2_reject_no_update_fields;
        c
    }

    /// Seeds the OCSF store as the flags say; synthetic findings use the
    /// seed, Regions and accounts of the ASFF flags (`--synthetic-seed`,
    /// `--synthetic-regions`, `--synthetic-accounts`).
    pub fn seed(&self, state: &EmulatorState, args: &EmulatorArgs) -> anyhow::Result<()> {
        for path in &self.seed_ocsf {
            let n = load_ocsf_seed_file(state, path)?;
            tracing::info!(file = %path.display(), findings = n, "emulator: seeded OCSF findings from file");
        }
        if let Some(count) = self.synthetic_ocsf {
            let mut spec =
                SyntheticSpec::new(count, args.synthetic_seed.unwrap_or(args.random_seed));
            if !args.synthetic_regions.is_empty() {
                spec.regions = args.synthetic_regions.clone();
            }
            if !args.synthetic_accounts.is_empty() {
                spec.accounts = args.synthetic_accounts.clone();
            }
            let keys = state.seed_synthetic_ocsf(&spec);
            tracing::info!(
                findings = keys.len(),
                seed = spec.seed,
                "emulator: seeded synthetic OCSF findings"
            );
            if let Some(path) = &self.ocsf_keys_out {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                write_ocsf_keys_csv(&keys, io::BufWriter::new(file))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Ok(())
    }
}

/// Writes the identifier CSV (header [`OCSF_SAMPLE_CSV_COLUMNS`]).
pub(crate) fn write_ocsf_keys_csv(keys: &[OcsfKey], w: impl Write) -> io::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(OCSF_SAMPLE_CSV_COLUMNS)?;
    for k in keys {
        out.write_record([
            k.triple.cloud_account_uid.as_str(),
            k.triple.finding_info_uid.as_str(),
            k.triple.metadata_product_uid.as_str(),
            k.metadata_uid.as_str(),
        ])?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: V2Args,
    }

    #[test]
    fn flags_map_to_config_and_seed() {
        let a = Cli::try_parse_from([
            "emulator",
            "--v2-disabled-regions",
            "eu-west-1,ap-south-1",
            "--batch-update-v2-rate",
            "2",
            "--get-findings-v2-burst",
            "4",
            "--v2-omit-result",
            "0.1",
            "--v2-conflict-scope",
            "whole-request",
            "--v2-result-identifiers",
            "both",
            "--v2-disabled-error",
            "validation",
            "--v2-reject-no-update-fields",
            "--synthetic-ocsf",
            "20",
        ])
        .unwrap()
        .args;
        let c = a.to_config();
        assert!(c.enabled_in("us-east-1") && !c.enabled_in("ap-south-1"));
        assert_eq!(c.throttle.batch_update_v2, Bucket::new(2.0, 30));
        assert_eq!(c.throttle.get_findings_v2, Bucket::new(10.0, 4));
        assert_eq!(c.faults.omit_result, 0.1);
        assert_eq!(c.semantics.conflict_scope, ConflictScope::WholeRequest);
        assert_eq!(c.semantics.result_identifiers, ResultIdentifiers::Both);
        assert_eq!(
            c.semantics.disabled_error,
            DisabledError::ValidationException
        );
        assert!(c.semantics.reject_no_update_fields);
        assert!(c.validate().is_ok());

        // No flags: exactly the defaults.
        let none = Cli::try_parse_from(["emulator"]).unwrap().args;
        assert_eq!(none.to_config(), V2Config::default());
    }

    #[derive(Parser)]
    struct Full {
        #[command(flatten)]
        args: EmulatorArgs,
    }

    #[test]
    fn seed_ocsf_and_synthetic_ocsf_fill_the_v2_store() {
        let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/findings-ocsf.jsonl");
        let dir = tempfile::tempdir().unwrap();
        let keys_out = dir.path().join("keys.csv");
        let args = Full::try_parse_from([
            "emulator",
            "--seed-ocsf",
            samples,
            "--synthetic-ocsf",
            "20",
            "--synthetic-seed",
            "3",
            "--synthetic-regions",
            "ap-south-1",
            "--ocsf-keys-out",
            keys_out.to_str().unwrap(),
        ])
        .unwrap()
        .args;
        let state = EmulatorState::default();
        args.v2.seed(&state, &args).unwrap();
        // The 1,000 committed samples plus 20 synthetic ones (other seed).
        assert_eq!(state.v2_len(), 1020);
        assert!(state.is_empty(), "the ASFF store is untouched");
        let csv = std::fs::read_to_string(&keys_out).unwrap();
        assert_eq!(csv.lines().count(), 21);
        assert!(
            csv.lines().skip(1).all(|l| l.contains("ap-south-1")),
            "{csv}"
        );
        // A bad file stops with its name.
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"metadata\": {}}\n").unwrap();
        let args = Full::try_parse_from(["emulator", "--seed-ocsf", bad.to_str().unwrap()])
            .unwrap()
            .args;
        let e = args.v2.seed(&state, &args).unwrap_err().to_string();
        assert!(e.contains("bad.jsonl: finding 1 (line 1)"), "{e}");
    }

    #[test]
    fn keys_csv() {
        let mut buf = Vec::new();
        let k = OcsfKey {
            metadata_uid: "m".into(),
            triple: crate::emulator::v2::ocsf::OcsfTriple {
                cloud_account_uid: "1".into(),
                finding_info_uid: "a,b".into(),
                metadata_product_uid: "p".into(),
            },
        };
        write_ocsf_keys_csv(&[k], &mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "cloud.account.uid,finding_info.uid,metadata.product.uid,metadata.uid\n1,\"a,b\",p,m\n"
        );
    }
}
