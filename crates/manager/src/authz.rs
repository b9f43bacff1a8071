//! Who may read the diagnostics endpoint: the caller's bearer token is checked with a
//! TokenReview, then a SubjectAccessReview asks whether that user may `get` the path, so
//! `kubectl`-style RBAC on `nonResourceURLs: ["/metrics"]` decides, as in CAPD.

use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::StatusCode;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

pub async fn allowed(
    client: &kube::Client,
    headers: &HeaderMap,
    path: &str,
    verb: &str,
) -> Result<(), (StatusCode, String)> {
    let token = bearer(headers).ok_or((
        StatusCode::UNAUTHORIZED,
        "Unauthorized: a bearer token is required".to_string(),
    ))?;
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: token.to_string(),
            ..Default::default()
        },
        ..Default::default()
    };
    let reviewed = Api::<TokenReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("TokenReview failed: {e}"),
            )
        })?;
    let status = reviewed.status.unwrap_or_default();
    let user = match (status.authenticated, status.user) {
        (Some(true), Some(user)) => user,
        _ => return Err((StatusCode::UNAUTHORIZED, "Unauthorized".to_string())),
    };
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some(path.to_string()),
                verb: Some(verb.to_string()),
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let decided = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &sar)
        .await
        .map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("SubjectAccessReview failed: {e}"),
            )
        })?;
    if decided.status.is_some_and(|s| s.allowed) {
        Ok(())
    } else {
        let who = user.username.unwrap_or_default();
        Err((
            StatusCode::FORBIDDEN,
            format!("Forbidden: user {who:?} may not {verb} {path}"),
        ))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(AUTHORIZATION, "bearer  xyz ".parse().unwrap());
        assert_eq!(bearer(&h), Some("xyz"));
        for bad in ["Basic abc", "Bearer ", "Bearer"] {
            h.insert(AUTHORIZATION, bad.parse().unwrap());
            assert_eq!(bearer(&h), None, "{bad}");
        }
    }
}
