//! Input extractors that answer every rejection as an [`ApiError`] with field-level messages:
//! JSON bodies ([`ApiJson`], validated by [`Validate`]), query strings ([`ApiQuery`], and
//! [`ListQuery`] for a list's filters with its page) and path parameters ([`ApiPath`]).
//!
//! | rejection | status | code |
//! |---|---|---|
//! | no `Content-Type: application/json` | 415 | `unsupported_media_type` |
//! | body over [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES) | 413 | `payload_too_large` |
//! | body stalled past the body read timeout | 408 | `body_timeout` |
//! | not JSON (syntax, truncated) | 400 | `malformed_json` |
//! | wrong type, unknown or missing field, out of range | 422 | `invalid_request` + `fields` |
//! | query string | 400 | `invalid_query` + `fields` |
//! | path parameter | 400 | `invalid_path` + `fields` |

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::{DeserializeOwned, Deserializer, Visitor};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Field-level problems found while checking a request's input.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    /// Records a problem with `field` (the first problem of a field wins).
    pub(crate) fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| problem.into());
    }

    /// `field` must lie in `min..=max` when present.
    pub(crate) fn range<T: PartialOrd + std::fmt::Display>(
        &mut self,
        field: &str,
        value: Option<T>,
        min: T,
        max: T,
    ) {
        if let Some(value) = value
            && !(min <= value && value <= max)
        {
            self.add(
                field,
                format!("must be between {min} and {max} (got {value})"),
            );
        }
    }

    /// `field` must be `min..=max` characters long when present.
    pub(crate) fn length(&mut self, field: &str, value: Option<&str>, min: usize, max: usize) {
        if let Some(value) = value {
            let chars = value.chars().count();
            if chars < min || chars > max {
                self.add(
                    field,
                    format!("must be {min} to {max} characters long (got {chars})"),
                );
            }
        }
    }

    /// The problems as an error, or `Ok` when there are none.
    pub(crate) fn into_result(
        self,
        status: StatusCode,
        code: &'static str,
    ) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_fields(status, code, self.0))
        }
    }
}

/// Checks a parsed input beyond its types (ranges, lengths), reporting every field at once.
/// The engines check again and stay the authority; this gives clients all problems in one
/// answer before any work starts.
pub(crate) trait Validate {
    /// Records each problem in `errors`.
    fn validate(&self, errors: &mut FieldErrors);
}

/// The field a serde error names: its path, or the field in a "missing field" or "unknown
/// field" message (serde reports a missing field at the enclosing object).
fn serde_field(path: &str, message: &str) -> (String, String) {
    // serde_json appends " at line L column C"; the field already says where.
    let message = message.rsplit_once(" at line ").map_or(message, |(m, _)| m);
    let quoted = |rest: &str| rest.split('`').next().map(str::to_owned);
    let within = |field: &str| match path {
        "." => field.to_owned(),
        p if p == field || p.ends_with(&format!(".{field}")) => p.to_owned(),
        p => format!("{p}.{field}"),
    };
    if let Some(field) = message.strip_prefix("missing field `").and_then(quoted) {
        return (within(&field), "is required".to_owned());
    }
    if let Some(field) = message.strip_prefix("unknown field `").and_then(quoted) {
        let expected = message
            .split_once(", expected ")
            .map(|(_, e)| format!(" (expected {e})"))
            .unwrap_or_default();
        return (within(&field), format!("is not a known field{expected}"));
    }
    let field = match path {
        "." => "body".to_owned(),
        p => p.to_owned(),
    };
    (field, message.to_owned())
}

/// Whether reading the body failed with an `E` somewhere in the rejection's sources: axum
/// recognises a body limit only up to two wrappings deep, and the edge's body layers add more.
fn caused_by<E: std::error::Error + 'static>(
    rejection: &(dyn std::error::Error + 'static),
) -> bool {
    let mut source = Some(rejection);
    while let Some(error) = source {
        if error.is::<E>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// The answer to a body that could not be read: over the size limit (413, also when
/// `too_large` says so already), stalled past the body read timeout (408), or broken (400).
pub(crate) fn unreadable_body(
    error: &(dyn std::error::Error + 'static),
    too_large: bool,
) -> ApiError {
    if too_large || caused_by::<http_body_util::LengthLimitError>(error) {
        ApiError::payload_too_large()
    } else if caused_by::<tower_http::timeout::TimeoutError>(error) {
        ApiError::body_timeout()
    } else {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            format!("the request body could not be read: {error}"),
        )
    }
}

fn is_json(parts: &Parts) -> bool {
    let Some(content_type) = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A JSON request body, parsed and [validated](Validate).
#[derive(Debug)]
pub(crate) struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        if !is_json(&parts) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be JSON: send Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| {
                let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
                unreadable_body(&rejection, too_large)
            })?;
        let malformed = |message: String| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {message}"),
            )
        };
        // Syntax first, then shape: every body is an object (serde would also take a struct
        // from an array, by position).
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|error| malformed(error.to_string()))?;
        let invalid = |field: String, problem: String| {
            ApiError::invalid_fields(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                BTreeMap::from([(field, problem)]),
            )
        };
        if !json.is_object() {
            return Err(invalid("body".into(), "must be a JSON object".into()));
        }
        let value: T = serde_path_to_error::deserialize(json).map_err(|error| {
            let (field, problem) =
                serde_field(&error.path().to_string(), &error.inner().to_string());
            invalid(field, problem)
        })?;
        let mut errors = FieldErrors::default();
        value.validate(&mut errors);
        errors.into_result(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")?;
        Ok(Self(value))
    }
}

