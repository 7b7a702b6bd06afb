//! The gRPC calls as they reach the plugin: the request and reply shapes
//! (plain copies of the wit records), the service's paths, the bearer
//! token, gRPC status codes, and refusals as trailers-only responses.

use crate::host::{Host, Level};
use crate::state::{Mode, Pending, State};

/// The service's path prefix: `/<package>.<Service>/`.
pub const SERVICE_PATH: &str = "/wgtwo.webterminal.v0.WebTerminalService/";

/// gRPC status codes the plugin uses.
pub mod status {
    pub const OK: u16 = 0;
    pub const INVALID_ARGUMENT: u16 = 3;
    pub const PERMISSION_DENIED: u16 = 7;
    pub const UNIMPLEMENTED: u16 = 12;
    pub const UNAVAILABLE: u16 = 14;
    pub const UNAUTHENTICATED: u16 = 16;
}

/// An HTTP request routed to the plugin (the wit `http-request`).
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names are lower case (the host guarantees it).
    pub headers: Vec<(String, String)>,
    /// An HTTP/2 `POST` with a gRPC content type.
    pub grpc: bool,
}

impl Request {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token of `authorization: Bearer <token>` (the scheme compared
    /// case-insensitively), if present.
    pub fn bearer_token(&self) -> Option<&str> {
        let (scheme, token) = self.header("authorization")?.trim().split_once(' ')?;
        let token = token.trim();
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
    /// Accept the gRPC call as a stream; the string comes back in
    /// `on-stream-open`.
    Upgrade(String),
}

/// Percent-encodes a `grpc-message` as the gRPC HTTP/2 spec asks: bytes
/// outside printable ASCII, and `%`, become `%XX`.
pub fn encode_message(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A trailers-only response: the call fails with `code` before any
/// message (HTTP 200, the status in the headers).
pub fn grpc_error(code: u16, message: &str) -> Reply {
    Reply::Respond(Response {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/grpc".into()),
            ("grpc-status".into(), code.to_string()),
            ("grpc-message".into(), encode_message(message)),
        ],
        body: Vec::new(),
    })
}

/// The gRPC status a refusal by the switch maps to.
pub fn status_for(code: &str) -> u16 {
    match code {
        "unauthorized" => status::UNAUTHENTICATED,
        "denied" | "forbidden" => status::PERMISSION_DENIED,
        _ => status::UNAVAILABLE,
    }
}

/// Handles one request: a gRPC call to `Pipe` or `MultiPipe` with a valid
/// bearer token is accepted as a stream; anything else is refused.
pub fn handle_http<H: Host>(host: &H, state: &mut State, request: &Request) -> Reply {
    if !request.grpc {
        // What the gRPC spec asks of a server given another content type.
        return Reply::Respond(Response {
            status: 415,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: b"this is a gRPC service (HTTP/2 POST, content-type application/grpc)\n".to_vec(),
        });
    }
    let mode = match request.path.strip_prefix(SERVICE_PATH) {
        Some("Pipe") => Mode::Pipe,
        Some("MultiPipe") => Mode::Multi,
        _ => {
            return grpc_error(
                status::UNIMPLEMENTED,
                &format!("unknown method {}", request.path),
            )
        }
    };
    let Some(token) = request.bearer_token() else {
        return grpc_error(
            status::UNAUTHENTICATED,
            "missing `authorization: Bearer <token>` metadata",
        );
    };
    match host.authenticate(token) {
        Ok(user) => {
            host.log(
                Level::Debug,
                &format!("{}: {} call accepted", user.name, request.path),
            );
            Reply::Upgrade(state.add_pending(Pending {
                mode,
                token: token.to_owned(),
            }))
        }
        Err(error) => grpc_error(
            status::UNAUTHENTICATED,
            &format!("invalid token: {}", error.message),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(encode_message("bad id: 100%"), "bad id: 100%25");
        assert_eq!(encode_message("é\n"), "%C3%A9%0A");
    }

    #[test]
    fn bearer_tokens_are_read() {
        let mut request = Request {
            headers: vec![("authorization".into(), "bearer  abc ".into())],
            ..Request::default()
        };
        assert_eq!(request.bearer_token(), Some("abc"));
        request.headers[0].1 = "Basic abc".into();
        assert_eq!(request.bearer_token(), None);
        request.headers[0].1 = "Bearer".into();
        assert_eq!(request.bearer_token(), None);
    }

    #[test]
    fn refusals_are_trailers_only() {
        let Reply::Respond(response) = grpc_error(16, "no") else {
            panic!("not a response");
        };
        assert_eq!(response.status, 200);
        assert!(response.body.is_empty());
        assert!(response
            .headers
            .contains(&("grpc-status".into(), "16".into())));
        assert!(response
            .headers
            .contains(&("content-type".into(), "application/grpc".into())));
    }
}
