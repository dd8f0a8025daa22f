//! The OpenAPI document of `/api/v1`, derived from the handlers' annotations and the
//! request and response types, so it cannot drift from them unnoticed.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api::{self, ErrorBody, ErrorItem, LinkOut};
use super::link_request::{LinkRequest, Person};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "leadgate API",
        description = "Payment links for other tools. Bearer tokens are made by the operator on /admin or with `leadgate api-token create`."
    ),
    paths(api::create, api::show),
    components(schemas(LinkRequest, Person, LinkOut, ErrorBody, ErrorItem)),
    modifiers(&Bearer)
)]
pub struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", scheme);
    }
}

/// `GET /api/v1/openapi.json`: public, like any API's reference.
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