/// A query string, parsed and [validated](Validate); unknown parameters are refused.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value: T = parse_query(parts.uri.query().unwrap_or_default())
            .map_err(|(field, problem)| query_refused(field, problem))?;
        let mut errors = FieldErrors::default();
        value.validate(&mut errors);
        errors.into_result(StatusCode::BAD_REQUEST, "invalid_query")?;
        Ok(Self(value))
    }
}

/// A list's query string: its own filters `F` and its page `P` (`?limit=&offset=` unless the
/// list also pages by cursor), each its own type, so a list declares only its filters. Answers
/// exactly as an [`ApiQuery`] of one struct holding the filters' fields, then the page's:
/// unknown parameters are refused naming all of them, and of several problems the one met
/// first reading the query string in order is reported.
#[derive(Debug)]
pub(crate) struct ListQuery<F, P> {
    /// The list's filters.
    pub(crate) filter: F,
    /// The page asked for.
    pub(crate) page: P,
}

impl<F, P, S> FromRequestParts<S> for ListQuery<F, P>
where
    F: DeserializeOwned + Validate,
    P: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let (filter_fields, page_fields) = (field_names::<F>(), field_names::<P>());
        let pairs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
        let mut filter_query = form_urlencoded::Serializer::new(String::new());
        let mut page_query = form_urlencoded::Serializer::new(String::new());
        let mut unknown = None;
        for (at, (key, value)) in pairs.iter().enumerate() {
            if page_fields.contains(&key.as_ref()) {
                page_query.append_pair(key, value);
            } else if filter_fields.contains(&key.as_ref()) {
                filter_query.append_pair(key, value);
            } else if unknown.is_none() {
                let expected: Vec<&str> =
                    filter_fields.iter().chain(page_fields).copied().collect();
                unknown = Some((at, unknown_field(key, &expected)));
            }
        }
        let (filter, page) = match (
            parse_query::<F>(&filter_query.finish()),
            parse_query::<P>(&page_query.finish()),
        ) {
            (Ok(filter), Ok(page)) if unknown.is_none() => (filter, page),
            (filter, page) => {
                // serde reads a query in order and stops at the first problem: report that one.
                let (field, problem) = [filter.err(), page.err()]
                    .into_iter()
                    .flatten()
                    .map(|problem| (position(&pairs, &problem), problem))
                    .chain(unknown)
                    .min_by_key(|(at, _)| *at)
                    .map(|(_, problem)| problem)
                    .unwrap_or_default();
                return Err(query_refused(field, problem));
            }
        };
        let mut errors = FieldErrors::default();
        filter.validate(&mut errors);
        page.validate(&mut errors);
        errors.into_result(StatusCode::BAD_REQUEST, "invalid_query")?;
        Ok(Self { filter, page })
    }
}

/// Parses a query string into `T`; a problem comes back as the parameter it concerns (`query`
/// when it names none) and what is wrong.
fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, (String, String)> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let (field, problem) = serde_field(&error.path().to_string(), &error.inner().to_string());
        let field = if field == "body" {
            "query".to_owned()
        } else {
            field
        };
        (field, problem)
    })
}

fn query_refused(field: String, problem: String) -> ApiError {
    ApiError::invalid_fields(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        BTreeMap::from([(field, problem)]),
    )
}

/// What serde says of a parameter `key` that is none of `expected` (its wording, as
/// [`serde_field`] reads it).
fn unknown_field(key: &str, expected: &[&str]) -> (String, String) {
    let quoted: Vec<String> = expected.iter().map(|name| format!("`{name}`")).collect();
    let expected = match quoted.as_slice() {
        [] => "there are no fields".to_owned(),
        [one] => format!("expected {one}"),
        [one, two] => format!("expected {one} or {two}"),
        many => format!("expected one of {}", many.join(", ")),
    };
    serde_field(".", &format!("unknown field `{key}`, {expected}"))
}

