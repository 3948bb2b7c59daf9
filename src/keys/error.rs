//! Why keys could not be loaded, generated or used: one error for the key directory
//! and the keys it holds.

use std::path::PathBuf;

use mcp_sts_contract::jose::{SigningAlgorithm, SigningKeyError};

/// Why keys could not be loaded, generated or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing the directory failed.
    #[error("key directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not a PEM private key we can use.
    #[error("key file {0} is not a PKCS#8 P-256 or RSA (2048 bits or more) private key")]
    BadKeyFile(PathBuf),
    /// A key could not be read, generated or used.
    #[error(transparent)]
    Key(#[from] SigningKeyError),
    /// No key of the configured algorithm exists.
    #[error("no {0:?} key in the key directory")]
    NoSigningKey(SigningAlgorithm),
}
