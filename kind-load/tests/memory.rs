//! A 500 MB image into the 3 fixture nodes: no temporary files, and memory stays flat.
//! Peak RSS and blocks written come from the kernel (`wait4` rusage of the real binary).

mod common;

use common::*;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_kind-load");
const SIZE: usize = 500 * 1024 * 1024;

#[test]
fn five_hundred_mb_image_streams_without_temp_files_in_flat_memory() {
    let Some(tb) = e2e_testbed::require(&["DOCKER_HOST", "E2E_KIND_CLUSTER"]) else {
        return;
    };
    let host = tb.get("DOCKER_HOST").to_string();
    let cluster = tb.get("E2E_KIND_CLUSTER").to_string();
    let nodes = cluster_nodes(&host, &cluster);
    let name = format!("localhost/{}:big", unique("kl-500mb"));
    let mut clean = Cleanup::new(&host, &nodes);
    clean.build(&name, SIZE);

    let tmp = tempfile::tempdir().unwrap();
    let before_tmp = list_dir("/tmp");
    // Reaped with wait4 below (for its rusage), not Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(BIN)
        .env("TMPDIR", tmp.path())
        .env_remove("KIND_LOAD_NODES")
        .args(["--host", &host, "-n", &cluster, &name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    // Read stdout/stderr on threads so the child never blocks on a full pipe.
    let mut so = child.stdout.unwrap();
    let mut se = child.stderr.unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).unwrap();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).unwrap();
        s
    });
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child; `usage` is a valid out-pointer.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let out = out_t.join().unwrap();
    let err = err_t.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "kind-load failed: {status}\n{out}\n{err}"
    );

    let peak_rss_mb = usage.ru_maxrss as f64 / 1024.0; // KiB -> MiB
    let written_mb = usage.ru_oublock as f64 * 512.0 / 1e6;
    eprintln!(
        "500 MB image into {} nodes: peak RSS {peak_rss_mb:.1} MiB, filesystem writes {written_mb:.2} MB\n{err}",
        nodes.len()
    );
    let r = rows(&out, &name);
    assert_eq!(r.len(), 3, "{out}");
    for row in &r {
        assert_eq!(row[2], "loaded", "{out}");
        assert!(row[3].parse::<u64>().unwrap() > SIZE as u64, "{out}");
    }
    for n in &nodes {
        assert!(node_names(&host, n).contains(&name), "{n} lacks {name}");
    }
    // Memory: flat, far below the image size.
    assert!(peak_rss_mb < 100.0, "peak RSS {peak_rss_mb:.1} MiB");
    // No temporary files: TMPDIR untouched, nothing of ours appeared in /tmp, and the
    // process wrote (almost) nothing to any filesystem.
    assert_eq!(list_dir(tmp.path().to_str().unwrap()), Vec::<String>::new());
    let new_in_tmp: Vec<String> = list_dir("/tmp")
        .into_iter()
        .filter(|e| {
            !before_tmp.contains(e)
                && (e.contains("kind") || e.contains("images-tar") || e.ends_with(".tar"))
        })
        .collect();
    assert!(new_in_tmp.is_empty(), "{new_in_tmp:?}");
    assert!(
        written_mb < 5.0,
        "kind-load wrote {written_mb:.2} MB to disk"
    );
}

fn list_dir(d: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
