//! HTTP on the plugin's side of the host: the request and reply shapes
//! (plain copies of the wit records), the API's error body, and reading the
//! `authorization` header (Bearer tokens, Basic credentials with their
//! base64).

use serde::Serialize;

/// An HTTP request routed to the plugin (the wit `http-request`).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names are lower case (the host guarantees it).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub websocket: bool,
}

impl Request {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token of `Authorization: Bearer <token>`, if present.
    pub fn bearer_token(&self) -> Option<&str> {
        credentials(self.header("authorization")?, "bearer")
    }

    /// `(username, password)` of `Authorization: Basic <base64>`, if present
    /// and well-formed.
    pub fn basic_credentials(&self) -> Option<(String, String)> {
        let encoded = credentials(self.header("authorization")?, "basic")?;
        let decoded = String::from_utf8(base64_decode(encoded)?).ok()?;
        // The user name cannot hold a colon (RFC 7617); the password can.
        let (user, password) = decoded.split_once(':')?;
        Some((user.to_owned(), password.to_owned()))
    }
}

/// The credentials of an `authorization` value whose scheme is `scheme`
/// (compared case-insensitively, as schemes are).
fn credentials<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
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

/// The error body of every failure, as Swiftarr's error middleware writes it.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: bool,
    status: u16,
    reason: &'a str,
}

impl Reply {
    /// 200 with an empty body.
    pub fn ok() -> Reply {
        Reply::Respond(Response {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        })
    }

    /// `status` with `body` serialised as JSON.
    pub fn json<T: Serialize>(status: u16, body: &T) -> Reply {
        Reply::Respond(Response {
            status,
            headers: vec![("content-type".into(), JSON_TYPE.into())],
            body: serde_json::to_vec(body).unwrap_or_default(),
        })
    }

    /// `status` with the API's error body.
    pub fn error(status: u16, reason: &str) -> Reply {
        Reply::json(
            status,
            &ErrorBody {
                error: true,
                status,
                reason,
            },
        )
    }

    /// 405, naming the method the path does accept.
    pub fn method_not_allowed(allowed: &str) -> Reply {
        let mut reply = Reply::error(405, "Method Not Allowed");
        if let Reply::Respond(response) = &mut reply {
            response.headers.push(("allow".into(), allowed.into()));
        }
        reply
    }

    pub fn unauthorized() -> Reply {
        Reply::error(401, "Unauthorized")
    }

    pub fn bad_request(reason: &str) -> Reply {
        Reply::error(400, reason)
    }

    pub fn not_found(reason: &str) -> Reply {
        Reply::error(404, reason)
    }
}

/// Decodes standard base64 (RFC 4648 alphabet). Padding is optional, as
/// some clients leave it out; whitespace and any other byte are refused.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(byte: u8) -> Option<u32> {
        Some(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let data = text.trim_end_matches('=').as_bytes();
    // At most two padding characters, and only to complete a quantum.
    let padding = text.len() - data.len();
    if padding > 2 || (padding > 0 && !text.len().is_multiple_of(4)) || data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut bits = 0u32;
        for (i, &byte) in chunk.iter().enumerate() {
            bits |= sextet(byte)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        // 2 characters carry 1 byte, 3 carry 2, 4 carry 3.
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
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
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zg").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(
            base64_decode("YWxpY2U6YWxpY2UtZGVtby10b2tlbg==").unwrap(),
            b"alice:alice-demo-token"
        );
        assert_eq!(base64_decode("+/+/").unwrap(), vec![0xfb, 0xff, 0xbf]);
    }

    #[test]
    fn base64_refuses_garbage() {
        assert_eq!(base64_decode("Z"), None);
        assert_eq!(base64_decode("Zm9v!"), None);
        assert_eq!(base64_decode("Zg==="), None);
        assert_eq!(base64_decode("Zm 9v"), None);
        assert_eq!(base64_decode("Zg="), None);
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
    fn basic_credentials_split_at_the_first_colon() {
        // "alice:to:ken"
        let request = with_auth("Basic YWxpY2U6dG86a2Vu");
        assert_eq!(
            request.basic_credentials(),
            Some(("alice".into(), "to:ken".into()))
        );
        // "alice" (no colon)
        assert_eq!(with_auth("Basic YWxpY2U=").basic_credentials(), None);
        assert_eq!(with_auth("Bearer YWxpY2U6eA==").basic_credentials(), None);
    }

    #[test]
    fn error_body_has_the_swiftarr_shape() {
        let Reply::Respond(response) = Reply::error(404, "Call not found.") else {
            panic!("not a response");
        };
        assert_eq!(response.status, 404);
        assert_eq!(
            response.headers,
            vec![(
                "content-type".to_string(),
                "application/json; charset=utf-8".to_string()
            )]
        );
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            r#"{"error":true,"status":404,"reason":"Call not found."}"#
        );
    }

    #[test]
    fn method_not_allowed_names_the_allowed_method() {
        let Reply::Respond(response) = Reply::method_not_allowed("POST") else {
            panic!("not a response");
        };
        assert_eq!(response.status, 405);
        assert!(response
            .headers
            .contains(&("allow".to_string(), "POST".to_string())));
    }
}
