//! The HTTP surface: one module per resource. Handlers parse, authorize, call the
//! domain and the store, and map to DTOs; every one is registered through
//! utoipa-actix-web so that the OpenAPI document cannot miss a route.

pub mod admin;
pub mod auth;
pub mod cases;
pub mod categories;
pub mod client_ip;
pub mod deadlines;
pub mod observe;
pub mod ops;
pub mod photos;
pub mod reports;
pub mod routing;

use actix_web::App;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "civicsnap",
        description = "Citizen snap-and-report (随手拍) backend: photo and report intake, \
                       ownership routing, the case workflow and its deadlines. Errors are application/problem+json \
                       (RFC 9457) with a stable `code`.",
        license(name = "AGPL-3.0-or-later")
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "ops", description = "Health, readiness, metrics, this document"),
        (name = "auth", description = "Sign-in and tokens"),
        (name = "photos", description = "Photo upload and stripped copies"),
        (name = "reports", description = "Citizen reports"),
        (name = "categories", description = "What can be reported"),
        (name = "routing", description = "Ownership routing (谁主管、谁负责)"),
        (name = "cases", description = "Case workflow: actions, timeline, deadlines, queues"),
        (name = "deadlines", description = "Deadline computation on the working calendar"),
        (name = "admin", description = "Reference data: units, categories, zones, rules (audited)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Registers every endpoint.
pub fn configure(cfg: &mut ServiceConfig) {
    ops::configure(cfg);
    auth::configure(cfg);
    photos::configure(cfg);
    reports::configure(cfg);
    categories::configure(cfg);
    routing::configure(cfg);
    cases::configure(cfg);
    deadlines::configure(cfg);
    admin::configure(cfg);
}

/// The OpenAPI document, built once from the same registrations the server
/// uses.
pub fn openapi() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::LazyLock<utoipa::openapi::OpenApi> =
        std::sync::LazyLock::new(|| {
            let (_, mut api) = App::new()
                .into_utoipa_app()
                .openapi(ApiDoc::openapi())
                .configure(configure)
                .split_for_parts();
            undeclared_input_problems(&mut api);
            problems_as_problem_json(&mut api);
            api
        });
    &DOCUMENT
}

/// Answers every operation can give to input it cannot read, whether or not its
/// own annotation lists them (the extractors' error handlers, `error::extractors`):
/// no valid token where one is required 401; a bad query string 400 `invalid_query`; a path value that names nothing 404; a
/// JSON body malformed (400 `malformed_json`), too large (413 `body_too_large`),
/// not JSON (415) or of the wrong shape (422 `invalid_body`); any other body too
/// large 413. An operation's own description of a status is kept.
fn undeclared_input_problems(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::new(PROBLEM_SCHEMA)))
                        .build(),
                )
                .build(),
        )
    };
    for operation in operations_mut(api) {
        let located = |place: ParameterIn| {
            operation
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
        };
        let (query, path) = (located(ParameterIn::Query), located(ParameterIn::Path));
        let body = match &operation.request_body {
            Some(RefOr::T(body)) => Some(body.content.contains_key("application/json")),
            _ => None,
        };
        let signed_in = operation.security.as_ref().is_some_and(|s| !s.is_empty());
        let mut undeclared = Vec::new();
        if signed_in {
            undeclared.push(("401", "No valid access token (missing, expired or forged)"));
        }
        if query || body == Some(true) {
            undeclared.push((
                "400",
                "Malformed query string (`invalid_query`) or JSON body (`malformed_json`)",
            ));
        }
        if path {
            undeclared.push((
                "404",
                "Nothing with this id, or a path value that cannot name anything",
            ));
        }
        if body.is_some() {
            undeclared.push(("413", "Body larger than the limit (`body_too_large`)"));
        }
        if body == Some(true) {
            undeclared.push(("415", "Body not sent as `application/json`"));
            undeclared.push((
                "422",
                "Body of the wrong shape (`invalid_body`) or invalid values",
            ));
        }
        for (status, description) in undeclared {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| problem(description));
        }
    }
}

const PROBLEM_SCHEMA: &str = "#/components/schemas/Problem";

/// A path's operations by the method that serves them.
fn by_method(item: &mut PathItem) -> [(&'static str, &mut Option<Operation>); 5] {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("PATCH", &mut item.patch),
    ]
}

/// Every operation of the document, whatever its path and method.
fn operations_mut(api: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    api.paths.paths.values_mut().flat_map(|item| {
        by_method(item)
            .into_iter()
            .filter_map(|(_, operation)| operation.as_mut())
    })
}

/// One documented path: its segments (`None` for a `{parameter}`) and the
/// methods served there.
struct Route {
    segments: Vec<Option<String>>,
    methods: Vec<&'static str>,
}

/// The methods served at `path` (HEAD wherever GET is, as HTTP requires), over
/// every documented path that matches it: `/admin/zones/import` is also
/// `/admin/zones/{code}`, and the router tries both. `None` for a path the API
/// does not have. The routes come from the OpenAPI document, which a test keeps
/// equal to what is served.
pub fn methods_at(path: &str) -> Option<Vec<&'static str>> {
    static ROUTES: std::sync::LazyLock<Vec<Route>> = std::sync::LazyLock::new(|| {
        let mut api = openapi().clone();
        api.paths
            .paths
            .iter_mut()
            .map(|(template, item)| Route {
                segments: template
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect(),
                methods: by_method(item)
                    .into_iter()
                    .filter(|(_, operation)| operation.is_some())
                    .flat_map(|(method, _)| {
                        std::iter::once(method).chain((method == "GET").then_some("HEAD"))
                    })
                    .collect(),
            })
            .collect()
    });
    let segments: Vec<&str> = path.split('/').collect();
    let mut methods: Vec<&'static str> = Vec::new();
    let matching = ROUTES.iter().filter(|route| {
        route.segments.len() == segments.len()
            && route
                .segments
                .iter()
                .zip(&segments)
                .all(|(want, got)| want.as_deref().is_none_or(|want| want == *got))
    });
    for route in matching {
        for method in &route.methods {
            if !methods.contains(method) {
                methods.push(method);
            }
        }
    }
    (!methods.is_empty()).then_some(methods)
}

