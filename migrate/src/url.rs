//! Database URLs as shown to people: the password is always masked.

/// `postgres://user:***@host:5432/db` (query parameters that carry a password masked too).
/// Text that does not parse as a URL is not shown at all, since it may hold a password.
pub fn mask(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let secret =
                        k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("sslpassword");
                    (
                        k.into_owned(),
                        if secret { "***".into() } else { v.into_owned() },
                    )
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            // `***` would be percent-encoded by the setter; show it plainly.
            u.to_string().replace("%2A%2A%2A", "***")
        }
        Err(_) => "<database URL not shown: it does not parse as a URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask("postgres://slm_user:test_password@localhost:5432/action_history"),
            "postgres://slm_user:***@localhost:5432/action_history"
        );
        assert_eq!(
            mask("postgres://u@h/db?password=secret&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(mask("postgres://h/db"), "postgres://h/db");
        assert!(!mask("host=x password=secret").contains("secret"));
    }
}
