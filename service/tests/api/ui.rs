//! The browser UI over plain HTTP: redirects without a session, the security headers, CSRF on
//! form posts, escaping of file names, per-user 404s, and the profile table. The same flows in
//! a real browser are in `tests/ui_browser.rs`.

use data_processor::ui::CONTENT_SECURITY_POLICY;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY as CSP, CONTENT_TYPE, LOCATION};

use crate::helpers::{PASSWORD, TestApp, session_cookie, spawn_app, spawn_app_with, unique_name};
use crate::jobs::{finished, start_job, upload};

fn header(response: &reqwest::Response, name: impl reqwest::header::AsHeaderName) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// A form post as the page itself sends it (same origin).
async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("sec-fetch-site", "same-origin")
        .header("origin", &app.address)
        .form(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_the_login_page() {
    let app = spawn_app().await;
    for path in ["/", "/files", "/files/0190a000-0000-7000-8000-000000000000"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(header(&response, LOCATION), "/login", "{path}");
    }
    let login = app.get("/login").await;
    assert_eq!(login.status(), 200);
    let body = login.text().await.unwrap();
    assert!(
        body.starts_with("<!DOCTYPE html><html lang=\"en\">"),
        "{body}"
    );
    assert!(body.contains(r#"<label for="username">"#), "{body}");
}

#[tokio::test]
async fn ui_responses_carry_a_strict_policy_and_assets_are_cached() {
    let app = spawn_app().await;
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    for path in ["/login", "/register", "/assets/app.js", "/", "/files"] {
        let response = app.get(path).await;
        assert_eq!(header(&response, CSP), CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    }
    let page = app.get("/login").await;
    assert_eq!(header(&page, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&page, CACHE_CONTROL), "no-store");
    let html = page.text().await.unwrap();
    // No inline script or style for the policy to block: everything comes from /assets/.
    assert!(!html.contains("style="), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    let js_url = html
        .split("<script src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a script tag")
        .to_string();
    assert!(js_url.starts_with("/assets/app.js?v="), "{js_url}");
    let js = app.get(&js_url).await;
    assert_eq!(js.status(), 200);
    assert_eq!(header(&js, CONTENT_TYPE), "text/javascript; charset=utf-8");
    assert!(header(&js, CACHE_CONTROL).contains("immutable"));
    let css = app.get("/assets/app.css").await;
    assert_eq!(header(&css, CONTENT_TYPE), "text/css; charset=utf-8");
    assert_eq!(app.get("/assets/secret.txt").await.status(), 404);
    // The API is not affected, and the UI is not in its description.
    assert_eq!(header(&app.get("/healthz").await, CSP), "");
    let spec = app.get("/openapi.json").await.text().await.unwrap();
    assert!(!spec.contains("\"/files\"") && !spec.contains("\"/login\""));
}

#[tokio::test]
async fn the_forms_register_log_in_and_out() {
    let app = spawn_app().await;
    let username = unique_name("form");
    let registered = post_form(
        &app,
        "/register",
        &[("username", &username), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(registered.status(), 303);
    assert_eq!(header(&registered, LOCATION), "/login?registered=1");

    let taken = post_form(
        &app,
        "/register",
        &[("username", &username), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(taken.status(), 409);
    assert_eq!(header(&taken, CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(taken.text().await.unwrap().contains("is taken"));

    let short = post_form(&app, "/register", &[("username", "x"), ("password", "p")]).await;
    assert_eq!(short.status(), 422);

    let wrong = post_form(
        &app,
        "/login",
        &[("username", &username), ("password", "wrong password!")],
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(session_cookie(wrong.headers()).is_none());
    let page = wrong.text().await.unwrap();
    assert!(page.contains("Wrong username or password."), "{page}");
    assert!(page.contains(&format!("value=\"{username}\"")), "{page}");

    let login = post_form(
        &app,
        "/login",
        &[("username", &username), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(login.status(), 303);
    assert_eq!(header(&login, LOCATION), "/files");
    let cookie = session_cookie(login.headers()).expect("a session cookie");
    let again = app.get_as(&cookie, "/login").await;
    assert_eq!(
        again.status(),
        303,
        "the login page sends a signed-in user on"
    );
    assert_eq!(header(&again, LOCATION), "/files");
    let files = app.get_as(&cookie, "/files").await;
    assert_eq!(files.status(), 200);
    assert!(files.text().await.unwrap().contains(&username));
    // The same session works for the API.
    assert_eq!(app.get_session(&cookie).await.status(), 200);

    let logout = app
        .client
        .post(app.url("/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    assert_eq!(app.get_session(&cookie).await.status(), 401);
    assert_eq!(app.get_as(&cookie, "/files").await.status(), 303);
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() {
    let app = spawn_app().await;
    let username = unique_name("csrf");
    let cookie = app.signed_in(&username).await;
    // What a form on another site submits: the browser sends Sec-Fetch-Site and/or Origin.
    let cross_site: [&[(&str, &str)]; 3] = [
        &[("sec-fetch-site", "cross-site")],
        &[("sec-fetch-site", "same-site")],
        &[("origin", "https://evil.example")],
    ];
    for headers in cross_site {
        for path in ["/login", "/register", "/logout"] {
            let mut request = app
                .client
                .post(app.url(path))
                .header("cookie", &cookie)
                .form(&[("username", username.as_str()), ("password", PASSWORD)]);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 403, "{path} {headers:?}");
            assert!(session_cookie(response.headers()).is_none());
        }
    }
    // The forged logout did nothing.
    assert_eq!(app.get_session(&cookie).await.status(), 200);
}

#[tokio::test]
async fn file_names_are_escaped_and_other_users_files_are_404() {
    let app = spawn_app().await;
    let owner = app.signed_in(&unique_name("owner")).await;
    let other = app.signed_in(&unique_name("other")).await;
    // File names cannot hold `/`, so no closing tag; an opening one is enough to run script.
    let name = "<script>alert(1)&\".csv";
    let encoded = "%3Cscript%3Ealert(1)%26%22.csv";
    let file = upload(&app, &owner, encoded, "a,b\n1,2\n").await;
    assert_eq!(file["name"], name);
    let id = file["id"].as_str().unwrap();

    for path in ["/files".to_string(), format!("/files/{id}")] {
        let page = app.get_as(&owner, &path).await;
        assert_eq!(page.status(), 200, "{path}");
        let html = page.text().await.unwrap();
        assert!(!html.contains("<script>alert"), "{path}: {html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&amp;&quot;.csv"),
            "{path}: {html}"
        );
    }

    let stranger = app.get_as(&other, &format!("/files/{id}")).await;
    assert_eq!(stranger.status(), 404);
    assert_eq!(header(&stranger, CONTENT_TYPE), "text/html; charset=utf-8");
    let html = stranger.text().await.unwrap();
    assert!(!html.contains("alert(1)"), "{html}");
    assert!(
        !app.get_as(&other, "/files")
            .await
            .text()
            .await
            .unwrap()
            .contains("alert(1)")
    );
    assert_eq!(app.get_as(&owner, "/files/not-an-id").await.status(), 404);
}

#[tokio::test]
async fn the_file_page_shows_the_profile_as_a_table() {
    let app = spawn_app().await;
    let cookie = app.signed_in(&unique_name("prof")).await;
    let file = upload(
        &app,
        &cookie,
        "scores.csv",
        "id,name,score\n1,ada,9.5\n2,bob,\n3,cy,7.25\n4,di,3\n",
    )
    .await;
    let id = file["id"].as_str().unwrap();
    let before = app.get_as(&cookie, &format!("/files/{id}")).await;
    assert!(
        before
            .text()
            .await
            .unwrap()
            .contains("not been profiled yet")
    );

    let job = start_job(&app, &cookie, id).await;
    let done = finished(&app, &cookie, job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let html = app
        .get_as(&cookie, &format!("/files/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"profile-table\""), "{html}");
    assert!(html.contains("4 rows, 3 columns"), "{html}");
    for cell in [
        "<th scope=\"row\">score</th><td>float</td>",
        "<th scope=\"row\">name</th><td>text</td>",
    ] {
        assert!(html.contains(cell), "{cell}: {html}");
    }
    // Numeric columns get a box plot, labelled for screen readers.
    assert!(
        html.contains("aria-label=\"Box plot of score: min 3,"),
        "{html}"
    );

    // Paging: a page of one file links to the older ones.
    let second = upload(&app, &cookie, "second.csv", "x\n1\n").await;
    let page = app
        .get_as(&cookie, "/files?limit=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("second.csv") && !page.contains("scores.csv"));
    let cursor = second["id"].as_str().unwrap().replace('-', "");
    assert!(
        page.contains(&format!("/files?cursor={cursor}&amp;limit=1")),
        "{page}"
    );
    let older = app
        .get_as(&cookie, &format!("/files?cursor={cursor}&limit=1"))
        .await
        .text()
        .await
        .unwrap();
    assert!(older.contains("scores.csv") && !older.contains("second.csv"));
}

#[tokio::test]
async fn a_throttled_login_form_says_so_with_retry_after() {
    let app = spawn_app_with(&[
        "--auth-rate-limit-per-minute",
        "1",
        "--auth-rate-limit-burst",
        "1",
    ])
    .await;
    let form = [("username", "nobody"), ("password", "wrong password!")];
    assert_eq!(post_form(&app, "/login", &form).await.status(), 401);
    let throttled = post_form(&app, "/login", &form).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(header(&throttled, CONTENT_TYPE), "text/html; charset=utf-8");
    let retry_after: u64 = header(&throttled, "retry-after")
        .parse()
        .expect("Retry-After");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let page = throttled.text().await.unwrap();
    assert!(
        page.contains("too many requests from this address"),
        "{page}"
    );
    assert!(page.contains("<form"), "the form is shown again: {page}");
}
