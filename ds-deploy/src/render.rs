//! `render`: the bundle as YAML documents kubectl accepts, secrets and private keys masked
//! unless asked for.

use crate::objects::Objects;
use k8s_openapi::ByteString;

const MASK: &str = "masked: run ds-deploy render --show-secrets";

pub fn render(objs: &Objects, show_secrets: bool) -> String {
    let mut out = String::new();
    for o in objs.all() {
        let mut v = serde_json::to_value(&o.data).unwrap_or_default();
        if o.kind() == "Secret" && !show_secrets {
            if let Some(data) = v.get_mut("data").and_then(|d| d.as_object_mut()) {
                let masked =
                    serde_json::to_value(ByteString(MASK.as_bytes().to_vec())).unwrap_or_default();
                for value in data.values_mut() {
                    *value = masked.clone();
                }
            }
        }
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&v).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{BundleArgs, GlobalArgs};

    #[test]
    fn masks_passwords_and_keys() {
        let b = crate::values::bundle(
            &GlobalArgs::default(),
            &BundleArgs {
                image: Some("localhost/ds:e2e".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let certs = crate::certs::generate(&b.namespace).unwrap();
        let objs = crate::objects::build(&b, Some(&certs));
        let masked = render(&objs, false);
        let b64 = |s: &str| {
            serde_json::to_value(ByteString(s.as_bytes().to_vec()))
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        };
        assert!(!masked.contains(&b64("test_password")));
        assert!(!masked.contains(&b64(&certs.tls_key)));
        assert!(!masked.contains("PRIVATE KEY"));
        assert!(masked.contains("kind: Deployment"));
        let shown = render(&objs, true);
        assert!(shown.contains(&b64("test_password")));
    }
}
