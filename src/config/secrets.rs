//! Secret references: `env:NAME`, `file:/path`, `literal:VALUE` or a bare literal.

use crate::signature::{KeyError, Secret};

/// How a reference is named in messages: `env:`/`file:` references in full, literals never.
pub(super) fn describe_reference(reference: &str) -> String {
    if reference.starts_with("env:") || reference.starts_with("file:") {
        reference.to_string()
    } else {
        "(literal)".to_string()
    }
}

/// Bounded: a secret is short, and `file:/dev/zero` must fail, not hang start-up.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Why a secret reference gives no usable secret. The messages name the variable or file, never a
/// secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvNotSet(String),
    #[error("environment variable {0} is not valid UTF-8")]
    EnvNotUnicode(String),
    #[error("cannot read secret file {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("secret file {0} is larger than {MAX_SECRET_FILE} bytes")]
    TooLarge(String),
    #[error("resolves to an empty secret")]
    Empty,
    /// The secret is not a key the hook's scheme can use.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Resolves `env:NAME`, `file:/path` (one trailing newline trimmed), `literal:VALUE` or a literal.
pub fn resolve_secret(reference: &str) -> Result<Secret, SecretError> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        match std::env::var(name) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(SecretError::EnvNotSet(name.to_string()))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(SecretError::EnvNotUnicode(name.to_string()))
            }
        }
    } else if let Some(file) = reference.strip_prefix("file:") {
        let mut v = read_secret_file(file).map_err(|source| SecretError::Read {
            file: file.to_string(),
            source,
        })?;
        if v.len() as u64 > MAX_SECRET_FILE {
            return Err(SecretError::TooLarge(file.to_string()));
        }
        if v.ends_with('\n') {
            v.pop();
            if v.ends_with('\r') {
                v.pop();
            }
        }
        v
    } else if let Some(literal) = reference.strip_prefix("literal:") {
        literal.to_string()
    } else {
        reference.to_string()
    };
    if value.is_empty() {
        return Err(SecretError::Empty);
    }
    Ok(Secret::new(value.into_bytes()))
}

/// At most one byte more than [`MAX_SECRET_FILE`], so a larger file is noticed without reading it.
/// Opened without blocking and refused unless a regular file: a FIFO would block start-up or a
/// reload until a writer comes, and a device (`/dev/zero`, a terminal) is not a secret.
fn read_secret_file(file: &str) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(file)?;
    let t = f.metadata()?.file_type();
    if !t.is_file() {
        let what = if t.is_fifo() {
            "a FIFO (named pipe)"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_dir() {
            "a directory"
        } else {
            "not a file"
        };
        return Err(std::io::Error::other(format!(
            "not a regular file: it is {what}"
        )));
    }
    let mut v = String::new();
    f.take(MAX_SECRET_FILE + 1).read_to_string(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secret_trims_one_trailing_newline_and_names_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "from-file\n").unwrap();
        assert_eq!(
            resolve_secret(&format!("file:{}", f.display()))
                .unwrap()
                .expose(),
            b"from-file"
        );
        let err = resolve_secret("file:/dev/zero").unwrap_err().to_string();
        assert!(err.contains("/dev/zero"), "{err}");
        let err = resolve_secret("file:/nonexistent/secret")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/secret"), "{err}");
        let err = resolve_secret("file:/dev/null").unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::write(&f, "\n").unwrap();
        assert!(resolve_secret(&format!("file:{}", f.display())).is_err());
    }
}
