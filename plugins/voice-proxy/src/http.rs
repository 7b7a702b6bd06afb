//! HTTP as the plugin sees it: the request routed to it, its reply (a
//! response or a WebSocket upgrade), the bearer token of an `authorization`
//! header, and the JSON error body `{"error":"<reason>"}`.

use serde_json::json;

/// An HTTP request routed to the adapter (the parts of the wit
/// `http-request` the plugin reads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Upper case.
    pub method: String,
    /// Without the query, still percent-encoded.
    pub path: String,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// A valid WebSocket upgrade request.
    pub websocket: bool,
}

impl Request {
    /// The value of the first header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token of `authorization: Bearer <token>` (scheme compared
    /// case-insensitively).
    pub fn bearer_token(&self) -> Option<&str> {
        let (scheme, rest) = self.header("authorization")?.trim().split_once(' ')?;
        let token = rest.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    }
}

/// A complete HTTP response (the wit `http-response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the plugin answers to a request (the wit `http-reply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Respond(Response),
    /// Accept the WebSocket upgrade; the string comes back in
    /// `on-stream-open`.
    Upgrade(String),
}

const JSON_TYPE: &str = "application/json; charset=utf-8";

impl Reply {
    /// `status` with the body `{"error":"<reason>"}`.
    pub fn error(status: u16, reason: &str) -> Reply {
        Reply::Respond(Response {
            status,
            headers: vec![("content-type".into(), JSON_TYPE.into())],
            body: json!({ "error": reason }).to_string().into_bytes(),
        })
    }

    /// 405, naming the method the path accepts.
    pub fn method_not_allowed(allowed: &str) -> Reply {
        let mut reply = Reply::error(405, "method not allowed");
        if let Reply::Respond(response) = &mut reply {
            response.headers.push(("allow".into(), allowed.into()));
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> Request {
        Request {
            headers: vec![("authorization".into(), value.into())],
            ..Request::default()
        }
    }

    #[test]
    fn bearer_token_is_read_case_insensitively() {
        assert_eq!(with_auth("Bearer abc").bearer_token(), Some("abc"));
        assert_eq!(with_auth("bearer  abc ").bearer_token(), Some("abc"));
        assert_eq!(with_auth("Basic abc").bearer_token(), None);
        assert_eq!(with_auth("Bearer ").bearer_token(), None);
        assert_eq!(Request::default().bearer_token(), None);
    }

    #[test]
    fn errors_are_json() {
        let Reply::Respond(response) = Reply::error(401, "no token") else {
            panic!("not a response");
        };
        assert_eq!(response.status, 401);
        assert_eq!(
            response.headers,
            vec![("content-type".to_string(), JSON_TYPE.to_string())]
        );
        assert_eq!(response.body, br#"{"error":"no token"}"#);
        let Reply::Respond(response) = Reply::method_not_allowed("GET") else {
            panic!("not a response");
        };
        assert_eq!(response.status, 405);
        assert!(response
            .headers
            .contains(&("allow".to_string(), "GET".to_string())));
    }
}
