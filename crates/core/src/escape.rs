//! Text from hosts (log lines, addresses from headers a client chose, evidence) escaped for
//! the places the console shows it: the HTML and Markdown of reports, the body of desktop
//! notifications and the terminal. Every one of them first makes hidden characters visible
//! ([`visible`]): a right-to-left override in a path would otherwise reverse the console's own
//! words after it ("key" reads "yek"), and a newline or an invisible character can fake or
//! hide what a line says. The window does the same (`ui/src/lib/hosttext.ts`), with the same
//! set. Then, per place:
//!
//! - [`html`]: `& < > " '`, safe in element content and in quoted attributes.
//! - [`notification_body`]: `& < >` only. The freedesktop body markup has no attributes a
//!   host's text could reach, and servers without markup support show the body as it is, so
//!   `&quot;` would reach the operator's eyes as six characters.

use std::borrow::Cow;

/// Whether `c` is shown as an escape: C0 controls except the tab, DEL and C1 controls;
/// bidirectional formatting (ALM, LRM, RLM, LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI);
/// invisible separators and spaces (line and paragraph separators, zero-width space, word
/// joiner and the invisible operators, the byte order mark).
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200b}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Host text with each hidden character ([`is_hidden`]) shown as `<U+202E>`, so the operator
/// sees that it was there and what it was. Borrowed when there is none.
pub fn visible(text: &str) -> Cow<'_, str> {
    replace_hidden(text, false, |c| format!("<U+{:04X}>", u32::from(c)))
}

/// [`visible`] for text of many lines: line breaks stay line breaks, everything else hidden
/// is shown as an escape (for output whose own words span lines, such as a terminal's).
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    replace_hidden(text, true, |c| format!("<U+{:04X}>", u32::from(c)))
}

/// JSON text whose strings hold no hidden character as itself: each becomes its `\uXXXX`
/// escape, so the data stays exact for a program while a terminal shows no override. (Outside
/// strings JSON text is ASCII and line breaks; every hidden character is in the BMP.)
pub fn json(text: &str) -> Cow<'_, str> {
    replace_hidden(text, true, |c| format!("\\u{:04x}", u32::from(c)))
}

/// `text` with each hidden character (but line breaks, if `keep_lines`) written as `form`
/// makes it. Borrowed when there is none.
fn replace_hidden(text: &str, keep_lines: bool, form: fn(char) -> String) -> Cow<'_, str> {
    let hidden = |c: char| is_hidden(c) && !(keep_lines && c == '\n');
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hidden(c) {
            out.push_str(&form(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// For HTML: element content and quoted attribute values.
/// Line breaks stay (HTML shows them as spaces, so they cannot forge a line; a note keeps its
/// own).
pub fn html(text: &str) -> String {
    escape(&visible_lines(text), true)
}

/// For Markdown (the post-incident report): every character that could open markup (inline
/// HTML, a link, emphasis, code, a table cell) is backslash-escaped, as CommonMark allows for
/// any ASCII punctuation, and a line break becomes a space, so a host's text or a note can
/// neither inject HTML nor start a block of its own.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // A line break becomes a space before hidden characters are shown: a note's own lines
    // are the operator's, not a forgery.
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    for c in visible(&flat).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&' | '|' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// For a notification body (freedesktop body markup).
pub fn notification_body(text: &str) -> String {
    escape(&visible(text), false)
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
    fn a_right_to_left_override_cannot_reverse_the_console_s_words_anywhere() {
        let hostile = "/admin\u{202e}yek\u{200b}\u{1b}[2J";
        for (place, shown) in [
            ("visible", visible(hostile).into_owned()),
            ("html", html(hostile)),
            ("markdown", markdown(hostile)),
            ("notification", notification_body(hostile)),
        ] {
            assert!(
                !shown.chars().any(is_hidden),
                "{place}: no bidi, invisible or control character survives: {shown:?}"
            );
            assert!(
                shown.contains("U+202E") && shown.contains("U+200B") && shown.contains("U+001B"),
                "{place}: each is shown as what it was: {shown}"
            );
        }
        assert_eq!(
            visible_lines("line one\nline\u{202e} two"),
            "line one\nline<U+202E> two",
            "a terminal's own line breaks stay, the override is shown"
        );
        assert!(
            matches!(visible("plain ünïcödé"), Cow::Borrowed(_)),
            "text without hidden characters is not copied"
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
