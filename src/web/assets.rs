//! The files under `static/`, built into the binary: one table, one handler, with an ETag
//! so a browser's revalidation after `max-age` costs a 304 and no body.

use std::sync::LazyLock;

use actix_web::http::header::{self, EntityTag, IfNoneMatch};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// An hour: long enough to spare repeat visits, short enough that a fix to a script that
/// marketing sites embed reaches them the same day (their pages cannot carry our version).
const CACHE_CONTROL: &str = "public, max-age=3600";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const FILES: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../static/app.css"),
    },
    Asset {
        name: "status.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/status.js"),
    },
    // The embed (see `web::embed`): on the marketing site's page, inside the framed form,
    // and the admin page's copy button.
    Asset {
        name: "embed.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/embed.js"),
    },
    Asset {
        name: "frame.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/frame.js"),
    },
    Asset {
        name: "admin.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/admin.js"),
    },
    Asset {
        name: "phone.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../static/phone.js"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../../static/favicon.svg"),
    },
    Asset {
        name: "favicon.ico",
        content_type: "image/x-icon",
        body: include_bytes!("../../static/favicon.ico"),
    },
];

/// Strong validators, computed once: the bytes never change while the binary runs.
static TAGS: LazyLock<Vec<EntityTag>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|a| EntityTag::new_strong(hex::encode(&Sha256::digest(a.body)[..12])))
        .collect()
});

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{file}", web::get().to(serve))
        .route("/favicon.ico", web::get().to(favicon));
}

async fn serve(req: HttpRequest, file: web::Path<String>) -> HttpResponse {
    respond(&req, &file)
}

/// Browsers ask for it whatever the page says; answering spares a 404 per first visit.
async fn favicon(req: HttpRequest) -> HttpResponse {
    respond(&req, "favicon.ico")
}

fn respond(req: &HttpRequest, name: &str) -> HttpResponse {
    let Some(i) = FILES.iter().position(|a| a.name == name) else {
        return HttpResponse::NotFound().finish();
    };
    let (asset, tag) = (&FILES[i], &TAGS[i]);
    let fresh = match req.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(tag)),
        None => false,
    };
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header(header::ETag(tag.clone()));
    if fresh {
        return res.finish();
    }
    res.content_type(asset.content_type).body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_tag_and_a_type() {
        assert_eq!(TAGS.len(), FILES.len());
        for (i, a) in FILES.iter().enumerate() {
            assert!(!a.body.is_empty(), "{}", a.name);
            assert!(a.content_type.contains('/'), "{}", a.name);
            assert!(TAGS.iter().skip(i + 1).all(|t| !t.strong_eq(&TAGS[i])), "{}", a.name);
        }
    }
}
