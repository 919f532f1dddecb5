//! Provides pyperf's markdown table (`_compare.py MarkDownTable`): columns padded to the widest cell,
//! the first column left-aligned, the others centred (`:---:`). Renders into any `fmt::Write`.

use std::fmt::{self, Write};

/// A markdown table with pyperf's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkdownTable {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl MarkdownTable {
    /// A table with these headers and no rows.
    pub fn new<S: Into<String>>(headers: impl IntoIterator<Item = S>) -> Self {
        MarkdownTable {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (as many cells as headers).
    pub fn push<S: Into<String>>(&mut self, row: impl IntoIterator<Item = S>) {
        let row: Vec<String> = row.into_iter().map(Into::into).collect();
        debug_assert_eq!(
            row.len(),
            self.headers.len(),
            "a row needs one cell per header"
        );
        self.rows.push(row);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }

    fn render_row(out: &mut impl Write, widths: &[usize], row: &[String]) -> fmt::Result {
        for (w, cell) in widths.iter().zip(row) {
            write!(out, "| {cell:<w$} ")?;
        }
        writeln!(out, "|")
    }

    /// Writes the header, the separator and the rows, one line each.
    pub fn render(&self, out: &mut impl Write) -> fmt::Result {
        let widths = self.widths();
        Self::render_row(out, &widths, &self.headers)?;
        for (i, w) in widths.iter().enumerate() {
            if i == 0 {
                write!(out, "|{}", "-".repeat(w + 2))?;
            } else {
                write!(out, "|:{}:", "-".repeat(*w))?;
            }
        }
        writeln!(out, "|")?;
        for row in &self.rows {
            Self::render_row(out, &widths, row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_seed_table() {
        // Lines copied from shared/reference/001 (the 'math' section, one ref column shortened).
        let mut t = MarkdownTable::new(["Benchmark", "ref", "head"]);
        t.push(["float", "80.8 ms", "72.4 ms: 1.12x faster"]);
        t.push(["Geometric mean", "(ref)", "1.02x slower"]);
        let mut out = String::new();
        t.render(&mut out).unwrap();
        let expected = "\
| Benchmark      | ref     | head                  |
|----------------|:-------:|:---------------------:|
| float          | 80.8 ms | 72.4 ms: 1.12x faster |
| Geometric mean | (ref)   | 1.02x slower          |
";
        assert_eq!(out, expected);
    }
}
