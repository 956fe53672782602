//! Connect RPC over JSON, as E2B's SDKs speak it to the process and file service: a unary call
//! is `application/json` both ways; a streaming call is `application/connect+json`, each message
//! an envelope (a flag byte, a 4-byte big-endian length, the JSON), the answer ending with an
//! end-of-stream envelope (flag `0x02`) that carries the error, if any. Errors of unary calls
//! are `{"code": "not_found", "message": …}` with the matching HTTP status.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use sandpit_service::{ErrorKind, ServiceError};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The content type of a unary call.
pub const UNARY: &str = "application/json";
/// The content type of a streaming call.
pub const STREAMING: &str = "application/connect+json";
/// The flag of the envelope that ends a stream.
const END_STREAM: u8 = 0x02;
/// The flag of a compressed envelope (never sent by the SDKs, which compress nothing).
const COMPRESSED: u8 = 0x01;
/// The largest message a client may send.
pub const MAX_MESSAGE: usize = 16 << 20;

/// A Connect error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The request is wrong.
    InvalidArgument,
    /// It took too long.
    DeadlineExceeded,
    /// What it names does not exist.
    NotFound,
    /// What it makes exists already.
    AlreadyExists,
    /// It is not allowed.
    PermissionDenied,
    /// A limit was reached.
    ResourceExhausted,
    /// Not offered.
    Unimplemented,
    /// The server failed.
    Internal,
    /// The sandbox cannot be reached now.
    Unavailable,
    /// No valid credentials.
    Unauthenticated,
}

impl Code {
    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    /// The HTTP status of a unary call that fails with it.
    pub fn status(self) -> StatusCode {
        match self {
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }

    /// The kind the metrics count it as.
    fn kind(self) -> ErrorKind {
        match self {
            Code::InvalidArgument => ErrorKind::InvalidInput,
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::Conflict,
            Code::PermissionDenied => ErrorKind::Refused,
            Code::ResourceExhausted => ErrorKind::Exhausted,
            Code::Unimplemented => ErrorKind::Unsupported,
            Code::Unavailable => ErrorKind::EngineUnavailable,
            Code::Unauthenticated => ErrorKind::Unauthorized,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::Internal => ErrorKind::Internal,
        }
    }
}

/// A Connect error: a code and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    /// Its code.
    pub code: Code,
    /// What went wrong and what to do.
    pub message: String,
}

impl RpcError {
    /// An error with `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// `{"code": …, "message": …}`.
    pub fn body(&self) -> Value {
        json!({ "code": self.code.name(), "message": self.message })
    }
}

impl From<ServiceError> for RpcError {
    fn from(e: ServiceError) -> Self {
        let code = match e.kind {
            ErrorKind::InvalidInput => Code::InvalidArgument,
            ErrorKind::Unauthorized => Code::Unauthenticated,
            ErrorKind::Refused => Code::PermissionDenied,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::Conflict => Code::AlreadyExists,
            ErrorKind::Gone => Code::Unavailable,
            ErrorKind::TooLarge | ErrorKind::Exhausted => Code::ResourceExhausted,
            ErrorKind::Internal => Code::Internal,
            ErrorKind::Unsupported => Code::Unimplemented,
            ErrorKind::EngineUnavailable => Code::Unavailable,
            ErrorKind::Timeout => Code::DeadlineExceeded,
        };
        RpcError::new(code, e.message)
    }
}

impl RpcError {
    /// The error as the call's protocol answers it: in an end-of-stream envelope for a
    /// streaming call, as a JSON body with the code's status otherwise.
    pub fn into_response_for(self, headers: &HeaderMap) -> Response {
        match protocol(headers) {
            Ok(Protocol::Streaming) => streaming_error(self),
            _ => self.into_response(),
        }
    }
}

impl IntoResponse for RpcError {
    /// The answer of a unary call that failed.
    fn into_response(self) -> Response {
        let mut response = (self.code.status(), axum::Json(self.body())).into_response();
        response.extensions_mut().insert(self.code.kind());
        response
    }
}

/// How a call came: unary (`application/json`) or streaming (`application/connect+json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// One JSON message each way.
    Unary,
    /// Enveloped messages.
    Streaming,
}

/// A content type this server does not speak (`415`).
#[derive(Debug)]
pub struct UnsupportedType(String);

impl IntoResponse for UnsupportedType {
    fn into_response(self) -> Response {
        let mut response = (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            [("accept-post", "application/json, application/connect+json")],
            format!(
                "content type {:?} is not served: this server speaks Connect with JSON \
                 (application/json for unary calls, application/connect+json for streams)",
                self.0
            ),
        )
            .into_response();
        response.extensions_mut().insert(ErrorKind::InvalidInput);
        response
    }
}

/// The protocol a request's content type names; binary protobuf is refused (the SDKs never
/// send it).
pub fn protocol(headers: &HeaderMap) -> Result<Protocol, UnsupportedType> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        UNARY => Ok(Protocol::Unary),
        STREAMING => Ok(Protocol::Streaming),
        _ => Err(UnsupportedType(content_type)),
    }
}

/// Parses one message into `T`.
pub fn message<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RpcError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        RpcError::new(
            Code::InvalidArgument,
            format!("the request message is not the JSON this method takes: {e}"),
        )
    })
}

