//! CSV import format: `caller,virtual,callee`, one binding a row. An empty
//! caller makes an AX binding. Parsing returns the good rows and every bad
//! one with its line number; the importer checks the good rows further and
//! imports nothing unless every row is good.

use std::io::BufRead;

use super::number::{Normaliser, Number};

/// One parsed row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Line number in the file (1-based), for error messages.
    pub line: usize,
    /// A of an AXB binding, `None` for AX.
    pub caller: Option<Number>,
    /// X.
    pub virtual_number: Number,
    /// B or the AX owner.
    pub callee: Number,
}

/// A problem on one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct RowError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Most errors reported for one file; the rest are counted.
pub const MAX_REPORTED: usize = 20;

/// Reads the whole file: the rows that parse, and every bad row.
pub fn parse<R: BufRead>(input: R, norm: &Normaliser) -> (Vec<Row>, Vec<RowError>) {
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    parse_chunks(input, norm, usize::MAX, &mut |r, e| {
        rows.extend(r);
        errors.extend(e);
    });
    (rows, errors)
}

/// Reads the file `size` lines at a time (an importer works on one chunk
/// while the next is read), handing `each` a chunk's rows that parse and
/// its bad rows; the last chunk may be empty.
pub fn parse_chunks<R: BufRead>(
    input: R,
    norm: &Normaliser,
    size: usize,
    each: &mut dyn FnMut(Vec<Row>, Vec<RowError>),
) {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let report = |e: RowError, errors: &mut Vec<RowError>| errors.push(e);
    for (i, line) in input.lines().enumerate() {
        let line_no = i + 1;
        let text = match line {
            Ok(t) => t,
            Err(e) => {
                report(
                    RowError {
                        line: line_no,
                        reason: format!("unreadable: {e}"),
                    },
                    &mut errors,
                );
                continue;
            }
        };
        let text = text.trim_end_matches('\r');
        if line_no == 1 {
            let header: Vec<&str> = text
                .trim_start_matches('\u{feff}')
                .split(',')
                .map(str::trim)
                .collect();
            if header != ["caller", "virtual", "callee"] {
                report(
                    RowError {
                        line: 1,
                        reason: "header must be `caller,virtual,callee`".into(),
                    },
                    &mut errors,
                );
            }
            continue;
        }
        if text.trim().is_empty() {
            continue;
        }
        match parse_row(line_no, text, norm) {
            Ok(r) => rows.push(r),
            Err(e) => report(e, &mut errors),
        }
        if rows.len() + errors.len() >= size {
            each(std::mem::take(&mut rows), std::mem::take(&mut errors));
        }
    }
    each(rows, errors);
}

fn parse_row(line: usize, text: &str, norm: &Normaliser) -> Result<Row, RowError> {
    let err = |reason: String| RowError { line, reason };
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    if fields.len() != 3 {
        return Err(err(format!("expected 3 fields, found {}", fields.len())));
    }
    let field = |name: &str, v: &str| norm.party(v).map_err(|e| err(format!("{name}: {e}")));
    let caller = if fields[0].is_empty() {
        None
    } else {
        Some(field("caller", fields[0])?)
    };
    let virtual_number = norm
        .virtual_number(fields[1])
        .map_err(|e| err(format!("virtual: {e}")))?;
    let callee = field("callee", fields[2])?;
    if caller.as_ref() == Some(&callee) {
        return Err(err("caller and callee are the same party".into()));
    }
    Ok(Row {
        line,
        caller,
        virtual_number,
        callee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_and_without_caller() {
        let norm = Normaliser::default();
        let (rows, errs) = parse("caller,virtual,callee\n13800000001,17000000009,13900000002\n,17000000009,13900000003\n".as_bytes(), &norm);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(rows.len(), 2);
        assert!(rows[0].caller.is_some());
        assert!(rows[1].caller.is_none());
    }

    #[test]
    fn every_bad_row_is_reported_by_line() {
        let norm = Normaliser::default();
        let (rows, errs) = parse(
            "caller,virtual,callee\n1,9\n13800000001,17000000009,13900000002\n,x\"y,13900000003\n"
                .as_bytes(),
            &norm,
        );
        assert_eq!(rows.len(), 1, "the good row is kept for further checks");
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].line, 2);
        assert_eq!(errs[1].line, 4);
    }

    #[test]
    fn wrong_header_is_an_error() {
        let norm = Normaliser::default();
        assert!(!parse("a,b,c\n1,9,2\n".as_bytes(), &norm).1.is_empty());
    }
}
