//! Text from hosts (log lines, addresses from headers a client chose, evidence) escaped for
//! the two places the console writes markup: the HTML of reports and the body of desktop
//! notifications. One escaper, two sets:
//!
//! - [`html`]: `& < > " '`, safe in element content and in quoted attributes.
//! - [`notification_body`]: `& < >` only. The freedesktop body markup has no attributes a
//!   host's text could reach, and servers without markup support show the body as it is, so
//!   `&quot;` would reach the operator's eyes as six characters.

/// For HTML: element content and quoted attribute values.
pub fn html(text: &str) -> String {
    escape(text, true)
}

/// For Markdown (the post-incident report): every character that could open markup (inline
/// HTML, a link, emphasis, code, a table cell) is backslash-escaped, as CommonMark allows for
/// any ASCII punctuation, and a line break becomes a space, so a host's text or a note can
/// neither inject HTML nor start a block of its own.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// For a notification body (freedesktop body markup).
pub fn notification_body(text: &str) -> String {
    escape(text, false)
}

fn escape(text: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quotes => out.push_str("&quot;"),
            '\'' if quotes => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_neutralises_html_links_and_blocks() {
        let out = markdown(
            "<img src=x onerror=alert(1)> [x](javascript:alert(1))\n# not a heading | cell",
        );
        let bare = |c: char| {
            out.char_indices()
                .any(|(i, x)| x == c && !out[..i].ends_with('\\'))
        };
        assert!(
            !bare('<') && !bare('[') && !bare(']'),
            "no inline HTML or link survives: {out}"
        );
        assert!(
            !out.contains('\n') && out.contains("\\|"),
            "no new block and no table cell break: {out}"
        );
    }

    const HOSTILE: &str = r#"<img src=x onerror=alert(1)> & "q" 'a' <a href="file:///etc">x</a>"#;

    #[test]
    fn html_from_hosts_cannot_open_a_tag_or_leave_an_attribute() {
        let escaped = html(HOSTILE);
        assert_eq!(
            escaped,
            "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;q&quot; &#39;a&#39; \
             &lt;a href=&quot;file:///etc&quot;&gt;x&lt;/a&gt;",
            "an evidence line from a host cannot become markup in a report"
        );
    }

    #[test]
    fn a_notification_body_from_hosts_cannot_become_markup() {
        let escaped = notification_body(HOSTILE);
        assert!(
            !escaped.contains('<') && !escaped.contains('>'),
            "no tag survives: {escaped}"
        );
        assert!(
            escaped.contains(r#""q" 'a'"#),
            "quotes stay quotes, for servers that show the body as text: {escaped}"
        );
        assert_eq!(
            notification_body("a & b"),
            "a &amp; b",
            "an ampersand is an entity, so it cannot start one"
        );
    }

    #[test]
    fn text_without_markup_is_unchanged_and_unicode_survives() {
        let plain = "Sign-in failed for ünïcödé from 203.0.113.7 — 12 times";
        assert_eq!(html(plain), plain, "nothing to escape, nothing changed");
        assert_eq!(
            notification_body(plain),
            plain,
            "the same for a notification"
        );
    }
}
