//! The load protocol between kind-load and a node: one exec per node runs [`SCRIPT`] with
//! `sh`, and kind-load writes frames to its stdin, each a line `OP ARGS...` followed by the
//! bytes it announces:
//!
//! - `hold NAME SIZE MANIFEST` + SIZE bytes: import (without unpacking) the holder, a tiny
//!   image whose manifest references the blobs to come, so containerd's GC keeps each of
//!   them from the moment it is committed (see [`crate::repack`]); `ctr import` creates it
//!   atomically, under its own lease. It is removed when the script ends, however it ends;
//! - `blob SIZE REF` + SIZE bytes: `ctr content ingest` them (containerd hashes and stores);
//! - `ref LABEL`: one more reference on the holder's manifest (a blob not announced up front);
//! - `import SIZE` + SIZE bytes: `ctr images import` that tar (names the images and unpacks),
//!   then print [`LISTED`] and `ctr images ls`, which is the verification, and stop.
//!
//! Stdin ending anywhere else fails the script, so a cut-off load never creates an image; a
//! failed script also removes its own unfinished ingest (containerd keeps the part of a blob
//! written so far, and 1.6's `ctr` cannot abort it), and every run first removes unfinished
//! kind-load ingests nobody has written to for 10 minutes (left by a node that went away
//! mid-load). `dd` reads exactly the announced bytes in 1 MiB blocks (GNU coreutils, in every
//! Kind node).

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::containerd::Platforms;
use crate::tarfmt::TarWriter;

/// The line before `ctr images ls` in the script's output.
pub const LISTED: &str = "@@kind-load: images";

/// Run as `sh -c SCRIPT kind-load SNAPSHOTTER INGEST_DIR REF_PREFIX [ctr import flags...]`.
pub const SCRIPT: &str = r#"set -uf
snap=$1 ingest=$2 mine=$3; shift 3
ctr() { command ctr --namespace=k8s.io "$@"; }
take() { dd bs=1M iflag=fullblock,count_bytes count="$1" status=none; }
die() { echo "kind-load: $*" >&2; exit 1; }
hold= ok=
# The holder goes in the background (the load is done with it; nobody waits for this). The
# CRI plugin may re-create its name just after it is removed: so twice.
unhold() {
  if [ -n "$hold" ]; then
    { ctr images rm "$hold"; sleep 0.2; ctr images rm "$hold"; } </dev/null >/dev/null 2>&1 &
  fi
}
# Unfinished ingests (directories holding the ref and the bytes so far): `ours` removes this
# run's, `stale` those of any kind-load run not written to for 10 minutes.
ingests() {
  [ -d "$ingest" ] || return 0
  find "$ingest" -mindepth 1 -maxdepth 1 -type d | while read -r d; do
    r=$(cat "$d/ref" 2>/dev/null) || continue
    case $r in
    */"$mine"*) [ "$1" = ours ] && rm -rf "$d" ;;
    */kind-load-*) [ "$1" = stale ] && [ -n "$(find "$d/data" -mmin +10 2>/dev/null)" ] && rm -rf "$d" ;;
    esac
  done
}
finish() { unhold; [ -n "$ok" ] || ingests ours; }
trap finish EXIT
ingests stale
while read -r op a b c; do
  case $op in
  hold)
    hold=$a holder=$c
    take "$b" | ctr images import --no-unpack - >/dev/null || die '`ctr images import` of the holder failed' ;;
  blob)
    take "$a" | ctr content ingest --expected-size "$a" "$b" || die '`ctr content ingest` failed' ;;
  ref)
    ctr content label "$holder" "$a" >/dev/null || die '`ctr content label` failed' ;;
  import)
    take "$a" | ctr images import --digests --snapshotter="$snap" "$@" - ||
      die '`ctr images import` failed'
    ok=1
    echo "@@kind-load: images"
    ctr images ls
    exit 0 ;;
  *) die "unexpected frame \`$op\`" ;;
  esac
done
die 'the image stream ended early (cut off); nothing of it was imported'
"#;

/// The exec's command line: `ingest_dir` is the content store's `ingest` directory,
/// `token` the one of [`crate::repack::Plan`] (its ingests are `kind-load-<token>-<n>`).
pub fn load_cmd(
    snapshotter: &str,
    ingest_dir: &str,
    token: &str,
    platforms: &Platforms,
) -> Vec<String> {
    let mut v = vec![
        "sh".to_string(),
        "-c".to_string(),
        SCRIPT.to_string(),
        "kind-load".to_string(),
        snapshotter.to_string(),
        ingest_dir.to_string(),
        ingest_prefix(token),
    ];
    v.extend(platforms.ctr_flags());
    v
}

