//! The bundle's objects as typed manifests, with the upstream names, labels, ports, probes,
//! resources and mounts, so an upstream DataStorage image runs unchanged.
//!
//! Objects are grouped by the step of `up` that applies them; every object also carries
//! `app.kubernetes.io/managed-by=ds-deploy` so `down` and `status` can tell ours from others'.

use crate::certs::CertSet;
use crate::values::Bundle;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, ExecAction, HTTPGetAction, KeyToPath, Namespace, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, ResourceRequirements, Secret, SecretEnvSource, SecretProjection,
    SecretVolumeSource, Service, ServiceAccount, ServicePort, ServiceSpec, Toleration, Volume,
    VolumeMount, VolumeProjection, VolumeResourceRequirements,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use kube::core::{ApiResource, DynamicObject};
use std::collections::BTreeMap;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const PART_OF: &str = "app.kubernetes.io/part-of";
pub const TOOL: &str = "ds-deploy";
pub const BUNDLE: &str = "datastorage-bundle";
/// Selector of everything `up` made.
pub const SELECTOR: &str =
    "app.kubernetes.io/managed-by=ds-deploy,app.kubernetes.io/part-of=datastorage-bundle";

/// On extra objects: the bundle namespace they belong to.
pub const NAMESPACE_LABEL: &str = "ds-deploy.kubernaut.io/namespace";
/// ConfigMap listing the extra objects (`--crds`, `--manifests`) `up` applied, for `down`.
pub const EXTRAS_CONFIGMAP: &str = "ds-deploy-extras";

pub const POSTGRES: &str = "postgresql";
pub const REDIS: &str = "redis";
pub const DATASTORAGE: &str = "datastorage";
pub const DS_SERVICE: &str = "data-storage-service";
pub const DS_SA: &str = "data-storage-sa";
pub const CLIENT_ROLE: &str = "data-storage-client";
pub const AUTH_ROLE: &str = "data-storage-auth-middleware";
pub const CA_CONFIGMAP: &str = "inter-service-ca";
pub const TLS_SECRET: &str = "datastorage-tls";
pub const SIGNING_SECRET: &str = "datastorage-signing";

/// One object, ready for server-side apply.
#[derive(Debug, Clone)]
pub struct Object {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub data: DynamicObject,
}

impl Object {
    pub fn of<K>(k: &K) -> Self
    where
        K: k8s_openapi::Resource + kube::Resource<DynamicType = ()> + serde::Serialize + 'static,
    {
        let namespaced = std::any::TypeId::of::<<K as k8s_openapi::Resource>::Scope>()
            == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>();
        let value = serde_json::to_value(k).expect("typed manifests serialise");
        let data: DynamicObject =
            serde_json::from_value(value).expect("a typed manifest is a dynamic object");
        Object {
            resource: ApiResource::erase::<K>(&()),
            namespaced,
            data,
        }
    }

    pub fn name(&self) -> &str {
        self.data.metadata.name.as_deref().unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    /// `Kind/name`, as people read it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind(), self.name())
    }
}

/// The bundle's objects, by the step that applies them.
#[derive(Debug, Clone)]
pub struct Objects {
    pub namespace: Object,
    pub certs: Vec<Object>,
    pub rbac: Vec<Object>,
    pub postgres: Vec<Object>,
    pub redis: Vec<Object>,
    /// DataStorage's ServiceAccount, ConfigMap, Secrets and Service: safe to apply early.
    pub datastorage_config: Vec<Object>,
    /// Applied only after the migrations.
    pub datastorage: Object,
}

impl Objects {
    /// Every object, in the order a plain `kubectl apply` would need them.
    pub fn all(&self) -> Vec<&Object> {
        std::iter::once(&self.namespace)
            .chain(&self.rbac)
            .chain(&self.certs)
            .chain(&self.postgres)
            .chain(&self.redis)
            .chain(&self.datastorage_config)
            .chain(std::iter::once(&self.datastorage))
            .collect()
    }
}

/// Builds every object of the bundle. `certs` is `None` when TLS is off.
pub fn build(b: &Bundle, certs: Option<&CertSet>) -> Objects {
    Objects {
        namespace: namespace_object(&b.namespace),
        certs: certs.map(|c| cert_objects(b, c)).unwrap_or_default(),
        rbac: if b.rbac { rbac(b) } else { Vec::new() },
        postgres: postgres(b),
        redis: redis(b),
        datastorage_config: datastorage_config(b),
        datastorage: Object::of(&datastorage(b)),
    }
}

