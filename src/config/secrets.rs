//! Secret references: `env:NAME`, `file:/path`, `literal:VALUE` or a bare literal.

use crate::signature::Secret;

/// How a reference is named in messages: `env:`/`file:` references in full, literals never.
pub(super) fn describe_reference(reference: &str) -> String {
    if reference.starts_with("env:") || reference.starts_with("file:") {
        reference.to_string()
    } else {
        "(literal)".to_string()
    }
}

/// Resolves `env:NAME`, `file:/path` (one trailing newline trimmed), `literal:VALUE` or a literal.
pub fn resolve_secret(reference: &str) -> Result<Secret, String> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        match std::env::var(name) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => {
                return Err(format!("environment variable {name} is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("environment variable {name} is not valid UTF-8"))
            }
        }
    } else if let Some(file) = reference.strip_prefix("file:") {
        // Bounded: a secret is short, and `file:/dev/zero` must fail, not hang start-up.
        const MAX_SECRET_FILE: u64 = 64 * 1024;
        let mut v = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(
                std::fs::File::open(file)
                    .map_err(|e| format!("cannot read secret file {file}: {e}"))?,
                MAX_SECRET_FILE + 1,
            ),
            &mut v,
        )
        .map_err(|e| format!("cannot read secret file {file}: {e}"))?;
        if v.len() as u64 > MAX_SECRET_FILE {
            return Err(format!(
                "secret file {file} is larger than {MAX_SECRET_FILE} bytes"
            ));
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
        return Err("resolves to an empty secret".to_string());
    }
    Ok(Secret::new(value.into_bytes()))
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
        let err = resolve_secret("file:/dev/zero").unwrap_err();
        assert!(err.contains("/dev/zero"), "{err}");
        let err = resolve_secret("file:/nonexistent/secret").unwrap_err();
        assert!(err.contains("/nonexistent/secret"), "{err}");
        std::fs::write(&f, "\n").unwrap();
        assert!(resolve_secret(&format!("file:{}", f.display())).is_err());
    }
}
