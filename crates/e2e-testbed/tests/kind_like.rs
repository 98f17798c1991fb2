//! The testbed's Kind-like clusters through its `kind` stand-in (scripts/testbed/kind): real
//! kubelets on containerd in unprivileged node containers. Each cluster test creates uniquely
//! named clusters and deletes them on the way out, even on failure (`ClusterGuard`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEYS: &[&str] = &[
    "DOCKER_HOST",
    "E2E_KIND_PATH",
    "E2E_KIND_NODE_IMAGE",
    "E2E_KUBECTL",
    "E2E_REDIS_IMAGE",
];

struct Env {
    tb: e2e_testbed::Testbed,
    path: String,
    /// `KIND_EXPERIMENTAL_PROVIDER` for kind, and the CLI the test inspects nodes with.
    provider: &'static str,
}

impl Env {
    fn load(keys: &[&str]) -> Option<Env> {
        let tb = e2e_testbed::require(keys)?;
        // The stand-in first on PATH, as the env file's E2E_KIND_PATH is meant to be used, and
        // this build's kind-load next (`kind load` delegates to it).
        let kind_load_dir = kind_load_bin()
            .and_then(|p| p.parent().map(|d| format!("{}:", d.display())))
            .unwrap_or_default();
        let path = format!(
            "{}:{kind_load_dir}{}",
            tb.get("E2E_KIND_PATH"),
            std::env::var("PATH").unwrap_or_default()
        );
        Some(Env {
            tb,
            path,
            provider: "docker",
        })
    }

    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("PATH", &self.path)
            .env("DOCKER_HOST", self.tb.get("DOCKER_HOST"))
            .env("KIND_EXPERIMENTAL_PROVIDER", self.provider)
            .stdin(Stdio::null());
        c
    }

    fn kind(&self, args: &[&str]) -> Output {
        let out = self.cmd("kind").args(args).output().expect("run kind");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "$ kind {}\n{}{}",
            args.join(" "),
            if stdout.len() > 1000 {
                "(long stdout)\n"
            } else {
                &stdout
            },
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn kind_ok(&self, args: &[&str]) -> String {
        let out = self.kind(args);
        assert!(out.status.success(), "kind {} failed", args.join(" "));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The provider's CLI (docker or podman).
    fn docker(&self, args: &[&str]) -> Output {
        self.cmd(self.provider)
            .args(args)
            .output()
            .expect("run the engine CLI")
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A cluster made by the stand-in; deleted (with `kind delete cluster`) when dropped.
struct ClusterGuard<'a> {
    env: &'a Env,
    name: String,
    kubeconfig: PathBuf,
}

impl ClusterGuard<'_> {
    fn kubectl(&self, args: &[&str]) -> Output {
        let out = self
            .env
            .cmd(self.env.tb.get("E2E_KUBECTL"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl");
        out
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "[{}] kubectl {} failed: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn apply(&self, yaml: &str) {
        let mut child = self
            .env
            .cmd(self.env.tb.get("E2E_KUBECTL"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl apply");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "[{}] kubectl apply failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn nodes_ready(&self) -> Vec<(String, bool)> {
        let out = self.kubectl(&[
            "get",
            "nodes",
            "-o",
            r#"jsonpath={range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(n, s)| (n.to_string(), s == "True"))
            .collect()
    }

    fn node_containers(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .env
            .kind_ok(&["get", "nodes", "--name", &self.name])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    fn diagnostics(&self) -> String {
        let o = self.kubectl(&["get", "pods", "-A", "-o", "wide"]);
        let e = self.kubectl(&["get", "events", "-A"]);
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&e.stdout)
        )
    }
}

impl Drop for ClusterGuard<'_> {
    fn drop(&mut self) {
        let _ = self
            .env
            .cmd("kind")
            .args(["delete", "cluster", "--name", &self.name, "--kubeconfig"])
            .arg(&self.kubeconfig)
            .output();
    }
}

fn create_cluster<'a>(
    env: &'a Env,
    dir: &Path,
    prefix: &str,
    config: &str,
) -> (ClusterGuard<'a>, Duration) {
    let name = e2e_testbed::unique_name(prefix);
    let cfg = dir.join(format!("{name}.yaml"));
    std::fs::write(&cfg, config).unwrap();
    let kubeconfig = dir.join(format!("{name}.kubeconfig"));
    let guard = ClusterGuard {
        env,
        name: name.clone(),
        kubeconfig: kubeconfig.clone(),
    };
    let t0 = Instant::now();
    env.kind_ok(&[
        "create",
        "cluster",
        "--name",
        &name,
        "--config",
        cfg.to_str().unwrap(),
        "--wait",
        "120s",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    let took = t0.elapsed();
    eprintln!("cluster {name} created with every node Ready in {took:.1?}");
    (guard, took)
}

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Sends a Redis PING to ADDR, returns the reply line.
fn redis_ping(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"PING\r\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// Redis PING to port 6379 of POD over kube-rs' port-forward (websocket through the API server).
fn kube_portforward_ping(kubeconfig: &Path, pod: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(cfg).unwrap();
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client, "default");
        let mut pf = pods.portforward(pod, &[6379]).await.expect("portforward");
        let mut s = pf.take_stream(6379).unwrap();
        s.write_all(b"PING\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("no answer through the port-forward")
            .unwrap();
        drop(s);
        pf.abort();
        String::from_utf8_lossy(&buf[..n]).trim().to_string()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kind_load_bin() -> Option<PathBuf> {
    let root = e2e_testbed::workspace_root();
    [
        "target/debug/kind-load",
        "target/release/kind-load",
        "target/bin/kind-load",
    ]
    .iter()
    .map(|p| root.join(p))
    .find(|p| p.exists())
}

/// An image of our own (the testbed's Redis, re-tagged): removed from the engine when dropped.
struct TestImage<'a> {
    env: &'a Env,
    name: String,
}

impl<'a> TestImage<'a> {
    fn new(env: &'a Env) -> Self {
        let name = format!(
            "localhost/{}:v1",
            e2e_testbed::unique_name("kind-like-test")
        );
        env.docker_ok(&["tag", env.tb.get("E2E_REDIS_IMAGE"), &name]);
        TestImage { env, name }
    }
}

impl Drop for TestImage<'_> {
    fn drop(&mut self) {
        let _ = self.env.docker(&["rmi", &self.name]);
    }
}

fn deployment(name: &str, image: &str, replicas: usize) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      tolerations: [{{key: node-role.kubernetes.io/master, operator: Exists, effect: NoSchedule}}]
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {{matchLabels: {{app: {name}}}}}
            topologyKey: kubernetes.io/hostname
      terminationGracePeriodSeconds: 1
      containers:
      - name: redis
        image: {image}
        imagePullPolicy: Never
        ports: [{{containerPort: 6379}}]
        readinessProbe: {{exec: {{command: [redis-cli, ping]}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  type: NodePort
  selector: {{app: {name}}}
  ports: [{{port: 6379, targetPort: 6379, nodePort: 30080}}]
"#
    )
}

/// Pod name per node of the Deployment's pods that are Ready.
fn ready_pods_by_node(c: &ClusterGuard, app: &str) -> Vec<(String, String)> {
    let out = c.kubectl(&[
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        r#"jsonpath={range .items[*]}{.spec.nodeName}{" "}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#,
    ]);
    let mut v: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() == 3 && f[2] == "True").then(|| (f[0].to_string(), f[1].to_string()))
        })
        .collect();
    v.sort();
    v
}

fn node_images(env: &Env, node: &str) -> String {
    env.docker_ok(&["exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q"])
}

/// Everything the issue asks of one cluster, plus a second cluster created at the same time.
#[test]
fn kind_create_load_deploy_nodeport_logs_restart_delete_and_a_concurrent_cluster() {
    let Some(env) = Env::load(KEYS) else { return };
    let dir = tempfile::tempdir().unwrap();
    let host_port = free_port();
    let cfg3 = format!(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  \
         extraPortMappings:\n  - containerPort: 30080\n    hostPort: {host_port}\n    protocol: TCP\n\
         - role: worker\n- role: worker\n"
    );
    let cfg1 = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n";

    // Two clusters at once: they must not share a network, subnet, kubeconfig entry or anything.
    let ((c, took), (c2, took2)) = std::thread::scope(|s| {
        let a = s.spawn(|| create_cluster(&env, dir.path(), "kt1", &cfg3));
        let b = s.spawn(|| create_cluster(&env, dir.path(), "kt2", cfg1));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(
        took < Duration::from_secs(90),
        "3-node cluster took {took:?} (want < 90 s)"
    );
    eprintln!("created concurrently: 3 nodes in {took:.1?}, 1 node in {took2:.1?}");

    let nodes = c.node_containers();
    let want: Vec<String> = ["control-plane", "worker", "worker2"]
        .iter()
        .map(|r| format!("{}-{r}", c.name))
        .collect();
    assert_eq!(nodes, want, "kind get nodes");
    let ready = c.nodes_ready();
    assert_eq!(ready.len(), 3, "nodes: {ready:?}");
    assert!(ready.iter().all(|(_, r)| *r), "nodes not Ready: {ready:?}");
    let clusters = env.kind_ok(&["get", "clusters"]);
    assert!(clusters.lines().any(|l| l == c.name) && clusters.lines().any(|l| l == c2.name));
    for n in &nodes {
        let labels = env.docker_ok(&["inspect", n, "--format", "{{json .Config.Labels}}"]);
        assert!(labels.contains(&format!("\"io.x-k8s.kind.cluster\":\"{}\"", c.name)));
    }
    // The kubeconfig from `kind get kubeconfig` reaches the API server from the host.
    let kc = env.kind_ok(&["get", "kubeconfig", "--name", &c.name]);
    assert!(kc.contains(&format!("kind-{}", c.name)) && kc.contains("certificate-authority-data"));

    // kind-load into every node, then a Deployment with imagePullPolicy: Never on every node.
    let img = TestImage::new(&env);
    let t0 = Instant::now();
    let out = env
        .cmd(
            kind_load_bin()
                .expect("kind-load not built: cargo build -p kind-load (make test builds it)")
                .to_str()
                .unwrap(),
        )
        .args(["--cluster", &c.name, &img.name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kind-load: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("kind-load into 3 nodes: {:.1?}", t0.elapsed());
    for n in &nodes {
        assert!(
            node_images(&env, n).lines().any(|l| l == img.name),
            "{n} lacks {}",
            img.name
        );
    }
    let t0 = Instant::now();
    c.apply(&deployment("web", &img.name, 3));
    let pods = wait_until(
        "a Ready pod of web on every node",
        Duration::from_secs(120),
        || {
            let p = ready_pods_by_node(&c, "web");
            (p.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>() == want).then_some(p)
        },
    );
    eprintln!("Deployment Ready on all 3 nodes in {:.1?}", t0.elapsed());

    // NodePort 30080 answers on the host port the config mapped it to.
    let addr = format!("127.0.0.1:{host_port}");
    let reply = wait_until(
        "NodePort on the mapped host port",
        Duration::from_secs(30),
        || redis_ping(&addr).ok().filter(|r| r == "+PONG"),
    );
    assert_eq!(reply, "+PONG");

    // kubectl logs / exec, Service DNS and cross-node Service traffic from a worker's pod.
    let (_, worker_pod) = pods.iter().find(|(n, _)| n.ends_with("-worker2")).unwrap();
    let logs = c.kubectl_ok(&["logs", worker_pod]);
    assert!(logs.contains("Ready to accept connections"), "logs: {logs}");
    let pong = c.kubectl_ok(&["exec", worker_pod, "--", "redis-cli", "ping"]);
    assert_eq!(pong, "PONG");
    let svc_ip = c.kubectl_ok(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let dns = c.kubectl_ok(&["exec", worker_pod, "--", "getent", "hosts", "web"]);
    assert!(
        dns.starts_with(&svc_ip),
        "getent hosts web: {dns} (want {svc_ip})"
    );
    for _ in 0..4 {
        let via_svc = c.kubectl_ok(&["exec", worker_pod, "--", "redis-cli", "-h", "web", "ping"]);
        assert_eq!(via_svc, "PONG");
    }

    // kubectl port-forward through the API server (the path ds-deploy's migrations take).
    let mut pf = env
        .cmd(env.tb.get("E2E_KUBECTL"))
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["port-forward", &format!("pod/{}", pods[0].1), ":6379"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep reading its stdout: kubectl dies of EPIPE on its next "Handling connection" line
    // if the pipe is closed.
    let mut pf_out = BufReader::new(pf.stdout.take().unwrap());
    let mut first = String::new();
    pf_out.read_line(&mut first).unwrap();
    let drain = std::thread::spawn(move || std::io::copy(&mut pf_out, &mut std::io::sink()));
    let port = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("port-forward said: {first}"));
    let pf_reply = redis_ping(&format!("127.0.0.1:{port}"));
    let _ = pf.kill();
    let _ = pf.wait();
    let _ = drain.join();
    assert_eq!(pf_reply.unwrap(), "+PONG", "through kubectl port-forward");
    // ... and in-process with kube-rs (ds-deploy's way), from the kubeconfig kind wrote.
    assert_eq!(kube_portforward_ping(&c.kubeconfig, &pods[1].1), "+PONG");

    // The second cluster is independent: its own node, no image of the first, its own API.
    assert_eq!(
        c2.node_containers(),
        vec![format!("{}-control-plane", c2.name)]
    );
    assert!(!node_images(&env, &format!("{}-control-plane", c2.name))
        .lines()
        .any(|l| l == img.name));
    let c2_nodes = c2.nodes_ready();
    assert_eq!(c2_nodes.len(), 1, "{c2_nodes:?}");
    assert!(c2.kubectl(&["get", "deployment", "web"]).status.code() != Some(0));
    env.kind_ok(&["load", "docker-image", &img.name, "--name", &c2.name]);
    c2.apply(&deployment("web2", &img.name, 1));
    wait_until(
        "web2 Ready in the second cluster",
        Duration::from_secs(90),
        || (ready_pods_by_node(&c2, "web2").len() == 1).then_some(()),
    );
    drop(c2);

    // kind export logs: kubelet and containerd logs of every node.
    let logs_dir = dir.path().join("logs");
    env.kind_ok(&[
        "export",
        "logs",
        logs_dir.to_str().unwrap(),
        "--name",
        &c.name,
    ]);
    for n in &nodes {
        for f in ["kubelet.log", "containerd.log"] {
            let p = logs_dir.join(n).join(f);
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            assert!(len > 0, "{} missing or empty", p.display());
        }
    }
    let kubelet_log =
        std::fs::read_to_string(logs_dir.join(&nodes[1]).join("kubelet.log")).unwrap();
    assert!(kubelet_log.contains("kubelet"), "kubelet log content");

    // docker restart of a worker: back Ready, with its images, and its pod running again.
    let worker = &nodes[1];
    let t0 = Instant::now();
    env.docker_ok(&["restart", worker]);
    let started = env.docker_ok(&["inspect", worker, "--format", "{{.State.StartedAt}}"]);
    let started = &started[..19]; // 2026-11-30T20:00:00
    wait_until(
        "the restarted worker's pod Ready again, started after the restart",
        Duration::from_secs(120),
        || {
            let out = c.kubectl(&[
                "get",
                "pods",
                "-l",
                "app=web",
                "--field-selector",
                &format!("spec.nodeName={worker}"),
                "-o",
                r#"jsonpath={range .items[*]}{.status.containerStatuses[0].state.running.startedAt}{" "}{.status.containerStatuses[0].ready}{"\n"}{end}"#,
            ]);
            let s = String::from_utf8_lossy(&out.stdout).to_string();
            s.lines()
                .any(|l| {
                    let mut f = l.split(' ');
                    let at = f.next().unwrap_or("");
                    at.len() >= 19 && &at[..19] >= started && f.next() == Some("true")
                })
                .then_some(())
        },
    );
    // The kubelet may report NotReady for a moment after its restart (before its first full
    // sync), even with the pod already running: wait for the node's Ready, do not sample it.
    wait_until(
        "every node Ready after the restart",
        Duration::from_secs(60),
        || c.nodes_ready().iter().all(|(_, r)| *r).then_some(()),
    );
    assert!(
        node_images(&env, worker).lines().any(|l| l == img.name),
        "image lost on restart"
    );
    eprintln!(
        "worker back with a Ready pod {:.1?} after docker restart",
        t0.elapsed()
    );
    let _ = c.diagnostics();

    // kind delete cluster leaves no container, volume, network or iptables rule behind.
    let net_id = env.docker_ok(&[
        "network",
        "inspect",
        &format!("kind-{}", c.name),
        "--format",
        "{{.Id}}",
    ]);
    let bridge = format!("br-{}", &net_id[..12]);
    let ours = |rules: &str| -> Vec<String> {
        rules
            .lines()
            // Docker's rules for a network and its published ports all name its bridge (its
            // subnet may already be another cluster's by the time we look again).
            .filter(|l| l.contains(&bridge) || l.contains(&format!("--dport {host_port} ")))
            .map(str::to_string)
            .collect()
    };
    let iptables_save = || {
        let out = Command::new("iptables-save")
            .output()
            .expect("iptables-save");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        !ours(&iptables_save()).is_empty(),
        "no iptables rule names {bridge}: the check below would prove nothing"
    );
    let mut volumes = vec![];
    for n in &nodes {
        let v = env.docker_ok(&[
            "inspect",
            n,
            "--format",
            "{{range .Mounts}}{{.Name}} {{end}}",
        ]);
        volumes.extend(v.split_whitespace().map(str::to_string));
    }
    assert!(!volumes.is_empty());
    let name = c.name.clone();
    let kubeconfig = c.kubeconfig.clone();
    let t0 = Instant::now();
    env.kind_ok(&[
        "delete",
        "cluster",
        "--name",
        &name,
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    eprintln!("deleted in {:.1?}", t0.elapsed());
    std::mem::forget(c);
    let left = env.docker_ok(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={name}"),
    ]);
    assert!(left.is_empty(), "containers left: {left}");
    for v in &volumes {
        assert!(
            !env.docker(&["volume", "inspect", v]).status.success(),
            "volume {v} left"
        );
    }
    assert!(
        !env.docker(&["network", "inspect", &net_id])
            .status
            .success(),
        "network left"
    );
    let leftover = ours(&iptables_save());
    assert!(leftover.is_empty(), "iptables rules left: {leftover:#?}");
    let kc_text = std::fs::read_to_string(&kubeconfig).unwrap_or_default();
    assert!(
        !kc_text.contains(&format!("kind-{name}")),
        "kubeconfig entry left"
    );
}

/// `KIND_EXPERIMENTAL_PROVIDER=podman`: the same Kind-like nodes in Podman, as the upstream
/// pipeline runs kind; `kind load docker-image` goes through kind-load's Podman engine.
#[test]
fn podman_provider_cluster_runs_a_loaded_image_behind_its_mapped_port() {
    let Some(mut env) = Env::load(&[KEYS, &["E2E_PODMAN_HOST"]].concat()) else {
        return;
    };
    // The image in Podman's store first (the testbed copies only its base images there).
    let out = env
        .cmd("sh")
        .args([
            "-c",
            "docker save \"$1\" | podman load -q >/dev/null",
            "sh",
            env.tb.get("E2E_REDIS_IMAGE"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.provider = "podman";
    let img = TestImage::new(&env);
    let dir = tempfile::tempdir().unwrap();
    let host_port = free_port();
    let cfg = format!(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  \
         extraPortMappings: [{{containerPort: 30080, hostPort: {host_port}}}]\n"
    );
    let (c, took) = create_cluster(&env, dir.path(), "kpm", &cfg);
    assert!(took < Duration::from_secs(90), "took {took:?}");
    let node = format!("{}-control-plane", c.name);
    assert_eq!(c.node_containers(), vec![node.clone()]);
    assert!(env
        .kind_ok(&["get", "clusters"])
        .lines()
        .any(|l| l == c.name));
    env.kind_ok(&["load", "docker-image", &img.name, "--name", &c.name]);
    assert!(node_images(&env, &node).lines().any(|l| l == img.name));
    c.apply(&deployment("pweb", &img.name, 1));
    wait_until(
        "pweb Ready in the Podman cluster",
        Duration::from_secs(90),
        || (ready_pods_by_node(&c, "pweb").len() == 1).then_some(()),
    );
    let addr = format!("127.0.0.1:{host_port}");
    wait_until(
        "NodePort on the mapped host port",
        Duration::from_secs(30),
        || redis_ping(&addr).ok().filter(|r| r == "+PONG"),
    );
    let name = c.name.clone();
    drop(c);
    let left = env.docker_ok(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={name}"),
    ]);
    assert!(left.is_empty(), "containers left: {left}");
    assert!(!env
        .docker(&["network", "inspect", &format!("kind-{name}")])
        .status
        .success());
}

/// The stand-in says what it is and refuses what it does not implement.
#[test]
fn kind_standin_is_honest_and_strict() {
    let Some(env) = Env::load(&["DOCKER_HOST", "E2E_KIND_PATH"]) else {
        return;
    };
    let v = env.kind_ok(&["version"]);
    assert!(
        v.starts_with("kind v") && v.contains("stand-in"),
        "version: {v}"
    );

    let out = env.kind(&["create", "cluster", "--name", "kl-x", "--bogus-flag"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus-flag"));

    let dir = tempfile::tempdir().unwrap();
    let name = e2e_testbed::unique_name("klbad");
    for (field, cfg) in [
        (
            "containerdConfigPatches",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\ncontainerdConfigPatches: [\"x\"]\n",
        ),
        (
            "nodes[0].kubeadmConfigPatches",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  kubeadmConfigPatches: [\"x\"]\n",
        ),
        (
            "nodes[0].image",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: control-plane\n  image: kindest/node:v1.36.1\n",
        ),
        (
            "networking.disableDefaultCNI",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnetworking:\n  disableDefaultCNI: true\n",
        ),
    ] {
        let p = dir.path().join("bad.yaml");
        std::fs::write(&p, cfg).unwrap();
        let out = env.kind(&["create", "cluster", "--name", &name, "--config", p.to_str().unwrap()]);
        assert!(!out.status.success(), "{field} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "error for {field} does not name it: {err}");
    }
    // Nothing was left behind by the refused creates.
    let left = env.docker_ok(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=io.x-k8s.kind.cluster={name}"),
    ]);
    assert!(left.is_empty());
    assert!(!env
        .docker(&["network", "inspect", &format!("kind-{name}")])
        .status
        .success());

    let out = env.kind(&["get", "kubeconfig", "--name", &name]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not locate any control plane nodes")
    );
    let out = env.kind(&["frobnicate", "cluster"]);
    assert!(!out.status.success());
    let mut s = String::new();
    out.stderr.as_slice().read_to_string(&mut s).unwrap();
    assert!(s.contains("unsupported command"), "{s}");
}
