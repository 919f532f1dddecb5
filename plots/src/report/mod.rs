//! Provides the markdown pages of a report. Each page is a pure function from the analysis to text;
//! `crate::write_report` decides where the text goes.

pub mod compare_to;
pub mod table;