/// Where in the query string serde meets `problem`: a repeated parameter at its second
/// occurrence, a bad value at its parameter, anything else after the last parameter.
fn position(pairs: &[(Cow<'_, str>, Cow<'_, str>)], (field, problem): &(String, String)) -> usize {
    let duplicate = problem
        .strip_prefix("duplicate field `")
        .and_then(|rest| rest.split('`').next());
    let (key, nth) = match duplicate {
        Some(key) => (key, 1),
        None => (field.as_str(), 0),
    };
    pairs
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| name == key)
        .nth(nth)
        .map_or(pairs.len(), |(at, _)| at)
}

/// The field names a struct's derived `Deserialize` accepts (none when `T` is not a struct):
/// serde hands them to `deserialize_struct`, which this deserializer records and then fails.
fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Path parameters; a parameter that does not parse names itself in `fields`.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(error)) => {
                let kind = error.into_kind();
                let field = match &kind {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key } => key.clone(),
                    _ => "path".to_owned(),
                };
                let problem = match &kind {
                    ErrorKind::ParseErrorAtKey {
                        value,
                        expected_type,
                        ..
                    } => format!("{value:?} is not a valid {expected_type}"),
                    ErrorKind::DeserializeError { value, message, .. } => {
                        format!("{value:?} is not valid: {message}")
                    }
                    other => other.to_string(),
                };
                Err(ApiError::invalid_fields(
                    StatusCode::BAD_REQUEST,
                    "invalid_path",
                    BTreeMap::from([(field, problem)]),
                ))
            }
            Err(other) => {
                tracing::error!(error = %other, "path parameters missing: a routing bug");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the server could not complete the request; retry later",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::lists::MAX_PAGE;
    use serde::Deserialize;

    /// A list's filters, as a route declares them.
    #[allow(dead_code)] // parsed, never read
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Filter {
        status: Option<u8>,
        #[serde(default)]
        flag: bool,
    }

    impl Validate for Filter {
        fn validate(&self, errors: &mut FieldErrors) {
            errors.range("status", self.status, 1, 5);
        }
    }

    /// The same filters with the page's fields after them, in one struct.
    #[allow(dead_code)] // parsed, never read
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct FilterThenPage {
        status: Option<u8>,
        #[serde(default)]
        flag: bool,
        limit: Option<u64>,
        offset: Option<u64>,
    }

    impl Validate for FilterThenPage {
        fn validate(&self, errors: &mut FieldErrors) {
            errors.range("status", self.status, 1, 5);
            errors.range("limit", self.limit, 1, MAX_PAGE);
        }
    }

    /// The refusal of `query`, or `None` when it is accepted.
    async fn refusal<T: FromRequestParts<(), Rejection = ApiError>>(query: &str) -> Option<String> {
        let request = axum::http::Request::builder()
            .uri(format!("/list?{query}"))
            .body(())
            .ok()?;
        let (mut parts, ()) = request.into_parts();
        T::from_request_parts(&mut parts, &())
            .await
            .err()
            .map(|e| format!("{e:?}"))
    }

    #[tokio::test]
    async fn a_list_query_answers_as_one_struct_of_its_filters_and_page_would() {
        let queries = [
            "",
            "limit=0",
            "limit=101",
            "limit=100",
            "limit=abc",
            "limit=",
            "offset=-1",
            "offset=5&limit=1",
            "foo=1",
            "limit=5&foo=1",
            "foo=1&limit=abc",
            "limit=abc&foo=1",
            "status=9",
            "status=x",
            "status=x&limit=abc",
            "limit=abc&status=x",
            "limit=0&status=9",
            "limit=0&status=x",
            "limit=1&limit=2",
            "limit=x&limit=2",
            "limit=1&limit=x",
            "status=1&status=2&limit=x",
            "limit=1&status=1&status=x",
            "flag=maybe",
            "flag=true",
            "=x",
            "cursor=abc",
            "limit=1%00",
            "foo=1&bar=2&limit=3",
        ];
        let mut refused = 0;
        for query in queries {
            let answer = refusal::<ListQuery<Filter, crate::routes::lists::PageQuery>>(query).await;
            assert_eq!(
                answer,
                refusal::<ApiQuery<FilterThenPage>>(query).await,
                "{query:?}"
            );
            refused += usize::from(answer.is_some());
        }
        assert_eq!(refused, queries.len() - 4, "all but four are refused");
    }

    #[test]
    fn serde_messages_name_the_field() {
        let root = ".";
        assert_eq!(
            serde_field(root, "missing field `task` at line 1 column 2"),
            ("task".into(), "is required".into())
        );
        let (field, problem) = serde_field(
            "colour",
            "unknown field `colour`, expected `value` or `source` at line 1 column 9",
        );
        assert_eq!(field, "colour");
        assert!(
            problem.contains("expected `value` or `source`"),
            "{problem}"
        );
    }
}