/// The holder: a tiny image unique to this run whose manifest lists `digests` as its layers,
/// which makes containerd's GC keep them. It is named `sha256:<its config digest>`, the one
/// name containerd's CRI plugin would add to it, so removing that name removes it for good.
pub fn hold(token: &str, digests: &[String]) -> Bytes {
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Labels": {"kind-load.run": token}},
    })
    .to_string();
    let config_digest = sha256(config.as_bytes());
    let name = config_digest.clone();
    let layers: Vec<serde_json::Value> = digests
        .iter()
        .map(|d| serde_json::json!({"mediaType": OCI_LAYER, "digest": d, "size": 0}))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": layers,
    })
    .to_string();
    let manifest_digest = sha256(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"io.containerd.image.name": name},
        }],
    })
    .to_string();
    let mut t = TarWriter::default();
    t.add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.add(&blob_path(&config_digest), config.as_bytes());
    t.add(&blob_path(&manifest_digest), manifest.as_bytes());
    t.add("index.json", index.as_bytes());
    let tar = t.finish();
    let mut out = format!("hold {name} {} {manifest_digest}\n", tar.len()).into_bytes();
    out.extend_from_slice(&tar);
    Bytes::from(out)
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// `blobs/sha256/<hex>` for `sha256:<hex>`.
pub fn blob_path(digest: &str) -> String {
    format!("blobs/{}", digest.replacen(':', "/", 1))
}

/// The prefix of a run's ingest refs.
pub fn ingest_prefix(token: &str) -> String {
    format!("kind-load-{token}-")
}

/// `blob SIZE REF` (the bytes follow as their own chunks).
pub fn blob(size: u64, reference: &str) -> Bytes {
    Bytes::from(format!("blob {size} {reference}\n"))
}

/// `ref LABEL`
pub fn reference(n: usize, digest: &str) -> Bytes {
    Bytes::from(format!("ref {}\n", ref_label(n, digest)))
}

/// `import SIZE` + the tar.
pub fn import(tar: Vec<u8>) -> Bytes {
    let mut out = format!("import {}\n", tar.len()).into_bytes();
    out.extend_from_slice(&tar);
    Bytes::from(out)
}

fn ref_label(n: usize, digest: &str) -> String {
    format!("containerd.io/gc.ref.content.kind-load.{n}={digest}")
}

/// Splits the script's stdout into ctr's import output and the `ctr images ls` listing.
pub fn split_output(stdout: &str) -> (&str, Option<&str>) {
    match stdout.find(LISTED) {
        Some(i) => {
            let rest = &stdout[i + LISTED.len()..];
            (&stdout[..i], Some(rest.strip_prefix('\n').unwrap_or(rest)))
        }
        None => (stdout, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_lines_then_bytes() {
        let h = hold("t1", &["sha256:aa".to_string()]);
        let nl = h.iter().position(|&b| b == b'\n').unwrap();
        let line = String::from_utf8_lossy(&h[..nl]).into_owned();
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], "hold");
        assert!(f[1].starts_with("sha256:"), "{line}");
        assert_eq!(f[2].parse::<usize>().unwrap(), h.len() - nl - 1);
        // The holder's manifest, named in the line, lists the announced digest as a layer.
        let mut a = tar::Archive::new(&h[nl + 1..]);
        let mut found = false;
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            if path == blob_path(f[1]) {
                // Named by its config's digest, which names the run.
                assert_eq!(sha256(&data), f[1]);
                assert!(String::from_utf8_lossy(&data).contains(r#""kind-load.run":"t1""#));
            }
            if path == blob_path(f[3]) {
                assert_eq!(sha256(&data), f[3]);
                let m: serde_json::Value = serde_json::from_slice(&data).unwrap();
                assert_eq!(m["layers"][0]["digest"], "sha256:aa");
                found = true;
            }
        }
        assert!(found);
        assert_eq!(&blob(5, "r")[..], b"blob 5 r\n");
        assert_eq!(&import(b"xy".to_vec())[..], b"import 2\nxy");
    }

    #[test]
    fn the_listing_follows_the_marker() {
        let (ctr, ls) = split_output("unpacking a...done\n@@kind-load: images\nREF TYPE\nx y\n");
        assert_eq!(ctr, "unpacking a...done\n");
        assert_eq!(ls, Some("REF TYPE\nx y\n"));
        assert_eq!(split_output("nothing").1, None);
    }

    #[test]
    fn the_command_passes_snapshotter_and_platform_flags() {
        let c = load_cmd(
            "overlayfs",
            "/var/lib/containerd/io.containerd.content.v1.content/ingest",
            "t1-0",
            &Platforms::One("linux/arm64".into()),
        );
        assert_eq!(c[0..2], ["sh", "-c"]);
        assert_eq!(
            c[3..],
            [
                "kind-load",
                "overlayfs",
                "/var/lib/containerd/io.containerd.content.v1.content/ingest",
                "kind-load-t1-0-",
                "--platform=linux/arm64"
            ]
        );
        assert!(SCRIPT.contains(LISTED));
    }
}
