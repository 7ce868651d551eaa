//! Breached passwords: a new password is looked up among passwords known from breaches, by
//! k-anonymity (only the first five hex digits of its SHA-1 leave the server, as with Have I
//! Been Pwned's range API), and/or in a local sorted list of SHA-1 hashes. An unreachable
//! service lets the password through with a warning, unless configured to refuse.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use super::policy::PasswordRejected;
use crate::config::PwnedConfig;
use crate::state::AppState;

fn sha1_hex(password: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    hex::encode_upper(d.as_ref())
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default()
    })
}

/// Refuses a password found among breached ones.
pub async fn check(state: &AppState, password: &str) -> Result<(), PasswordRejected> {
    let config = &state.server.pwned;
    if config.pwned_url.is_none() && config.pwned_file.is_none() {
        return Ok(());
    }
    let hash = sha1_hex(password);
    if let Some(file) = config.pwned_file.clone() {
        let h = hash.clone();
        let found = tokio::task::spawn_blocking(move || in_file(&file, &h)).await;
        match found {
            Ok(Ok(true)) => return Err(PasswordRejected::Breached),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => unavailable(config, &e.to_string())?,
            Err(e) => unavailable(config, &e.to_string())?,
        }
    }
    if config.pwned_url.is_some() {
        match in_range(config, &hash).await {
            Ok(true) => return Err(PasswordRejected::Breached),
            Ok(false) => {}
            Err(e) => unavailable(config, &e)?,
        }
    }
    Ok(())
}

fn unavailable(config: &PwnedConfig, why: &str) -> Result<(), PasswordRejected> {
    if config.pwned_fail_closed {
        tracing::warn!(
            error = why,
            "breached-password check unavailable: password refused"
        );
        Err(PasswordRejected::BreachCheckUnavailable)
    } else {
        tracing::warn!(
            error = why,
            "breached-password check unavailable: password accepted"
        );
        Ok(())
    }
}

/// Asks the range API for the suffixes of the hash's first five digits.
async fn in_range(config: &PwnedConfig, hash: &str) -> Result<bool, String> {
    let Some(base) = &config.pwned_url else {
        return Ok(false);
    };
    let (prefix, suffix) = hash.split_at(5);
    let url = format!("{}/range/{prefix}", base.as_str().trim_end_matches('/'));
    let res = http()
        .get(url)
        .header("Add-Padding", "true")
        .timeout(Duration::from_millis(config.pwned_timeout_ms.max(1)))
        .send()
        .await
        .map_err(|e| format!("range api: {e}"))?;
    if !res.status().is_success() {
        return Err(format!("range api: status {}", res.status()));
    }
    let body = res.text().await.map_err(|e| format!("range api: {e}"))?;
    Ok(body.lines().any(|line| {
        let (s, count) = line.trim().split_once(':').unwrap_or((line.trim(), "1"));
        s.eq_ignore_ascii_case(suffix) && !matches!(count.trim().parse::<u64>(), Ok(0))
    }))
}

/// Binary search of a sorted file of `HASH[:COUNT]` lines, by byte offset.
fn in_file(path: &Path, hash: &str) -> std::io::Result<bool> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let (mut lo, mut hi) = (0u64, len);
    // Invariant: the line starting at or after `lo` is the first that may match.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (line, start, consumed) = line_after(&mut file, mid)?;
        match line {
            Some(l) if key(&l).as_str() < hash => lo = start + consumed,
            _ => hi = mid,
        }
    }
    let (line, _, _) = line_after(&mut file, lo)?;
    Ok(line.is_some_and(|l| key(&l) == hash))
}

fn key(line: &str) -> String {
    line.split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_uppercase()
}

/// The first whole line starting at or after `offset` (at `offset` itself when it begins a
/// line), where it starts, and its length with its line end.
fn line_after(
    file: &mut std::fs::File,
    offset: u64,
) -> std::io::Result<(Option<String>, u64, u64)> {
    let mut start = offset;
    if offset > 0 {
        file.seek(SeekFrom::Start(offset - 1))?;
        let mut b = [0u8; 1];
        file.read_exact(&mut b)?;
        if b[0] != b'\n' {
            let mut r = BufReader::new(&mut *file);
            let mut skipped = Vec::new();
            r.read_until(b'\n', &mut skipped)?;
            start = offset + skipped.len() as u64;
        }
    }
    file.seek(SeekFrom::Start(start))?;
    let mut r = BufReader::new(&mut *file);
    let mut line = String::new();
    let n = r.read_line(&mut line)?;
    if n == 0 {
        return Ok((None, start, 0));
    }
    let l = line.trim_end_matches(['\n', '\r']).to_owned();
    Ok((Some(l), start, n as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sorted_file_is_searched_by_hash() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("pwned.txt");
        let mut hashes: Vec<String> = ["password", "hunter2", "correct horse", "letmein", "x"]
            .iter()
            .map(|p| sha1_hex(p))
            .collect();
        hashes.sort();
        let body: String = hashes.iter().map(|h| format!("{h}:3\n")).collect();
        std::fs::write(&path, body)?;
        for p in ["password", "hunter2", "correct horse", "letmein", "x"] {
            assert!(in_file(&path, &sha1_hex(p))?, "{p}");
        }
        for p in ["not in it", "", "Password"] {
            assert!(!in_file(&path, &sha1_hex(p))?, "{p}");
        }
        Ok(())
    }
}
