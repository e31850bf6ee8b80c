//! Small HTML helpers: every value is escaped; pages share one layout and one stylesheet.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value: everything but RFC 3986's unreserved characters.
pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A full page. `body` must already be escaped HTML.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · phivault</title><link rel=\"stylesheet\" href=\"/static/app.css\"></head>\
         <body><main><h1>{}</h1>{body}</main></body></html>",
        escape(title),
        escape(title)
    );
    let mut response = (status, html).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// A paragraph announcing an error, or nothing.
pub fn error_line(error: Option<&str>) -> String {
    error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default()
}

pub const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;background:#f4f6f8;color:#1b1f23;margin:0;line-height:1.45}\
main{max-width:32rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}\
body.app main{max-width:64rem;margin:1rem auto}\
label{display:block;margin:.8rem 0 .2rem}input,select,textarea{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box;font-family:inherit}\
button{margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;cursor:pointer}.error{color:#a40000;font-weight:600}\
a{color:#0b4f9c}:focus-visible{outline:3px solid #d35400;outline-offset:2px}\
code{background:#eef;padding:.1rem .3rem}.qr svg{width:14rem;height:14rem}ol.codes{font-family:monospace}\
header.bar{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;background:#12355b;color:#fff;padding:.3rem 1rem}\
header.bar ul{list-style:none;display:flex;gap:1.2rem;margin:0;padding:0}header.bar a{color:#fff;font-weight:600}\
header.bar form{display:flex;align-items:center;gap:.8rem}header.bar button{margin:0;padding:.3rem .8rem}\
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #dde;vertical-align:top}\
td.when{white-space:nowrap}caption{text-align:left;font-weight:600;padding:.3rem 0}\
.allergies{border:3px solid #a40000;border-radius:6px;padding:.2rem 1rem;background:#fff4f4}\
.banner{background:#fff3cd;border:2px solid #8a6d00;padding:.6rem 1rem;border-radius:6px}\
.glass{border-color:#a40000}.saved{background:#e6f4ea;border:2px solid #1e7e34;padding:.6rem 1rem;border-radius:6px}\
.note{color:#4a5560}dl.demographics{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}\
.vitals-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:0 1rem}\
summary{padding:.45rem 0;min-height:1.6rem;cursor:pointer}details{border-bottom:1px solid #dde}pre.note-text{white-space:pre-wrap;font-family:inherit;background:#f8f9fb;padding:.6rem}\
form.inline{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:0 1rem;align-items:end}\
.idle-warning{position:fixed;inset:auto 1rem 1rem auto;max-width:24rem;background:#fff;border:3px solid #8a6d00;\
border-radius:8px;padding:1rem;box-shadow:0 2px 12px #0005;z-index:10}\
form.actions{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1rem;margin:.6rem 0}form.actions button{margin-top:0}.notice{background:#e6f4ea;border:2px solid #1e7e34;padding:.6rem 1rem;border-radius:6px}\
.secret code{font-size:1.4rem;letter-spacing:.05em}label.check{display:flex;gap:.5rem;align-items:center}label.check input{width:auto}\
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}\
@media (max-width:40rem){main,body.app main{margin:0;border-radius:0;padding:1rem}}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_only_unreserved_characters() {
        assert_eq!(url_encode("/oauth/authorize?a=b c&d=é"), "%2Foauth%2Fauthorize%3Fa%3Db%20c%26d%3D%C3%A9");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
