//! The Parquet reader (not yet implemented).

use super::error::{SourceError, SourceErrorKind};
use super::input::InputInfo;
use super::{RecordIter, SourceOptions};

pub(crate) fn open<T>(
    _input: T,
    info: InputInfo,
    _opts: &SourceOptions,
) -> Result<RecordIter, SourceError> {
    Err(SourceError::new(
        &info.name,
        SourceErrorKind::Malformed {
            format: "Parquet",
            detail: "parquet input is not supported yet".into(),
        },
    ))
}
