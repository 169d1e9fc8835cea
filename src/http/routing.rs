//! Why a report at a place, of a category, goes to whom.

use actix_web::{post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::reports::LocationInput;
use crate::auth::AuthUser;
use crate::domain::code::{CATEGORY_CODE_RULE, is_category_code};
use crate::domain::geo::{LatLon, PositionError, check_accuracy};
use crate::domain::routing::Explanation;
use crate::error::ApiError;
use crate::error::extractors::Json;
use crate::state::{AppState, now};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(preview);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoutingPreviewRequest {
    pub location: LocationInput,
    /// A category code (大类 or 小类).
    #[schema(pattern = "^[0-9]{2}([0-9]{2})?$")]
    pub category: String,
}

/// Explains the routing decision for a point and category: the zones around it,
/// every candidate rule and why it won or lost, and the winner (lead unit,
/// co-units, deadline profile). Staff only.
#[utoipa::path(
    tag = "routing",
    request_body = RoutingPreviewRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Explanation),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    )
)]
#[post("/api/v1/routing/preview")]
async fn preview(
    user: AuthUser,
    state: web::Data<AppState>,
    body: Json<RoutingPreviewRequest>,
) -> Result<web::Json<Explanation>, ApiError> {
    user.require(|r| r.is_staff(), "routing previews are for staff")?;
    let invalid_location =
        |e: PositionError| ApiError::invalid_field("location", "invalid_location", e.to_string());
    let given = LatLon::new(body.location.lat, body.location.lon).map_err(invalid_location)?;
    check_accuracy(body.location.accuracy_m).map_err(invalid_location)?;
    let category = body.category.trim();
    if !is_category_code(category) {
        return Err(ApiError::invalid_field(
            "category",
            "invalid_category",
            CATEGORY_CODE_RULE,
        ));
    }
    let location = given.to_wgs84(body.location.crs);
    Ok(web::Json(state.routing.table().explain(
        location,
        category,
        now(),
    )))
}
