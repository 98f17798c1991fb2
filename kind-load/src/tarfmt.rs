//! The bits of the tar format kind-load reads (headers of `docker save`/`podman save`/OCI
//! layout archives, GNU long names and PAX records) and writes (the small archive of the final
//! import: regular files only).

/// A NUL-terminated header field.
pub fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Octal size field, or GNU base-256 for large files.
pub fn tar_size(f: &[u8]) -> Option<u64> {
    if f[0] & 0x80 != 0 {
        let mut v: u64 = (f[0] & 0x7f) as u64;
        for &b in &f[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let s = cstr(f);
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

/// The entry name of a header: `name`, with the USTAR `prefix` when there is one.
pub fn header_name(h: &[u8]) -> String {
    let n = cstr(&h[0..100]);
    let prefix = if &h[257..262] == b"ustar" {
        cstr(&h[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        n
    } else {
        format!("{prefix}/{n}")
    }
}

/// `"<len> <key>=<value>\n"` records of a PAX extended header.
pub fn pax_records(data: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|&b| b == b' ') else {
            break;
        };
        let Some(len) = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            break;
        };
        if len <= sp + 1 || len > rest.len() {
            break;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            out.push((
                String::from_utf8_lossy(&rec[..eq]).into_owned(),
                String::from_utf8_lossy(&rec[eq + 1..]).into_owned(),
            ));
        }
        rest = &rest[len..];
    }
    out
}

/// Writes a tar of regular files (GNU long names past 100 bytes).
#[derive(Default)]
pub struct TarWriter {
    out: Vec<u8>,
}

impl TarWriter {
    pub fn add(&mut self, name: &str, data: &[u8]) {
        if name.len() > 100 {
            self.header("././@LongLink", name.len() as u64 + 1, b'L');
            self.out.extend_from_slice(name.as_bytes());
            self.out.push(0);
            self.pad();
        }
        self.header(name, data.len() as u64, b'0');
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn header(&mut self, name: &str, size: u64, kind: u8) {
        let mut h = [0u8; 512];
        let n = name.as_bytes();
        let n = &n[..n.len().min(100)];
        h[..n.len()].copy_from_slice(n);
        h[100..107].copy_from_slice(b"0000444");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        self.out.extend_from_slice(&h);
    }

    fn pad(&mut self) {
        let n = self.out.len().div_ceil(512) * 512;
        self.out.resize(n, 0);
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&[0u8; 1024]);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_octal_and_base256() {
        assert_eq!(tar_size(b"00000001750\0"), Some(1000));
        let mut f = [0u8; 12];
        f[0] = 0x80;
        f[11] = 5;
        assert_eq!(tar_size(&f), Some(5));
    }

    #[test]
    fn pax_path_and_size() {
        let rec = b"29 path=a/very/long/name.tar\n14 size=12345\n";
        let r = pax_records(rec);
        assert_eq!(
            r,
            vec![
                ("path".to_string(), "a/very/long/name.tar".to_string()),
                ("size".to_string(), "12345".to_string())
            ]
        );
    }

    #[test]
    fn written_headers_have_valid_checksums_and_long_names() {
        let mut w = TarWriter::default();
        let long = format!("blobs/sha256/{}", "a".repeat(120));
        w.add("index.json", b"{}");
        w.add(&long, b"hello");
        let bytes = w.finish();
        assert_eq!(bytes.len() % 512, 0);
        // Header 1: index.json, checksum valid.
        let h = &bytes[..512];
        assert_eq!(header_name(h), "index.json");
        let sum: u32 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    b as u32
                }
            })
            .sum();
        assert_eq!(tar_size(&h[148..156]), Some(sum as u64));
        // Then a GNU long-name entry for the long name.
        assert_eq!(bytes[1024 + 156], b'L');
        assert_eq!(cstr(&bytes[1536..1536 + 200]), long);
    }
}
