//! The embed: the copy-paste snippet marketing puts on a WordPress page. The scripts it
//! relies on (`embed.js` on the parent page, `frame.js` inside the form, `admin.js` for the
//! copy button) are files under `static/`, served by `web::assets`.

use askama::filters::{escape, Html};

use crate::context::AppContext;
use crate::domain::offer::Offer;

/// The query flag that renders the form for a frame (see `checkout::show`).
pub const EMBED_FLAG: &str = "embed=1";

/// Whether a form request asks for the framed layout (`?embed=1`).
pub fn requested(query: &str) -> bool {
    super::query_value(query, "embed").as_deref() == Some("1")
}

/// The offer's plain link, for a button or a menu entry.
pub fn link(public_url: &str, offer: &Offer) -> String {
    format!("{public_url}/c/{}", offer.slug)
}

/// The snippet for `offer`. The browser tests and the README rely on exactly this shape:
/// the frame first (it works alone, at a fixed height, without scripts), then the script
/// that sizes it, then a plain link for pages where frames are refused.
pub fn snippet(public_url: &str, offer: &Offer) -> String {
    // Slugs are `[a-z0-9-]`, public URLs parsed; only the title needs escaping.
    let title = escape(offer.title.default_text(), Html).map_or_else(|_| String::new(), |t| t.to_string());
    let link = link(public_url, offer);
    format!(
        "<iframe src=\"{link}?{EMBED_FLAG}\" data-leadgate-embed title=\"{title}\" width=\"100%\" height=\"820\" \
         style=\"border:0;width:100%\" loading=\"lazy\"></iframe>\n\
         <script src=\"{public_url}/static/embed.js\" async></script>\n\
         <noscript><a href=\"{link}\">{title}</a></noscript>"
    )
}

/// One offer's embed on the admin page.
pub struct EmbedRow {
    pub slug: String,
    pub title: String,
    pub link: String,
    /// Shown escaped in the copy box and rendered as is for the live preview.
    pub snippet: String,
}

pub fn rows(ctx: &AppContext) -> Vec<EmbedRow> {
    let base = ctx.public_url.as_str();
    ctx.settings
        .offers
        .iter()
        .map(|o| EmbedRow {
            slug: o.slug.to_string(),
            title: o.title.default_text().to_owned(),
            link: link(base, o),
            snippet: snippet(base, o),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn the_flag_survives_appended_parameters_and_the_last_value_counts() {
        assert!(requested("embed=1"));
        assert!(requested("utm_source=wp&embed=1&lang=en&lang=es"));
        assert!(requested("embed=0&embed=1"));
        assert!(!requested("embed=1&embed=0"));
        assert!(!requested("embedded=1"));
        assert!(!requested("%ZZ&&="));
    }

    #[test]
    fn the_snippet_frames_the_embed_mode_and_escapes_the_title() {
        let toml =
            "[[offers]]\nslug = \"a-1\"\ntitle = \"Tom & \\\"Jerry\\\" <b>\"\nprice_minor = 100\ncurrency = \"COP\"\n";
        let s = Settings::from_toml(toml, &|_| None).unwrap();
        let offer = s.offer("a-1").unwrap();
        let html = snippet("https://pay.example.com", offer);
        assert!(
            html.starts_with(
                "<iframe src=\"https://pay.example.com/c/a-1?embed=1\" data-leadgate-embed \
                 title=\"Tom &#38; &#34;Jerry&#34; &#60;b&#62;\" width=\"100%\" height=\"820\""
            ),
            "{html}"
        );
        assert!(html.contains("<script src=\"https://pay.example.com/static/embed.js\" async></script>"));
        assert!(
            html.contains("<a href=\"https://pay.example.com/c/a-1\">Tom &#38;"),
            "{html}"
        );
        assert!(!html.contains("<b>"));
    }
}
