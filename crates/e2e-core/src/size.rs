//! Byte counts as people read them, and the size of the pieces the tools stream.

/// Pieces streamed to an engine or a node: big enough that per-write overhead vanishes,
/// small enough that a slow consumer holds back little memory.
pub const STREAM_CHUNK: usize = 256 * 1024;

/// `999 B`, `1.5 kB`, `104.9 MB`: decimal (SI) units, as engines and registries print sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_decimal_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 kB");
        assert_eq!(human_bytes(104_857_600), "104.9 MB");
        assert_eq!(human_bytes(2_500_000_000), "2.5 GB");
        assert_eq!(human_bytes(7_000_000_000_000_000), "7000.0 TB");
    }
}
