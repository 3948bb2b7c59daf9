use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};

use super::{AuthRejection, bearer_token, quoted_safe};

fn headers(values: &[&'static str]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for v in values {
        map.append(AUTHORIZATION, HeaderValue::from_static(v));
    }
    map
}

#[test]
fn bearer_token_parsing_follows_rfc_6750() {
    assert_eq!(bearer_token(&headers(&[])), Ok(None));
    assert_eq!(bearer_token(&headers(&["Basic YTpi"])), Ok(None));
    assert_eq!(bearer_token(&headers(&["Bearer abc.def.ghi"])), Ok(Some("abc.def.ghi")));
    assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok(Some("abc")));
    assert!(matches!(
        bearer_token(&headers(&["Bearer"])),
        Err(AuthRejection::InvalidRequest(_))
    ));
    assert!(matches!(
        bearer_token(&headers(&["Bearer a b"])),
        Err(AuthRejection::InvalidRequest(_))
    ));
    assert!(matches!(
        bearer_token(&headers(&["Bearer a", "Bearer b"])),
        Err(AuthRejection::InvalidRequest(_))
    ));
}

#[test]
fn challenge_parameters_stay_in_the_allowed_character_set() {
    assert_eq!(quoted_safe("a \"quoted\" \\ value\r\n"), "a quoted  value");
}