/// utoipa types every response body `application/json`; problems go out as
/// `application/problem+json` (RFC 9457), and the document must say so. Runs on
/// the finished document because the paths are merged in after `ApiDoc`'s
/// modifiers.
fn problems_as_problem_json(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    for operation in operations_mut(api) {
        for response in operation.responses.responses.values_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            let is_problem = matches!(
                response.content.get("application/json"),
                Some(RefOr::T(content))
                    if matches!(&content.schema, Some(RefOr::Ref(r)) if r.ref_location == PROBLEM_SCHEMA)
            );
            if !is_problem {
                continue;
            }
            if let Some(content) = response.content.shift_remove("application/json") {
                response
                    .content
                    .insert(crate::error::PROBLEM_JSON.to_owned(), content);
            }
        }
    }
}

/// The document as YAML, exactly as committed in `openapi.yaml`; rendered once.
pub fn openapi_yaml() -> &'static str {
    static YAML: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        openapi()
            .to_yaml()
            .unwrap_or_else(|e| format!("# cannot render OpenAPI: {e}\n"))
    });
    &YAML
}

#[cfg(test)]
mod tests {
    /// Every admin operation checks the caller's role, so each can answer 403;
    /// the document must say so where the annotation is written.
    #[test]
    fn every_admin_operation_documents_the_refusal() {
        let api = serde_json::to_value(super::openapi()).expect("the document serialises");
        let mut undocumented = Vec::new();
        for (path, item) in api["paths"].as_object().expect("paths") {
            if !path.starts_with("/api/v1/admin/") {
                continue;
            }
            for (method, operation) in item.as_object().expect("path item") {
                if operation["responses"].get("403").is_none() {
                    undocumented.push(format!("{method} {path}"));
                }
            }
        }
        assert!(undocumented.is_empty(), "no 403: {undocumented:?}");
    }

    #[test]
    fn every_problem_response_is_documented_as_problem_json() {
        let yaml = super::openapi_yaml();
        let problems = yaml.matches(super::PROBLEM_SCHEMA).count();
        assert!(problems > 50, "problem responses: {problems}");
        let api = serde_json::to_value(super::openapi()).expect("the document serialises");
        let mut as_plain_json = Vec::new();
        for (path, item) in api["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                    let plain = &response["content"]["application/json"]["schema"]["$ref"];
                    if plain == super::PROBLEM_SCHEMA {
                        as_plain_json.push(format!("{method} {path} {status}"));
                    }
                }
            }
        }
        assert!(as_plain_json.is_empty(), "{as_plain_json:?}");
    }

    /// utoipa takes a pattern only as a literal, so the document's copies of
    /// the code rule are checked against `CODE_PATTERN` here.
    #[test]
    fn code_patterns_in_the_document_are_the_code_rule() {
        fn patterns(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        match (key.as_str(), value.as_str()) {
                            ("pattern", Some(pattern)) => found.push(pattern.to_owned()),
                            _ => patterns(value, found),
                        }
                    }
                }
                serde_json::Value::Array(items) => {
                    items.iter().for_each(|item| patterns(item, found));
                }
                _ => {}
            }
        }
        let api = serde_json::to_value(super::openapi()).expect("the document serialises");
        let mut found = Vec::new();
        patterns(&api, &mut found);
        let copies_of = |rule: &str, marker: &str| {
            let copies: Vec<&String> = found.iter().filter(|p| p.contains(marker)).collect();
            for pattern in &copies {
                assert_eq!(pattern.as_str(), rule);
            }
            copies.len()
        };
        // A unit's code and its parent's, a zone's code and its parent's in an
        // import, a deadline profile's id, a calendar's jurisdiction (loaded and
        // previewed), four filters on each of two queues.
        assert_eq!(
            copies_of(crate::domain::code::CODE_PATTERN, "A-Za-z0-9_-]{1,64}"),
            15
        );
        // A category's path, a report's category, a routing preview's category.
        assert_eq!(
            copies_of(
                crate::domain::code::CATEGORY_CODE_PATTERN,
                "[0-9]{2}([0-9]{2})?"
            ),
            3
        );
        // A routing rule's category prefix; a deadline profile's.
        assert_eq!(
            copies_of(crate::domain::code::CATEGORY_PREFIX_PATTERN, "{2}){0,"),
            1
        );
        assert_eq!(
            copies_of(crate::domain::code::PROFILE_PREFIX_PATTERN, r"(\*|"),
            1
        );
    }

    /// The same for the years a calendar upload may bring.
    #[test]
    fn the_documented_calendar_years_are_the_uploadable_ones() {
        use crate::domain::deadline::UPLOADABLE_YEARS;
        let api = serde_json::to_value(super::openapi()).expect("the document serialises");
        let year = &api["components"]["schemas"]["CalendarYear"]["properties"]["year"];
        assert_eq!(year["minimum"], *UPLOADABLE_YEARS.start(), "{year}");
        assert_eq!(year["maximum"], *UPLOADABLE_YEARS.end(), "{year}");
    }
}
