//! The key directory: PKCS#8 PEM files named `<created>-<alg>.pem`, mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::KeyError;
use crate::config::SigningAlgorithm;
use mcp_sts_contract::clock::UnixTime;
use mcp_sts_contract::jose::{SigningKey, algorithm_name};

/// A directory of signing keys.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    /// The directory at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Names of the key files, sorted: cheap enough to poll for rotations.
    pub(crate) fn listing(&self) -> Result<Vec<PathBuf>, KeyError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(KeyError::Io {
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| KeyError::Io {
                path: self.dir.clone(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pem") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Load every key in the directory.
    pub fn load(&self) -> Result<Vec<SigningKey>, KeyError> {
        let mut keys = Vec::new();
        for path in self.listing()? {
            let text = std::fs::read_to_string(&path).map_err(|source| KeyError::Io {
                path: path.clone(),
                source,
            })?;
            let pem = pem::parse(text.as_bytes()).map_err(|_| KeyError::BadKeyFile(path.clone()))?;
            if pem.tag() != "PRIVATE KEY" {
                return Err(KeyError::BadKeyFile(path));
            }
            let created = created_from_name(&path).or_else(|| modified_time(&path)).unwrap_or(0);
            let mut key =
                SigningKey::from_pkcs8(pem.contents(), created).map_err(|_| KeyError::BadKeyFile(path.clone()))?;
            key.immediate = is_immediate(&path);
            keys.push(key);
        }
        Ok(keys)
    }

    /// Generate a key, write it with mode 0600, and return it. It is always the
    /// newest key: its creation time is after every existing key's, even when a
    /// rotation follows a generation within the same second.
    pub fn generate(&self, algorithm: SigningAlgorithm, now: UnixTime) -> Result<SigningKey, KeyError> {
        self.write_new(algorithm, now, false)
    }

    /// Like [`KeyDir::generate`], but the key signs at once whatever the activation
    /// delay (its file name ends in `-now`): for replacing a compromised key.
    pub fn generate_immediate(&self, algorithm: SigningAlgorithm, now: UnixTime) -> Result<SigningKey, KeyError> {
        self.write_new(algorithm, now, true)
    }

    fn write_new(&self, algorithm: SigningAlgorithm, now: UnixTime, immediate: bool) -> Result<SigningKey, KeyError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| KeyError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let newest = self.listing()?.iter().filter_map(|p| created_from_name(p)).max();
        let created = newest.map_or(now, |n| now.max(n + 1));
        let (mut key, der) = SigningKey::generate(algorithm, created)?;
        key.immediate = immediate;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der));
        let suffix = if immediate { IMMEDIATE_SUFFIX } else { "" };
        let path = self.dir.join(format!(
            "{created}-{}{suffix}.pem",
            algorithm_name(algorithm).to_ascii_lowercase()
        ));
        write_private(&path, pem.as_bytes()).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(key)
    }

    /// Generate a key when none of `algorithm` exists yet; true when one was made.
    pub fn ensure(&self, algorithm: SigningAlgorithm, now: UnixTime) -> Result<bool, KeyError> {
        if self.load()?.iter().any(|k| k.algorithm == algorithm) {
            return Ok(false);
        }
        self.generate(algorithm, now)?;
        Ok(true)
    }

    /// Delete the files of keys whose publication window has closed. Returns their kids.
    pub fn prune(&self, ring: &super::KeyRing, now: UnixTime) -> Result<Vec<String>, KeyError> {
        let live: Vec<String> = ring.published(now).map(|k| k.kid.clone()).collect();
        let mut removed = Vec::new();
        for path in self.listing()? {
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(pem) = pem::parse(text.as_bytes()) else {
                continue;
            };
            let Ok(key) = SigningKey::from_pkcs8(pem.contents(), 0) else {
                continue;
            };
            if !live.contains(&key.kid) {
                std::fs::remove_file(&path).map_err(|source| KeyError::Io {
                    path: path.clone(),
                    source,
                })?;
                removed.push(key.kid);
            }
        }
        Ok(removed)
    }
}

/// File-name ending of keys that skip the activation delay.
const IMMEDIATE_SUFFIX: &str = "-now";

fn is_immediate(path: &Path) -> bool {
    path.file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| s.ends_with(IMMEDIATE_SUFFIX))
}

