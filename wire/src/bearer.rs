//! `Authorization: Bearer <token>` (RFC 6750 §2.1), read one way by both
//! services: the edge's API token and the status service's operator tokens.

/// The token of an `Authorization` header value: the scheme matched
/// case-insensitively (RFC 7235 §2.1), then one or more spaces, then the
/// token, which has no whitespace. `None` for another scheme or no token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, rest) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ').trim_end();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer_token("Bearer fso_abc"), Some("fso_abc"));
        // RFC 7235 §2.1: the scheme is case-insensitive.
        assert_eq!(bearer_token("bearer fso_abc"), Some("fso_abc"));
        assert_eq!(bearer_token("BEARER fso_abc"), Some("fso_abc"));
        assert_eq!(bearer_token("Bearer   fso_abc "), Some("fso_abc"));
        assert_eq!(bearer_token("Basic Zm9vOmJhcg=="), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer a b"), None);
        assert_eq!(bearer_token("Bearerfso_abc"), None);
        assert_eq!(bearer_token(""), None);
    }
}