/// The ConfigMap recording the extra objects `up` applied.
pub fn extras_record(ns: &str, extras: &[&Object]) -> Object {
    let list: Vec<serde_json::Value> = extras
        .iter()
        .map(|o| {
            serde_json::json!({
                "apiVersion": o.resource.api_version,
                "kind": o.resource.kind,
                "plural": o.resource.plural,
                "namespace": if o.namespaced { o.data.metadata.namespace.clone() } else { None },
                "name": o.name(),
            })
        })
        .collect();
    Object::of(&ConfigMap {
        metadata: meta(EXTRAS_CONFIGMAP, Some(ns), &[]),
        data: Some(BTreeMap::from([(
            "objects.json".to_string(),
            serde_json::to_string_pretty(&list).unwrap_or_default(),
        )])),
        ..Default::default()
    })
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.insert(MANAGED_BY.into(), TOOL.into());
    m.insert(PART_OF.into(), BUNDLE.into());
    m
}

fn meta(name: &str, ns: Option<&str>, l: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(str::to_string),
        labels: Some(labels(l)),
        ..Default::default()
    }
}

fn app(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), name.to_string())])
}

/// The bundle's namespace, alone (applied before anything else).
pub fn namespace_object(name: &str) -> Object {
    Object::of(&namespace(name))
}

fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([(MANAGED_BY.into(), TOOL.into())])),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The annotations that let a re-run decide to reuse a certificate set.
fn cert_meta(name: &str, ns: &str, c: &CertSet) -> ObjectMeta {
    let mut m = meta(name, Some(ns), &[]);
    m.annotations = Some(BTreeMap::from([
        (crate::certs::NOT_AFTER.to_string(), c.not_after.to_string()),
        (crate::certs::MADE_FOR.to_string(), c.made_for.clone()),
    ]));
    m
}

fn cert_objects(b: &Bundle, c: &CertSet) -> Vec<Object> {
    let ns = b.namespace.as_str();
    let tls_secret = |name: &str, crt: &str, key: &str| Secret {
        metadata: cert_meta(name, ns, c),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_string(), ByteString(crt.as_bytes().to_vec())),
            ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
        ])),
        ..Default::default()
    };
    vec![
        Object::of(&ConfigMap {
            metadata: cert_meta(CA_CONFIGMAP, ns, c),
            data: Some(BTreeMap::from([("ca.crt".to_string(), c.ca_pem.clone())])),
            ..Default::default()
        }),
        Object::of(&tls_secret(TLS_SECRET, &c.tls_crt, &c.tls_key)),
        Object::of(&tls_secret(SIGNING_SECRET, &c.signing_crt, &c.signing_key)),
    ]
}

/// The ClusterRoleBinding's name: one per namespace, so two bundles never fight over its
/// subjects and `down` of one leaves the other's binding alone.
pub fn auth_binding_name(ns: &str) -> String {
    format!("{AUTH_ROLE}-{ns}")
}

fn rbac(b: &Bundle) -> Vec<Object> {
    let auth_labels = [
        ("app", "data-storage-service"),
        ("component", "auth"),
        ("authorization", "dd-auth-014"),
    ];
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str], names: Option<&[&str]>| {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        PolicyRule {
            api_groups: Some(v(groups)),
            resources: Some(v(resources)),
            verbs: v(verbs),
            resource_names: names.map(v),
            ..Default::default()
        }
    };
    vec![
        Object::of(&ClusterRole {
            metadata: meta(
                CLIENT_ROLE,
                None,
                &[
                    ("app", "data-storage-service"),
                    ("component", "rbac"),
                    ("authorization", "dd-auth-014"),
                ],
            ),
            rules: Some(vec![rule(
                &[""],
                &["services"],
                &["create", "get", "list", "update", "delete"],
                Some(&[DS_SERVICE]),
            )]),
            ..Default::default()
        }),
        Object::of(&ClusterRole {
            metadata: meta(AUTH_ROLE, None, &auth_labels),
            rules: Some(vec![
                rule(
                    &["authentication.k8s.io"],
                    &["tokenreviews"],
                    &["create"],
                    None,
                ),
                rule(
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                    &["create"],
                    None,
                ),
                rule(
                    &["kubernaut.ai"],
                    &["remediationworkflows", "actiontypes"],
                    &["get", "list", "watch"],
                    None,
                ),
            ]),
            ..Default::default()
        }),
        Object::of(&ClusterRoleBinding {
            metadata: meta(&auth_binding_name(&b.namespace), None, &auth_labels),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: AUTH_ROLE.into(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: DS_SA.into(),
                namespace: Some(b.namespace.clone()),
                ..Default::default()
            }]),
        }),
    ]
}

