//! CSV as the console reads and writes it (RFC 4180): the bulk invitation input and the
//! exports. Cells written for a spreadsheet are guarded against formula injection.

/// One cell: quoted when it holds a separator, a quote or a line break; a cell that a
/// spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a
/// leading `'`, so an exported name cannot run anything in the customer's spreadsheet.
pub fn cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// One line of cells, ending with CRLF.
pub fn row<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = cells.into_iter().map(cell).collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

/// A record of the input and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub cells: Vec<String>,
}

/// Parses CSV text into records, skipping blank lines. Quoted cells may hold commas, quotes
/// (doubled) and line breaks; an unterminated quote runs to the end of the text.
pub fn parse(text: &str) -> Vec<Record> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut cells = Vec::new();
    let mut cur = String::new();
    let (mut line, mut start) = (1, 1);
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let push = |cells: &mut Vec<String>, start: usize, out: &mut Vec<Record>| {
        let blank = cells.len() == 1 && cells[0].trim().is_empty();
        if !blank {
            out.push(Record {
                line: start,
                cells: std::mem::take(cells),
            });
        }
        cells.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            '\n' if quoted => {
                line += 1;
                cur.push('\n');
            }
            ',' if !quoted => cells.push(std::mem::take(&mut cur)),
            '\r' if !quoted && chars.peek() == Some(&'\n') => {}
            '\n' | '\r' if !quoted => {
                cells.push(std::mem::take(&mut cur));
                push(&mut cells, start, &mut out);
                line += 1;
                start = line;
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() || !cells.is_empty() {
        cells.push(cur);
        push(&mut cells, start, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_start_a_formula_are_defused_and_quoted_when_needed() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-1"), "'-1");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("Ada, Countess"), "\"Ada, Countess\"");
        assert_eq!(cell("plain"), "plain");
        assert_eq!(row(["a", "b"]), "a,b\r\n");
    }

    #[test]
    fn parses_quotes_blank_lines_and_line_numbers() {
        let r = parse(
            "email,name,role\r\n\r\na@x.test,\"Doe, Jo\",member\n\"b@x.test\",\"Say \"\"hi\"\"\nthere\",admin\nc@x.test",
        );
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].line, 1);
        assert_eq!(r[1].line, 3);
        assert_eq!(r[1].cells, vec!["a@x.test", "Doe, Jo", "member"]);
        assert_eq!(r[2].line, 4);
        assert_eq!(r[2].cells[1], "Say \"hi\"\nthere");
        assert_eq!(r[3].line, 6);
        assert_eq!(r[3].cells, vec!["c@x.test"]);
    }
}