impl KeyDir {
    /// The file of the key with `kid`, if it is in the directory.
    pub fn file_of(&self, kid: &str) -> Option<PathBuf> {
        self.listing().ok()?.into_iter().find(|path| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|text| pem::parse(text.as_bytes()).ok())
                .and_then(|pem| SigningKey::from_pkcs8(pem.contents(), 0).ok())
                .is_some_and(|key| key.kid == kid)
        })
    }
}

fn created_from_name(path: &Path) -> Option<UnixTime> {
    let stem = path.file_stem()?.to_str()?;
    stem.split('-').next()?.parse().ok()
}

fn modified_time(path: &Path) -> Option<UnixTime> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    modified.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyRing;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mcp-sts-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn generated_keys_are_private_and_reloadable() {
        let dir = KeyDir::new(temp_dir("gen"));
        assert!(dir.ensure(SigningAlgorithm::ES256, 1000).unwrap());
        assert!(
            !dir.ensure(SigningAlgorithm::ES256, 1001).unwrap(),
            "an existing key is kept"
        );
        let files = dir.listing().unwrap();
        assert_eq!(files.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let keys = dir.load().unwrap();
        assert_eq!(keys[0].created, 1000);
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn a_rotation_in_the_same_second_still_makes_the_newest_key_sign() {
        let dir = KeyDir::new(temp_dir("same-second"));
        dir.generate(SigningAlgorithm::ES256, 1000).unwrap();
        let second = dir.generate(SigningAlgorithm::ES256, 1000).unwrap();
        let ring = KeyRing::new(dir.load().unwrap(), SigningAlgorithm::ES256, 330).unwrap();
        assert_eq!(
            ring.signing_key(1001).kid,
            second.kid,
            "it signs from its (bumped) creation second"
        );
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn a_delayed_key_is_published_before_it_signs() {
        let dir = KeyDir::new(temp_dir("delay"));
        let old = dir.generate(SigningAlgorithm::ES256, 1000).unwrap();
        let new = dir.generate(SigningAlgorithm::ES256, 2000).unwrap();
        let ring = KeyRing::with_activation_delay(dir.load().unwrap(), SigningAlgorithm::ES256, 330, 60).unwrap();
        let published = |now| ring.published(now).map(|k| k.kid.clone()).collect::<Vec<_>>();
        assert_eq!(ring.signing_key(2059).kid, old.kid, "not active yet");
        assert_eq!(
            published(2059),
            vec![new.kid.clone(), old.kid.clone()],
            "but already published"
        );
        assert_eq!(ring.signing_key(2060).kid, new.kid);
        assert_eq!(published(2389), vec![new.kid.clone(), old.kid.clone()]);
        assert_eq!(published(2390), vec![new.kid.clone()], "retired at 2060, grace 330");
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn an_immediate_key_signs_at_once_despite_the_delay() {
        let dir = KeyDir::new(temp_dir("immediate"));
        let old = dir.generate(SigningAlgorithm::ES256, 1000).unwrap();
        let new = dir.generate_immediate(SigningAlgorithm::ES256, 2000).unwrap();
        let ring = KeyRing::with_activation_delay(dir.load().unwrap(), SigningAlgorithm::ES256, 330, 600).unwrap();
        assert_eq!(ring.signing_key(2000).kid, new.kid, "no delay for --now");
        assert_eq!(ring.retired_at(&old, 2000), Some(2000));
        assert!(
            dir.file_of(&new.kid)
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("-es256-now.pem")
        );
        assert_eq!(dir.file_of("nope"), None);
        let _ = std::fs::remove_dir_all(dir.path());
    }

    #[test]
    fn rotation_publishes_the_old_key_until_its_tokens_expire() {
        let dir = KeyDir::new(temp_dir("rot"));
        let old = dir.generate(SigningAlgorithm::ES256, 1000).unwrap();
        let new = dir.generate(SigningAlgorithm::ES256, 2000).unwrap();
        let ring = KeyRing::new(dir.load().unwrap(), SigningAlgorithm::ES256, 330).unwrap();
        assert_eq!(ring.signing_key(2000).kid, new.kid, "the newest key signs");
        let published = |now| ring.published(now).map(|k| k.kid.clone()).collect::<Vec<_>>();
        assert_eq!(published(2100), vec![new.kid.clone(), old.kid.clone()]);
        assert_eq!(published(2329), vec![new.kid.clone(), old.kid.clone()]);
        assert_eq!(published(2330), vec![new.kid.clone()], "retired at 2000, grace 330");
        let removed = dir.prune(&ring, 2330).unwrap();
        assert_eq!(removed, vec![old.kid]);
        assert_eq!(dir.listing().unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(dir.path());
    }
}
