//! A small document model that renders to both Markdown and self-contained HTML, so
//! `report.md` and `report.html` always say the same thing.

use std::fmt::Write as _;

/// One block of a report.
#[derive(Debug, Clone)]
pub enum Block {
    Title(String),
    Heading(String),
    Para(String),
    List(Vec<String>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Image {
        alt: String,
        src: String,
    },
    Pre(String),
}

pub fn markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Title(t) => writeln!(s, "# {t}\n"),
            Block::Heading(t) => writeln!(s, "## {t}\n"),
            Block::Para(t) => writeln!(s, "{t}\n"),
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(s, "- {i}");
                }
                writeln!(s)
            }
            Block::Table { head, rows } => {
                let _ = writeln!(s, "| {} |", head.join(" | "));
                let _ = writeln!(s, "|{}", " --- |".repeat(head.len()));
                for r in rows {
                    let _ = writeln!(s, "| {} |", r.join(" | "));
                }
                writeln!(s)
            }
            Block::Image { alt, src } => writeln!(s, "![{alt}]({src})\n"),
            Block::Pre(t) => writeln!(s, "```\n{}\n```\n", t.trim_end()),
        }
        .expect("writing to a String");
    }
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline Markdown of the report's own text: `code` and **bold**.
fn inline(t: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    let mut bold = false;
    let e = escape(t);
    let mut rest = e.as_str();
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("**") && !code {
            out.push_str(if bold { "</b>" } else { "<b>" });
            bold = !bold;
            rest = &rest[2..];
        } else if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
            rest = &rest[1..];
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

pub fn html(blocks: &[Block]) -> String {
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Title(t) => Some(t.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "vista report".into());
    let mut s = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n\
         body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}\n\
         table {{ border-collapse: collapse; margin: 1rem 0; }}\n\
         th, td {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; }}\n\
         th {{ background: #f3f3f3; }}\n\
         td:not(:first-child) {{ font-variant-numeric: tabular-nums; }}\n\
         img {{ max-width: 100%; border: 1px solid #eee; margin: .5rem 0; }}\n\
         pre {{ background: #f7f7f7; padding: .8rem; overflow-x: auto; }}\n\
         code {{ background: #f3f3f3; padding: 0 .2rem; }}\n\
         </style></head><body>\n",
        escape(&title)
    );
    for b in blocks {
        match b {
            Block::Title(t) => writeln!(s, "<h1>{}</h1>", inline(t)),
            Block::Heading(t) => writeln!(s, "<h2>{}</h2>", inline(t)),
            Block::Para(t) => writeln!(s, "<p>{}</p>", inline(t)),
            Block::List(items) => {
                s.push_str("<ul>\n");
                for i in items {
                    let _ = writeln!(s, "<li>{}</li>", inline(i));
                }
                writeln!(s, "</ul>")
            }
            Block::Table { head, rows } => {
                s.push_str("<table>\n<tr>");
                for h in head {
                    let _ = write!(s, "<th>{}</th>", inline(h));
                }
                s.push_str("</tr>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        let _ = write!(s, "<td>{}</td>", inline(c));
                    }
                    s.push_str("</tr>\n");
                }
                writeln!(s, "</table>")
            }
            Block::Image { alt, src } => writeln!(
                s,
                "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                escape(src),
                escape(alt),
                inline(alt)
            ),
            Block::Pre(t) => writeln!(s, "<pre>{}</pre>", escape(t.trim_end())),
        }
        .expect("writing to a String");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_renderings_carry_the_same_content_and_html_is_escaped() {
        let doc = vec![
            Block::Title("Run".into()),
            Block::Para("accuracy **0.93** with `vote`".into()),
            Block::Table {
                head: vec!["a".into(), "b".into()],
                rows: vec![vec!["<x>".into(), "1".into()]],
            },
            Block::Image {
                alt: "plot".into(),
                src: "p.png".into(),
            },
        ];
        let md = markdown(&doc);
        assert!(md.contains("| a | b |\n| --- | --- |\n| <x> | 1 |"));
        assert!(md.contains("![plot](p.png)"));
        let h = html(&doc);
        assert!(h.contains("<b>0.93</b>") && h.contains("<code>vote</code>"));
        assert!(h.contains("<td>&lt;x&gt;</td>"));
        assert!(h.contains("<img src=\"p.png\""));
    }
}
