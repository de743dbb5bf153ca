//! How much memory this process may still use, so that a method needing O(n²) memory refuses a
//! too-large input with a clear error instead of being killed by the kernel (or sending the
//! machine into swap) half-way through.
//!
//! `Vec::try_reserve` is no such check on Linux: with overcommit the reservation succeeds and
//! the pages fail later, when they are touched. So the methods compare what they need with the
//! smallest of: the kernel's `MemAvailable` (`/proc/meminfo`), the cgroup v2 limit less its usage
//! (`/sys/fs/cgroup/memory.max` − `memory.current`: what a SLURM job or a container is allowed),
//! and `SDSS_CLUSTERING_MEMORY_LIMIT` (bytes, or with a `K`/`M`/`G`/`T` suffix) when set.
//! Where none of these can be read, the check passes and allocation decides.

use crate::error::{ClusterError, Result};

/// The environment variable that caps the memory the clustering methods assume they may use.
pub const MEMORY_LIMIT_ENV: &str = "SDSS_CLUSTERING_MEMORY_LIMIT";

/// Bytes this process may still allocate, as far as can be told; `None` when nothing is known.
pub fn available_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| parse_meminfo_available(&t));
    let cgroup = cgroup_headroom();
    let env = std::env::var(MEMORY_LIMIT_ENV)
        .ok()
        .and_then(|v| parse_size(&v));
    [meminfo, cgroup, env].into_iter().flatten().min()
}

/// `MemAvailable:  123456 kB` → bytes.
fn parse_meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The cgroup v2 limit of this process's group less what it uses now (`max` means no limit).
fn cgroup_headroom() -> Option<u64> {
    let group = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // cgroup v2 has one line, `0::/path`.
    let path = group.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let max = std::fs::read_to_string(dir.join("memory.max")).ok()?;
    let max: u64 = max.trim().parse().ok()?; // "max" (no limit) does not parse
    let current: u64 = std::fs::read_to_string(dir.join("memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(max.saturating_sub(current))
}

/// `"8G"`, `"512M"`, `"1048576"` → bytes (binary units).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let value: u64 = digits.parse().ok()?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches(['B', 'I'])
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    value.checked_mul(1u64 << shift)
}

/// Refuses `bytes` of working memory for `method` on `n_samples` when more than the memory
/// there is (`available`), naming the `alternative` that scales.
pub(crate) fn check_fits(
    method: &'static str,
    bytes: u64,
    n_samples: usize,
    available: Option<u64>,
    alternative: &'static str,
) -> Result<()> {
    match available {
        Some(avail) if bytes > avail => Err(ClusterError::TooLargeForMemory {
            method,
            bytes,
            available: avail,
            n_samples,
            alternative,
        }),
        _ => Ok(()),
    }
}

/// `n²·per_pair` bytes, saturating (a saturated need is refused by any finite limit).
pub(crate) fn quadratic_bytes(n: usize, per_pair: f64) -> u64 {
    let n = n as f64;
    let bytes = n * n * per_pair;
    if bytes >= u64::MAX as f64 {
        u64::MAX
    } else {
        bytes as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("2t"), Some(2 << 40));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999999999999T"), None);
    }

    #[test]
    fn meminfo_gives_bytes() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   16000000 kB\n";
        assert_eq!(parse_meminfo_available(text), Some(16_000_000 * 1024));
        assert_eq!(parse_meminfo_available("MemTotal: 5 kB\n"), None);
    }

    #[test]
    fn the_check_names_the_alternative() {
        assert!(check_fits("affinity propagation", 10, 5, Some(100), "x").is_ok());
        assert!(check_fits("affinity propagation", 10, 5, None, "x").is_ok());
        let err = check_fits(
            "affinity propagation",
            quadratic_bytes(100_000, 4.0),
            100_000,
            Some(8 << 30),
            "--method minibatch:k=...",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("affinity propagation"), "{err}");
        assert!(err.contains("100000"), "{err}");
        assert!(err.contains("--method minibatch"), "{err}");
        assert_eq!(quadratic_bytes(usize::MAX, 8.0), u64::MAX);
    }
}