fn resources(b: &Bundle, req: (&str, &str), lim: (&str, &str)) -> Option<ResourceRequirements> {
    if !b.upstream_resources {
        return None;
    }
    let q = |mem: &str, cpu: &str| {
        BTreeMap::from([
            ("memory".to_string(), Quantity(mem.into())),
            ("cpu".to_string(), Quantity(cpu.into())),
        ])
    };
    Some(ResourceRequirements {
        requests: Some(q(req.0, req.1)),
        limits: Some(q(lim.0, lim.1)),
        ..Default::default()
    })
}

fn exec_probe(cmd: &[&str], (delay, period, timeout): (i32, i32, i32)) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(cmd.iter().map(|s| s.to_string()).collect()),
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        ..Default::default()
    }
}

fn http_probe(
    path: &str,
    port: i32,
    (delay, period, timeout, failures): (i32, i32, i32, i32),
) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            ..Default::default()
        }),
        initial_delay_seconds: Some(delay),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn service_port(name: &str, port: i32, node_port: u16) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".into()),
        // 0: let the API server pick (and keep what it picked on re-apply).
        node_port: (node_port != 0).then_some(i32::from(node_port)),
        ..Default::default()
    }
}

/// One replica, replaced rather than rolled: two PostgreSQL pods on one volume would fight.
fn deployment(name: &str, b: &Bundle, pod: PodSpec, recreate: bool) -> Deployment {
    Deployment {
        metadata: meta(name, Some(&b.namespace), &[("app", name)]),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(app(name)),
                ..Default::default()
            },
            strategy: recreate.then(|| DeploymentStrategy {
                type_: Some("Recreate".into()),
                ..Default::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(&[("app", name)])),
                    ..Default::default()
                }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn postgres(b: &Bundle) -> Vec<Object> {
    let ns = b.namespace.as_str();
    let secret = Secret {
        metadata: meta("postgresql-secret", Some(ns), &[("app", POSTGRES)]),
        type_: Some("Opaque".into()),
        data: Some(
            [
                ("POSTGRES_USER", b.postgres_user.clone()),
                ("POSTGRES_PASSWORD", b.postgres_password.clone()),
                ("POSTGRES_DB", b.postgres_db.clone()),
                (
                    "db-secrets.yaml",
                    format!(
                        "username: {}\npassword: {}\n",
                        b.postgres_user, b.postgres_password
                    ),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.into_bytes())))
            .collect(),
        ),
        ..Default::default()
    };
    let service = Service {
        metadata: meta(POSTGRES, Some(ns), &[("app", POSTGRES)]),
        spec: Some(ServiceSpec {
            type_: Some("NodePort".into()),
            selector: Some(app(POSTGRES)),
            ports: Some(vec![service_port("postgresql", 5432, b.postgres_node_port)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let probe = |t| {
        exec_probe(
            &["pg_isready", "-U", &b.postgres_user, "-d", &b.postgres_db],
            t,
        )
    };
    let data_volume = match &b.postgres_pvc {
        Some(_) => Volume {
            name: "postgresql-data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: "postgresql-data".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        None => Volume {
            name: "postgresql-data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    };
    let pod = PodSpec {
        containers: vec![Container {
            name: POSTGRES.into(),
            image: Some(b.postgres_image.clone()),
            args: Some(vec!["-c".into(), "max_connections=200".into()]),
            ports: Some(vec![port("postgresql", 5432)]),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "postgresql-secret".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            env: Some(vec![EnvVar {
                name: "PGDATA".into(),
                value: Some("/var/lib/postgresql/data/pgdata".into()),
                ..Default::default()
            }]),
            readiness_probe: Some(probe((5, 5, 3))),
            liveness_probe: Some(probe((30, 10, 5))),
            resources: resources(b, ("512Mi", "250m"), ("1Gi", "500m")),
            volume_mounts: Some(vec![VolumeMount {
                name: "postgresql-data".into(),
                mount_path: "/var/lib/postgresql/data".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }],
        volumes: Some(vec![data_volume]),
        ..Default::default()
    };
    let mut out = vec![Object::of(&secret), Object::of(&service)];
    if let Some(size) = &b.postgres_pvc {
        out.push(Object::of(&PersistentVolumeClaim {
            metadata: meta("postgresql-data", Some(ns), &[("app", POSTGRES)]),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_string(),
                        Quantity(size.clone()),
                    )])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }));
    }
    out.push(Object::of(&deployment(POSTGRES, b, pod, true)));
    out
}

fn redis(b: &Bundle) -> Vec<Object> {
    let ns = b.namespace.as_str();
    let service = Service {
        metadata: meta(REDIS, Some(ns), &[("app", REDIS)]),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(app(REDIS)),
            ports: Some(vec![ServicePort {
                name: Some("redis".into()),
                port: 6379,
                target_port: Some(IntOrString::Int(6379)),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let probe = |t| exec_probe(&["redis-cli", "ping"], t);
    let pod = PodSpec {
        containers: vec![Container {
            name: REDIS.into(),
            image: Some(b.redis_image.clone()),
            ports: Some(vec![port("redis", 6379)]),
            readiness_probe: Some(probe((5, 5, 3))),
            liveness_probe: Some(probe((30, 10, 5))),
            resources: resources(b, ("128Mi", "100m"), ("256Mi", "200m")),
            ..Default::default()
        }],
        ..Default::default()
    };
    vec![
        Object::of(&service),
        Object::of(&deployment(REDIS, b, pod, false)),
    ]
}

/// DataStorage's `config.yaml` (camelCase keys, passwords only in the secrets files).
pub fn config_yaml(b: &Bundle) -> String {
    let ns = &b.namespace;
    format!(
        "server:
  port: 8080
  host: \"0.0.0.0\"
  metricsPort: 9090
  healthPort: 8081
  readTimeout: 30s
  writeTimeout: 30s
  signerCertDir: /etc/signing-certs
  tls:
    certDir: /etc/tls
database:
  host: postgresql.{ns}.svc.cluster.local
  port: 5432
  name: {db}
  user: {user}
  sslMode: disable
  maxOpenConns: 100
  maxIdleConns: 20
  connMaxLifetime: 1h
  connMaxIdleTime: 10m
  secretsFile: /etc/datastorage/secrets/db-secrets.yaml
  usernameKey: username
  passwordKey: password
redis:
  addr: redis.{ns}.svc.cluster.local:6379
  db: 0
  dlqStreamName: dlq-stream
  dlqMaxLen: 1000
  dlqConsumerGroup: dlq-group
  secretsFile: /etc/datastorage/secrets/redis-secrets.yaml
  passwordKey: password
logging:
  level: {level}
  format: json
",
        db = b.postgres_db,
        user = b.postgres_user,
        level = b.log_level,
    )
}

fn datastorage_config(b: &Bundle) -> Vec<Object> {
    let ns = b.namespace.as_str();
    let auth_labels = [
        ("app", "data-storage-service"),
        ("component", "auth"),
        ("authorization", "dd-auth-014"),
    ];
    let mut service_meta = meta(DS_SERVICE, Some(ns), &[("app", DATASTORAGE)]);
    service_meta.annotations = Some(BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/port".to_string(), "9090".to_string()),
    ]));
    vec![
        Object::of(&ServiceAccount {
            metadata: meta(DS_SA, Some(ns), &auth_labels),
            ..Default::default()
        }),
        Object::of(&ConfigMap {
            metadata: meta("datastorage-config", Some(ns), &[("app", DATASTORAGE)]),
            data: Some(BTreeMap::from([(
                "config.yaml".to_string(),
                config_yaml(b),
            )])),
            ..Default::default()
        }),
        Object::of(&Secret {
            metadata: meta("redis-secret", Some(ns), &[("app", REDIS)]),
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([(
                "redis-secrets.yaml".to_string(),
                ByteString(b"password: \"\"\n".to_vec()),
            )])),
            ..Default::default()
        }),
        Object::of(&Service {
            metadata: service_meta,
            spec: Some(ServiceSpec {
                type_: Some("NodePort".into()),
                selector: Some(app(DATASTORAGE)),
                ports: Some(vec![
                    service_port("https", 8080, b.node_port),
                    service_port("metrics", 9090, b.metrics_node_port),
                    service_port("health", 8081, b.health_node_port),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        }),
    ]
}

fn datastorage(b: &Bundle) -> Deployment {
    let mount = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    };
    let projection = |secret: &str, key: &str| VolumeProjection {
        secret: Some(SecretProjection {
            name: secret.into(),
            items: Some(vec![KeyToPath {
                key: key.into(),
                path: key.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut mounts = vec![
        mount("config", "/etc/datastorage"),
        mount("secrets", "/etc/datastorage/secrets"),
    ];
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "datastorage-config".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "secrets".into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![
                    projection("postgresql-secret", "db-secrets.yaml"),
                    projection("redis-secret", "redis-secrets.yaml"),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    if b.tls {
        mounts.push(mount("tls-certs", "/etc/tls"));
        mounts.push(mount("signing-certs", "/etc/signing-certs"));
        for (name, secret, optional) in [
            ("tls-certs", TLS_SECRET, true),
            ("signing-certs", SIGNING_SECRET, false),
        ] {
            volumes.push(Volume {
                name: name.into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(secret.into()),
                    optional: Some(optional),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    let pod = PodSpec {
        service_account_name: Some(DS_SA.into()),
        // Upstream pins DataStorage to the control plane; tolerating its taint keeps that
        // possible without requiring a node label that not every cluster sets.
        tolerations: Some(vec![Toleration {
            key: Some("node-role.kubernetes.io/control-plane".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]),
        containers: vec![Container {
            name: DATASTORAGE.into(),
            image: Some(b.image.clone()),
            image_pull_policy: Some(b.pull_policy.clone()),
            ports: Some(vec![
                port("https", 8080),
                port("metrics", 9090),
                port("health", 8081),
            ]),
            env: Some(vec![
                EnvVar {
                    name: "CONFIG_PATH".into(),
                    value: Some("/etc/datastorage/config.yaml".into()),
                    ..Default::default()
                },
                EnvVar {
                    name: "POD_NAMESPACE".into(),
                    value: Some(b.namespace.clone()),
                    ..Default::default()
                },
            ]),
            readiness_probe: Some(http_probe("/readyz", 8081, (30, 5, 3, 3))),
            liveness_probe: Some(http_probe("/healthz", 8081, (45, 15, 10, 5))),
            resources: resources(b, ("512Mi", "250m"), ("1Gi", "500m")),
            volume_mounts: Some(mounts),
            ..Default::default()
        }],
        volumes: Some(volumes),
        ..Default::default()
    };
    deployment(DATASTORAGE, b, pod, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{BundleArgs, GlobalArgs};

    fn bundle() -> Bundle {
        crate::values::bundle(
            &GlobalArgs::default(),
            &BundleArgs {
                image: Some("localhost/ds:e2e".into()),
                ..Default::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn upstream_names_and_ports() {
        let certs = crate::certs::generate("kubernaut-system").unwrap();
        let o = build(&bundle(), Some(&certs));
        let ids: Vec<String> = o.all().iter().map(|o| o.id()).collect();
        for want in [
            "Namespace/kubernaut-system",
            "ClusterRole/data-storage-client",
            "ClusterRole/data-storage-auth-middleware",
            "ConfigMap/inter-service-ca",
            "Secret/datastorage-tls",
            "Secret/datastorage-signing",
            "Secret/postgresql-secret",
            "Service/postgresql",
            "Deployment/postgresql",
            "Service/redis",
            "Deployment/redis",
            "ServiceAccount/data-storage-sa",
            "ConfigMap/datastorage-config",
            "Secret/redis-secret",
            "Service/data-storage-service",
            "Deployment/datastorage",
        ] {
            assert!(
                ids.contains(&want.to_string()),
                "{want} missing from {ids:?}"
            );
        }
        let svc = serde_json::to_value(&o.datastorage_config[3].data).unwrap();
        let ports = &svc["spec"]["ports"];
        assert_eq!(ports[0]["nodePort"], 30081);
        assert_eq!(ports[1]["nodePort"], 30181);
        assert_eq!(ports[2]["nodePort"], 30281);
        let ds = serde_json::to_value(&o.datastorage.data).unwrap();
        let c = &ds["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Never");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], 8081);
        assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
        assert_eq!(
            ds["spec"]["template"]["spec"]["serviceAccountName"],
            "data-storage-sa"
        );
        assert!(o.certs.iter().all(|c| c.namespaced) && o.rbac.iter().all(|c| !c.namespaced));
    }

    #[test]
    fn config_has_no_password() {
        let y = config_yaml(&bundle());
        assert!(y.contains("host: postgresql.kubernaut-system.svc.cluster.local"));
        assert!(y.contains("metricsPort: 9090"));
        assert!(!y.contains("test_password"));
    }

    #[test]
    fn tls_off_drops_the_cert_mounts() {
        let mut b = bundle();
        b.tls = false;
        let o = build(&b, None);
        assert!(o.certs.is_empty());
        let ds = serde_json::to_value(&o.datastorage.data).unwrap();
        let vols = ds["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap();
        assert_eq!(vols.len(), 2);
    }
}
