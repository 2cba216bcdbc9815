//! The HTML of `report.html`: one page, inline CSS, images referenced beside it, no scripts
//! and nothing fetched from the network.

use std::fmt::Write as _;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1200px;color:#222}\
h1{font-size:26px}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 10px;\
text-align:left;font-size:14px}th{background:#f3f3f3}td.num{text-align:right;\
font-family:monospace}img{max-width:100%;border:1px solid #ddd;margin:6px 0}\
.note{color:#777;font-style:italic}.grid figure{margin:10px 0}\
figcaption{font-size:13px;color:#555}nav a{margin-right:12px}";

/// A page being built: sections in order, each with an id the table of contents links to.
#[derive(Debug, Default)]
pub struct Page {
    toc: Vec<(String, String)>,
    body: String,
}

impl Page {
    /// Starts section `id` titled `title`.
    pub fn section(&mut self, id: &str, title: &str) {
        self.toc.push((id.into(), title.into()));
        let _ = writeln!(
            self.body,
            "<section id=\"{}\"><h2>{}</h2>",
            esc(id),
            esc(title)
        );
    }

    pub fn end_section(&mut self) {
        self.body.push_str("</section>\n");
    }

    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p class=\"note\">{}</p>", esc(text));
    }

    pub fn para(&mut self, text: &str) {
        let _ = writeln!(self.body, "<p>{}</p>", esc(text));
    }

    /// A table with a header row; cells that parse as numbers are right-aligned.
    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
        self.body.push_str("<table><tr>");
        for h in header {
            let _ = write!(self.body, "<th>{}</th>", esc(h));
        }
        self.body.push_str("</tr>\n");
        for r in rows {
            self.body.push_str("<tr>");
            for c in r {
                let num = c
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.parse::<f64>().is_ok());
                let class = if num { " class=\"num\"" } else { "" };
                let _ = write!(self.body, "<td{class}>{}</td>", esc(c));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</table>\n");
    }

    /// An image beside the page (`src` relative to it) with a caption.
    pub fn image(&mut self, src: &str, caption: &str) {
        let _ = writeln!(
            self.body,
            "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
            esc(src),
            esc(caption),
            esc(caption)
        );
    }

    /// The page's HTML.
    pub fn finish(&self, title: &str, subtitle: &str) -> String {
        let mut nav = String::new();
        for (id, t) in &self.toc {
            let _ = write!(nav, "<a href=\"#{}\">{}</a>", esc(id), esc(t));
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>{t}</title><style>{STYLE}</style></head>\n<body><h1>{t}</h1>\
             <p>{s}</p><nav>{nav}</nav>\n{body}</body></html>\n",
            t = esc(title),
            s = esc(subtitle),
            body = self.body
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_and_links_sections() {
        let mut p = Page::default();
        p.section("summary", "Summary <1>");
        p.table(&["key", "value"], &[vec!["a&b".into(), "1.5 m".into()]]);
        p.image("plots/x.png", "x \"quoted\"");
        p.end_section();
        let h = p.finish("Run", "r");
        assert!(h.contains("<a href=\"#summary\">Summary &lt;1&gt;</a>"));
        assert!(h.contains("<td>a&amp;b</td><td class=\"num\">1.5 m</td>"));
        assert!(h.contains("src=\"plots/x.png\" alt=\"x &quot;quoted&quot;\""));
        assert!(!h.contains("http"));
    }
}
