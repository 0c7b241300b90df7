//! The JSON reader (not yet implemented).

use super::error::{SourceError, SourceErrorKind};
use super::input::{InputInfo, Stream};
use super::{RecordIter, SourceOptions};

pub(crate) fn open(
    _stream: Stream,
    info: InputInfo,
    _opts: &SourceOptions,
) -> Result<RecordIter, SourceError> {
    Err(SourceError::new(
        &info.name,
        SourceErrorKind::Malformed {
            format: "JSON",
            detail: "json input is not supported yet".into(),
        },
    ))
}
