//! The frame of every page: language, title, the stylesheet and script (from this origin only),
//! a skip link, the header with who is signed in, and one `main`.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use crate::ui::assets::asset_url;

/// A whole page titled `title`; `user` is the signed-in username (shows the logout button).
pub fn page(title: &str, user: Option<&str>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · data-processor" }
                link rel="stylesheet" href=(asset_url("app.css"));
                script src=(asset_url("app.js")) defer {}
            }
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.site-header {
                    a.brand href="/files" { "data-processor" }
                    @if let Some(user) = user {
                        nav aria-label="Account" {
                            span.who { "Signed in as " strong { (user) } }
                            form.inline method="post" action="/logout" {
                                button.secondary type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
            }
        }
    }
}

/// The page of a failed request: its status, and the same detail the API would give.
pub fn error_page(status: StatusCode, detail: &str) -> Markup {
    let reason = status.canonical_reason().unwrap_or("Error");
    page(
        reason,
        None,
        html! {
            h1 { (status.as_u16()) " " (reason) }
            p.error role="alert" { (detail) }
            p { a href="/files" { "Back to your files" } " · " a href="/login" { "Log in" } }
        },
    )
}

/// A time for people (`2026-12-04 04:15 UTC`) in a `time` element that has it exactly.
pub fn when(at: OffsetDateTime) -> Markup {
    let utc = at.to_offset(UtcOffset::UTC);
    html! {
        time datetime=(utc.format(&Rfc3339).unwrap_or_default()) {
            (utc.date()) " " (format!("{:02}:{:02}", utc.hour(), utc.minute())) " UTC"
        }
    }
}

/// `bytes` for people: `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_the_unit() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1023), "1023 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
    }
}