/// Splits a streaming request body into its messages, checking every envelope.
pub fn envelopes(mut body: &[u8]) -> Result<Vec<Bytes>, RpcError> {
    let mut messages = Vec::new();
    while !body.is_empty() {
        if body.len() < 5 {
            return Err(RpcError::new(
                Code::InvalidArgument,
                format!(
                    "a Connect envelope needs 5 header bytes (flags, 4-byte length); {} are left",
                    body.len()
                ),
            ));
        }
        let flags = body[0];
        let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        if flags & COMPRESSED != 0 {
            return Err(RpcError::new(
                Code::Unimplemented,
                "compressed Connect messages are not served: send them uncompressed",
            ));
        }
        if length > MAX_MESSAGE {
            return Err(RpcError::new(
                Code::ResourceExhausted,
                format!("a message of {length} bytes passes the limit of {MAX_MESSAGE}"),
            ));
        }
        let Some(payload) = body.get(5..5 + length) else {
            return Err(RpcError::new(
                Code::InvalidArgument,
                format!(
                    "a Connect envelope announces {length} bytes but {} follow",
                    body.len() - 5
                ),
            ));
        };
        if flags & END_STREAM == 0 {
            messages.push(Bytes::copy_from_slice(payload));
        }
        body = &body[5 + length..];
    }
    Ok(messages)
}

/// One message of a streaming answer.
pub fn frame(message: &Value) -> Bytes {
    envelope(0, message)
}

/// The envelope that ends a streaming answer, with its error if any.
pub fn end(error: Option<&RpcError>) -> Bytes {
    let body = match error {
        Some(e) => json!({ "error": e.body() }),
        None => json!({}),
    };
    envelope(END_STREAM, &body)
}

fn envelope(flags: u8, message: &Value) -> Bytes {
    let json = serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec());
    let mut out = BytesMut::with_capacity(5 + json.len());
    out.put_u8(flags);
    out.put_u32(json.len() as u32);
    out.put_slice(&json);
    out.freeze()
}

/// The answer of a unary call.
pub fn unary(result: Result<Value, RpcError>) -> Response {
    match result {
        Ok(value) => (StatusCode::OK, axum::Json(value)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A streaming answer from envelopes (the last one being [`end`]).
pub fn streaming(frames: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    use futures_util::StreamExt;
    let body = Body::from_stream(frames.map(Ok::<_, Infallible>));
    (StatusCode::OK, [(header::CONTENT_TYPE, STREAMING)], body).into_response()
}

/// A streaming answer that is one error.
pub fn streaming_error(e: RpcError) -> Response {
    let kind = e.code.kind();
    let mut response = streaming(futures_util::stream::iter([end(Some(&e))]));
    response.extensions_mut().insert(kind);
    response
}

/// Standard base64, as protobuf's JSON mapping writes bytes.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Bytes from protobuf's JSON mapping (standard or URL-safe base64, padded or not).
pub fn from_base64(text: &str) -> Result<Vec<u8>, RpcError> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let clean = text.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(clean)
        .or_else(|_| URL_SAFE_NO_PAD.decode(clean))
        .map_err(|_| RpcError::new(Code::InvalidArgument, "bytes are not valid base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flags];
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn envelopes_round_trip() {
        let f = envelope(0, &json!({"a": 1}));
        assert_eq!(&f[..5], &[0, 0, 0, 0, 7]);
        assert_eq!(
            envelopes(&f).unwrap(),
            vec![Bytes::from_static(b"{\"a\":1}")]
        );
        let mut two = raw(0, b"{}");
        two.extend(raw(0, b"[1]"));
        two.extend(raw(END_STREAM, b"{}"));
        assert_eq!(envelopes(&two).unwrap().len(), 2);
        let e = end(Some(&RpcError::new(Code::NotFound, "gone")));
        assert_eq!(e[0], END_STREAM);
        let v: Value = serde_json::from_slice(&e[5..]).unwrap();
        assert_eq!(v["error"]["code"], "not_found");
    }

    #[test]
    fn malformed_envelopes_say_what_is_wrong() {
        assert_eq!(
            envelopes(&[0, 0, 0]).unwrap_err().code,
            Code::InvalidArgument
        );
        let short = raw(0, b"{}");
        let e = envelopes(&short[..6]).unwrap_err();
        assert!(e.message.contains("announces 2 bytes"), "{e:?}");
        assert_eq!(
            envelopes(&raw(COMPRESSED, b"x")).unwrap_err().code,
            Code::Unimplemented
        );
        let mut huge = vec![0u8];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(envelopes(&huge).unwrap_err().code, Code::ResourceExhausted);
    }

    #[test]
    fn bytes_decode_in_either_alphabet() {
        assert_eq!(from_base64("aGk=").unwrap(), b"hi");
        assert_eq!(from_base64("aGk").unwrap(), b"hi");
        assert_eq!(from_base64("-_8").unwrap(), vec![0xfb, 0xff]);
        assert!(from_base64("!!").is_err());
        assert_eq!(base64(b"hi"), "aGk=");
    }

    #[test]
    fn codes_map_to_statuses() {
        assert_eq!(Code::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(Code::Unauthenticated.status(), StatusCode::UNAUTHORIZED);
        let e: RpcError = ServiceError::new(ErrorKind::Conflict, "x").into();
        assert_eq!(e.code, Code::AlreadyExists);
    }
}
